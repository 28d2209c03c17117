/// A tool with subcommands (`smelt inspect …`): dispatch, built-in help and version, and the output and
/// exit-code contract of swift-argument-parser.
///
/// | input | stream | exit |
/// |---|---|---|
/// | no arguments, `--help`, `-h`, `help`, `help CMD`, `CMD --help`, `CMD -h` | stdout | 0 |
/// | `--version` | stdout | 0 |
/// | unknown subcommand or option, bad value, `UsageError` from a command | stderr | 64 |
/// | `throw ExitCode(n)` | (nothing) | n |
/// | any other error | stderr | 1 |
///
/// With no arguments the root help goes to stdout with status 0, as argument-parser does for a root command
/// without its own `run()` (its default `run()` throws `CleanExit.helpRequest`).
public struct CommandLineTool: Sendable {
  /// The executable name used in help and usage (`smelt`).
  public var name: String
  /// One line for the root `OVERVIEW:`.
  public var abstract: String
  /// Paragraphs after the root overview.
  public var discussion: String
  /// Printed by `--version`.
  public var version: String
  /// Subcommands in help order.
  public var commands: [any Command.Type]
  /// Writes `--json-file`'s document (path, text); the tool itself touches no files.
  public var writeJSONFile: @Sendable (String, String) throws -> Void

  public init(
    name: String, abstract: String, discussion: String = "", version: String, commands: [any Command.Type],
    writeJSONFile: @escaping @Sendable (String, String) throws -> Void = { path, _ in
      throw UsageError.invalid("--json-file '\(path)': this tool cannot write files")
    }
  ) {
    self.name = name
    self.abstract = abstract
    self.discussion = discussion
    self.version = version
    self.commands = commands
    self.writeJSONFile = writeJSONFile
  }

  /// Runs the tool on `arguments` (without the executable name) and returns the exit status. Performs no
  /// other side effects than writing to `stdout` and `stderr` and whatever the command does.
  /// - Parameter columns: the help width; `nil` reads `$COLUMNS` (default 80).
  public func run(arguments: [String], stdout: TextOutput, stderr: TextOutput, columns: Int? = nil) -> Int32 {
    let columns = columns ?? Terminal.columns
    guard let first = arguments.first else {
      stdout.line(rootHelp(columns: columns))
      return ExitCode.success.rawValue
    }
    switch first {
    case "-h", "--help":
      stdout.line(rootHelp(columns: columns))
      return ExitCode.success.rawValue
    case "--version":
      stdout.line(version)
      return ExitCode.success.rawValue
    case "help":
      return help(topic: Array(arguments.dropFirst()), stdout: stdout, stderr: stderr, columns: columns)
    default:
      break
    }
    if CommandLineParser.looksLikeOption(first) {
      let error = UsageError.unknownOption(
        first, suggestion: closestMatch(to: first, among: ["--help", "--version"]))
      return reportRootUsageError(error, stderr: stderr)
    }
    guard let command = command(named: first) else {
      return reportRootUsageError(unknownSubcommand(first), stderr: stderr)
    }
    return run(command, arguments: Array(arguments.dropFirst()), stdout: stdout, stderr: stderr, columns: columns)
  }

  /// The root help screen at `columns`.
  public func rootHelp(columns: Int) -> String {
    HelpFormatter.rootHelp(
      toolName: name, abstract: abstract, discussion: discussion,
      subcommands: commands.map { $0.configuration }, columns: columns)
  }

  /// The help screen of `command` at `columns`.
  public func help(for command: any Command.Type, columns: Int) -> String {
    HelpFormatter.help(toolName: name, configuration: command.configuration, columns: columns)
  }

  private func command(named name: String) -> (any Command.Type)? {
    commands.first { $0.configuration.name == name }
  }

  private func unknownSubcommand(_ name: String) -> UsageError {
    .unknownSubcommand(name, suggestion: closestMatch(to: name, among: commands.map { $0.configuration.name }))
  }

  /// `help`, `help CMD` (extra words after CMD are ignored, as argument-parser does).
  private func help(topic: [String], stdout: TextOutput, stderr: TextOutput, columns: Int) -> Int32 {
    guard let name = topic.first else {
      stdout.line(rootHelp(columns: columns))
      return ExitCode.success.rawValue
    }
    guard let command = command(named: name) else {
      return reportRootUsageError(unknownSubcommand(name), stderr: stderr)
    }
    stdout.line(help(for: command, columns: columns))
    return ExitCode.success.rawValue
  }

  private func run(
    _ command: any Command.Type, arguments: [String], stdout: TextOutput, stderr: TextOutput, columns: Int
  ) -> Int32 {
    let configuration = command.configuration
    do {
      let parsed: ParsedArguments
      switch try CommandLineParser.parse(arguments, for: configuration) {
      case .helpRequested:
        stdout.line(help(for: command, columns: columns))
        return ExitCode.success.rawValue
      case .arguments(let arguments):
        parsed = arguments
      }
      let isQuiet = configuration.spec(named: "quiet")?.kind == .flag && parsed.flag("quiet")
      // `--json-file PATH`: the command's stdout (its JSON document) goes to PATH, whatever the exit status.
      let jsonFile = configuration.spec(named: ArgumentSpec.jsonFile.name) != nil ? parsed.optionalString(ArgumentSpec.jsonFile.name) : nil
      let output = jsonFile == nil ? stdout : TextOutput.capture()
      let context = CommandContext(stdout: output, stderr: stderr, isQuiet: isQuiet)
      defer {
        if let jsonFile, !output.text.isEmpty {
          do { try writeJSONFile(jsonFile, output.text) } catch { stderr.line("Error: cannot write --json-file '\(jsonFile)': \(error)") }
        }
      }
      try command.init(arguments: parsed).run(context: context)
      return ExitCode.success.rawValue
    } catch let error as UsageError {
      stderr.line("Error: \(error)")
      if let help = HelpFormatter.helpLine(for: error, configuration: configuration) { stderr.line(help) }
      stderr.line("Usage: " + HelpFormatter.synopsis(toolName: name, configuration: configuration))
      stderr.line("  See '\(name) \(configuration.name) --help' for more information.")
      return ExitCode.usage.rawValue
    } catch let exit as ExitCode {
      return exit.rawValue
    } catch {
      stderr.line("Error: \(Self.message(for: error))")
      return ExitCode.failure.rawValue
    }
  }

  private func reportRootUsageError(_ error: UsageError, stderr: TextOutput) -> Int32 {
    stderr.line("Error: \(error)")
    stderr.line("Usage: \(name) <subcommand>")
    stderr.line("  See '\(name) --help' for more information.")
    return ExitCode.usage.rawValue
  }

  /// An error's `CustomStringConvertible` description (what Smelt's error enums provide), else the default
  /// `String(describing:)`.
  static func message(for error: any Error) -> String {
    String(describing: error)
  }
}
