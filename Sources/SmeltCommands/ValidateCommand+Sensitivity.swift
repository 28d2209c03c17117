import Checkpoint
import CommandLineSupport
import JSON
import Pipeline
import ReferenceModel
import SystemIO
import Sensitivity
import TensorCore
import Validation
import WeightSources

/// `smelt validate ORIG --sensitivity --to SCHEME [--write-recipe FILE [--target-size S | --target-kld X]]`.
struct SensitivityRequest {
  /// The `--to` scheme text.
  var scheme: String
  /// `--write-recipe FILE`.
  var recipePath: String?
  /// What the recipe reaches; `nil`: the size of a plain `--to SCHEME` conversion.
  var target: RecipeSelection.Target?

  static let arguments: [ArgumentSpec] = [
    .flag(
      "sensitivity",
      help: "With one checkpoint and --to SCHEME: convert one tensor group at a time in memory and report the mean KL each costs (model level) and the bytes it saves, most sensitive first."),
    .option("to", valueName: "scheme", help: "With --sensitivity: the scheme to measure (a convert --to name or recipe scheme)."),
    .option(
      "write-recipe", valueName: "file",
      help: "With --sensitivity: write a convert --recipe file choosing a scheme per group (greedy by KL per byte) that reaches the target."),
    .option("target-size", valueName: "size", help: "With --write-recipe: at most this many weight bytes (5G, 512M; default: a plain --to SCHEME conversion's)."),
    .option("target-kld", valueName: "x", help: "With --write-recipe: a predicted mean KL at most X, in the fewest bytes."),
  ]

  /// The request in `arguments`, `nil` without `--sensitivity`; usage errors for options given without what
  /// they refine.
  static func parse(_ arguments: ParsedArguments) throws -> SensitivityRequest? {
    let recipePath = arguments.optionalString("write-recipe")
    let size = try arguments.optionalByteCount("target-size", in: 1...Int.max)
    let kl = try arguments.optionalDouble("target-kld", in: 0...Double.greatestFiniteMagnitude)
    guard arguments.flag("sensitivity") else {
      for name in ["to", "write-recipe", "target-size", "target-kld"] where arguments.isPresent(name) {
        throw UsageError.invalid("--\(name) needs --sensitivity (smelt validate ORIG --sensitivity --to SCHEME)")
      }
      return nil
    }
    guard let scheme = arguments.optionalString("to") else {
      throw UsageError.invalid("--sensitivity needs --to SCHEME: the conversion to measure, e.g. --to int4-g64")
    }
    if arguments.isPresent("candidate") {
      throw UsageError.invalid("--sensitivity takes one checkpoint, the original (it converts the groups itself)")
    }
    if recipePath == nil, size != nil || kl != nil {
      throw UsageError.invalid("--target-size and --target-kld need --write-recipe FILE")
    }
    if size != nil && kl != nil { throw UsageError.invalid("give --target-size or --target-kld, not both") }
    for name in ["part", "emit-sbatch", "finalize", "layers", "experts", "level"] where arguments.isPresent(name) {
      throw UsageError.invalid("--sensitivity cannot be combined with --\(name)")
    }
    return SensitivityRequest(
      scheme: scheme, recipePath: recipePath, target: size.map { .size($0) } ?? kl.map { .meanKL($0) })
  }
}

