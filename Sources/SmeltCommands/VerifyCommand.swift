import Checkpoint
import CommandLineSupport
import JSON

/// `smelt verify DIR [--deep] [--json]`: a CI gate for an output directory (exit 0 clean, 1 otherwise).
struct VerifyCommand: Command {
  static let configuration = CommandConfiguration(
    name: "verify",
    abstract: "Check an output directory: headers, index, manifest hashes; with --deep, finite values and positive scales.",
    discussion: """
      Checks every .safetensors header with the strict parser, the index against the files, and every file \
      against smelt-manifest.json (size and SHA-256; files missing, changed or added). --deep also reads all \
      tensor data: every floating value must be finite and every scale tensor (weight_scale_inv, weight_scale, \
      scales, ...) strictly positive. Reports every problem, naming the file and tensor; exits 1 if there is \
      any, 0 otherwise. Never modifies the directory. The checks and codes are in formats/verify.md.
      """,
    arguments: [
      .positional("directory", help: "The directory to check (a smelt output, or any checkpoint directory)."),
      .flag("deep", help: "Also scan every value: NaN/Inf anywhere, zero or negative scales."),
      .json, .jsonFile,
    ])

  var directory: String
  var deep: Bool
  var json: Bool

  init(arguments: ParsedArguments) throws {
    directory = try arguments.string("directory")
    deep = arguments.flag("deep")
    json = arguments.flag("json")
  }

  func run(context: CommandContext) throws {
    let report = Verification.verify(directory: directory, deep: deep)
    if json {
      context.stdout.line(JSONWriter(pretty: true).string(Self.json(report)))
    } else {
      for finding in report.findings { context.stderr.line(finding.description) }
      let scope = "\(report.checkedFileCount) file(s), \(report.checkedTensorCount) tensor(s)\(deep ? ", values scanned" : "")"
      if report.isClean {
        context.stdout.line("OK: \(directory): \(scope)")
      } else {
        context.stdout.line("FAILED: \(directory): \(report.errors.count) problem(s) in \(scope)")
      }
    }
    if !report.isClean { throw ExitCode.failure }
  }

  static func json(_ report: VerificationReport) -> JSONValue {
    func optional(_ text: String?) -> JSONValue { text.map { .string($0) } ?? .null }
    return .object(members: [
      ("schema", .string(DocumentSchema.verify)),
      ("directory", .string(report.directory)),
      ("ok", .bool(report.isClean)),
      ("deep", .bool(report.deep)),
      ("files_checked", .number(JSONNumber(report.checkedFileCount))),
      ("tensors_checked", .number(JSONNumber(report.checkedTensorCount))),
      ("findings", .array(report.findings.map { finding in
        .object(members: [
          ("severity", .string(finding.isWarning ? "warning" : "error")), ("code", .string(finding.code.rawValue)),
          ("file", optional(finding.file)), ("tensor", optional(finding.tensor)), ("message", .string(finding.message)),
        ])
      })),
    ])
  }
}
