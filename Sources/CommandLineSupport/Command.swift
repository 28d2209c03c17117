/// A subcommand: a declaration, a way to read its parsed arguments, and `run`.
///
/// ```swift
/// struct InspectCommand: Command {
///   static let configuration = CommandConfiguration(
///     name: "inspect", abstract: "Summarize a safetensors checkpoint.",
///     arguments: [
///       .positional("path", help: "A checkpoint directory or a .safetensors file."),
///       .flag("tensors", help: "List every tensor."),
///       .option("filter", valueName: "glob", help: "Only tensors whose name matches GLOB."),
///       .json,
///     ])
///
///   var path: String
///   var listTensors: Bool
///   var filter: String?
///   var json: Bool
///
///   init(arguments: ParsedArguments) throws {
///     path = try arguments.string("path")
///     listTensors = arguments.flag("tensors")
///     filter = arguments.optionalString("filter")
///     json = arguments.flag("json")
///   }
///
///   func run(context: CommandContext) throws {
///     context.stdout.line("…")
///   }
/// }
/// ```
///
/// Error policy (the runner applies it): a `UsageError` thrown from `init` or `run` prints
/// `Error: …` with the usage line and exits 64; `throw ExitCode(n)` exits `n` silently (e.g. `validate`
/// after printing a failing report); any other error prints `Error: <description>` and exits 1.
public protocol Command: Sendable {
  /// Name, help texts and declared arguments.
  static var configuration: CommandConfiguration { get }

  /// Reads and checks the parsed arguments (accessors throw `UsageError`; throw
  /// `UsageError.invalid("…")` for rules between arguments).
  init(arguments: ParsedArguments) throws

  /// Does the work. Results go to `context.stdout`; progress and logs to `context.stderr`.
  func run(context: CommandContext) throws
}

/// What a running command may use besides its arguments: its output streams and the quiet setting.
/// Tests pass in-memory streams.
public struct CommandContext: Sendable {
  /// Results (tables, JSON).
  public let stdout: TextOutput
  /// Logs, progress, warnings.
  public let stderr: TextOutput
  /// `--quiet` was given (set automatically when the command declares `ArgumentSpec.quiet`).
  public let isQuiet: Bool

  public init(stdout: TextOutput, stderr: TextOutput, isQuiet: Bool = false) {
    self.stdout = stdout
    self.stderr = stderr
    self.isQuiet = isQuiet
  }

  /// Writes a log line to stderr unless quiet.
  public func log(_ message: String) {
    if !isQuiet { stderr.line(message) }
  }

  /// Writes `warning: <message>` to stderr (even when quiet).
  public func warn(_ message: String) {
    stderr.line("warning: \(message)")
  }

  /// A progress reporter on stderr, enabled only when stderr is a terminal and not quiet.
  public func progress(total: Int, unit: ProgressReporter.Unit, label: String) -> ProgressReporter {
    ProgressReporter(
      total: total, unit: unit, label: label, enabled: stderr.isTerminal && !isQuiet, output: stderr)
  }
}