extension ValidateCommand {
  func runSensitivity(_ request: SensitivityRequest, context: CommandContext) throws {
    let checkpoint = try Checkpoint.open(reference)
    for path in [request.recipePath, jsonPath].compactMap({ $0 }) {
      try OutputDirectory.refuseReplacingInput(file: path, inputs: CheckpointTensorSource(checkpoint).inputFilePaths)
    }
    let ladder: SensitivityLadder
    do { ladder = try SensitivityLadder.of(request.scheme, defaults: ConversionRecipe.SchemeDefaults()) } catch let error
      as SensitivityError where error.isUsageError
    {
      throw UsageError.invalid("\(error)")
    }
    let configuration = try CheckpointWeightProvider(checkpoint: checkpoint).modelConfiguration()
    let tokens =
      options.tokens
      ?? TokenBatch.random(
        count: options.randomTokenCount, sequences: options.randomSequenceCount,
        vocabularySize: configuration.vocabularySize, seed: options.seed)
    let analysis: SensitivityAnalysis
    do {
      analysis = try SensitivityAnalysis.measure(checkpoint: checkpoint, ladder: ladder, tokens: tokens) { context.log($0) }
    } catch ReferenceModelError.invalidTokens(let reason) {
      throw UsageError.invalid("invalid token list: \(reason)")
    }
    var outcome: SensitivityOutcome?
    if let path = request.recipePath {
      outcome = try analysis.recipe(target: request.target ?? .size(analysis.plainByteCount), checkpoint: checkpoint)
      let text = JSONWriter(pretty: true).string(outcome!.recipe.json) + "\n"
      try FileSystem.writeFileAtomically(Array(text.utf8), to: path)
      outcome!.path = path
    }
    try checkpoint.checkInputsUnchanged()
    let table = analysis.table(outcome)
    if json {
      context.stdout.write(JSONWriter(pretty: true).string(analysis.json(outcome)) + "\n")
      if !context.isQuiet { context.stderr.write(table) }
    } else {
      context.stdout.write(table)
    }
  }
}

extension SensitivityAnalysis {
  /// The text report: the groups by KL at `--to SCHEME`, and the recipe's choices.
  func table(_ outcome: SensitivityOutcome?) -> String {
    var out = "reference: \(reference)\nscheme:    \(scheme) (one tensor group converted at a time, the rest at the original's precision)\n"
    out += "tokens:    \(tokens.count)×\(tokens.first?.count ?? 0)\n"
    out += "plain \(scheme): \(plainByteCount) bytes of weights\n\n"
    var rows = [["group", "weights", "original B", "\(scheme) B", "saved B", "KL mean ± SE", "top-1 ± SE"]]
    for group in bySensitivity {
      let m = group.measurements[schemeLevel]
      rows.append([
        group.label, "\(group.weights.count)", "\(group.originalByteCount)", "\(m.byteCount)",
        "\(group.originalByteCount - m.byteCount)",
        m.measured ? "\(ReportFormat.number(m.meanKL)) ± \(ReportFormat.number(m.meanKLStandardError))" : "0 (not run)",
        "\(ReportFormat.percent(m.top1Agreement)) ± \(ReportFormat.percent(m.top1StandardError))",
      ])
    }
    out += TextTable.render(rows, indent: 2, rightAligned: [1, 2, 3, 4])
    if let outcome {
      let target: String
      switch outcome.target {
      case .size(let bytes): target = "at most \(bytes) bytes of weights"
      case .meanKL(let kl): target = "predicted mean KL at most \(ReportFormat.number(kl))"
      }
      out += "\nrecipe \(outcome.path): \(target); \(outcome.recipe.rules.count) rule(s), default \(outcome.recipe.fallback)\n"
      out += "  planned \(outcome.plannedByteCount) bytes (plain \(scheme): \(plainByteCount)), predicted mean KL \(ReportFormat.number(outcome.predictedMeanKL))"
      out += " (plain \(scheme): \(ReportFormat.number(groups.reduce(0.0) { $0 + $1.measurements[schemeLevel].meanKL })), sum of the groups')\n"
      var choices = [["group", "level", "bytes", "KL"]]
      for (group, level) in zip(groups, outcome.choice) {
        let m = group.measurements[level]
        choices.append([group.label, m.level, "\(m.byteCount)", ReportFormat.number(m.meanKL)])
      }
      out += TextTable.render(choices, indent: 2, rightAligned: [2, 3])
      out += "  check it: smelt convert \(reference) OUT --recipe \(outcome.path); smelt validate \(reference) OUT --level model\n"
    }
    for note in notes { out += "note: \(note)\n" }
    return out
  }
}
