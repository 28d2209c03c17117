import SystemIO
import Testing

@testable import CommandLineSupport

/// Echoes its arguments, or fails in the way `--mode` asks.
struct EchoCommand: Command {
  static let configuration = CommandConfiguration(
    name: "echo", abstract: "Print the words.",
    arguments: [
      .positional("words", help: "What to print.", repeating: true),
      .option("mode", help: "How to end.", default: "ok", values: ["ok", "exit3", "fail", "invalid"]),
      .quiet,
    ])

  struct Failure: Error, CustomStringConvertible {
    var description: String { "cannot read model.safetensors: tensor 'a' at byte offset 8 is truncated" }
  }

  var words: [String]
  var mode: String
  var isQuiet: Bool

  init(arguments: ParsedArguments) throws {
    words = arguments.strings("words")
    mode = try arguments.string("mode")
    isQuiet = arguments.flag("quiet")
  }

  func run(context: CommandContext) throws {
    #expect(context.isQuiet == isQuiet)
    context.log("log line")
    context.stdout.line(words.joined(separator: " "))
    switch mode {
    case "exit3": throw ExitCode(3)
    case "fail": throw Failure()
    case "invalid": throw UsageError.invalid("--mode invalid cannot be combined with words")
    default: break
    }
  }
}

/// Rejects a bad value while reading its arguments.
struct CountCommand: Command {
  static let configuration = CommandConfiguration(
    name: "count", abstract: "Count.", arguments: [.option("n", valueName: "count", help: "How many.", default: "1")])
  var n: Int
  init(arguments: ParsedArguments) throws { n = try arguments.int("n", in: 1...9) }
  func run(context: CommandContext) throws { context.stdout.line(String(n)) }
}

let tool = CommandLineTool(
  name: "smelt", abstract: "Test tool.", version: "9.9.9", commands: [EchoCommand.self, CountCommand.self])

/// Runs `tool` and returns (status, stdout, stderr).
func runTool(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
  let stdout = TextOutput.capture()
  let stderr = TextOutput.capture()
  let status = tool.run(arguments: arguments, stdout: stdout, stderr: stderr, columns: 80)
  return (status, stdout.text, stderr.text)
}

@Suite("Exit codes and streams") struct ToolTests {
  @Test("help in every spelling goes to stdout with status 0")
  func help() {
    let root = tool.rootHelp(columns: 80) + "\n"
    for arguments in [[], ["--help"], ["-h"], ["help"]] {
      #expect(runTool(arguments) == (0, root, ""))
    }
    let echo = tool.help(for: EchoCommand.self, columns: 80) + "\n"
    for arguments in [["help", "echo"], ["echo", "--help"], ["echo", "-h"], ["echo", "a", "--mode", "zz", "-h"]] {
      #expect(runTool(arguments) == (0, echo, ""))
    }
    #expect(echo.hasPrefix("OVERVIEW: Print the words.\n\nUSAGE: smelt echo [<words> ...] [--mode <mode>] [--quiet]\n"))
  }

  @Test("version goes to stdout with status 0")
  func version() {
    #expect(runTool(["--version"]) == (0, "9.9.9\n", ""))
  }

  @Test("success prints results to stdout and logs to stderr")
  func success() {
    #expect(runTool(["echo", "a", "b"]) == (0, "a b\n", "log line\n"))
    #expect(runTool(["echo", "-q", "a"]) == (0, "a\n", ""))
  }

  @Test("unknown subcommands and root options are usage errors (64)")
  func rootUsageErrors() {
    #expect(
      runTool(["ecoh"])
        == (64, "", "Error: Unexpected argument 'ecoh'. Did you mean 'echo'?\nUsage: smelt <subcommand>\n  See 'smelt --help' for more information.\n"))
    #expect(
      runTool(["--verbose"])
        == (64, "", "Error: Unknown option '--verbose'\nUsage: smelt <subcommand>\n  See 'smelt --help' for more information.\n"))
    #expect(runTool(["help", "nope"]).status == 64)
  }

  @Test("parse errors print Error, Help, Usage and the hint to stderr with status 64")
  func parseErrors() {
    #expect(
      runTool(["echo", "--mode", "zz"])
        == (
          64, "",
          """
          Error: The value 'zz' is invalid for '--mode <mode>'. Please provide one of 'ok', 'exit3', 'fail' or 'invalid'.
          Help:  --mode <mode>  How to end.
          Usage: smelt echo [<words> ...] [--mode <mode>] [--quiet]
            See 'smelt echo --help' for more information.

          """
        ))
    #expect(
      runTool(["echo", "--mdoe", "ok"])
        == (
          64, "",
          "Error: Unknown option '--mdoe'. Did you mean '--mode'?\nUsage: smelt echo [<words> ...] [--mode <mode>] [--quiet]\n  See 'smelt echo --help' for more information.\n"
        ))
  }

  @Test("a bad value found by a typed accessor is a usage error")
  func accessorErrors() {
    #expect(
      runTool(["count", "--n", "12"])
        == (
          64, "",
          "Error: The value '12' is invalid for '--n <count>': must be between 1 and 9\nHelp:  --n <count>  How many.\nUsage: smelt count [--n <count>]\n  See 'smelt count --help' for more information.\n"
        ))
    #expect(runTool(["count", "--n", "3"]) == (0, "3\n", ""))
  }

  @Test("run's errors map to 64 (UsageError), n (ExitCode) and 1 (anything else)")
  func runErrors() {
    #expect(runTool(["echo", "--mode", "exit3", "x"]) == (3, "x\n", "log line\n"))
    #expect(
      runTool(["echo", "--mode", "fail"])
        == (1, "\n", "log line\nError: cannot read model.safetensors: tensor 'a' at byte offset 8 is truncated\n"))
    let invalid = runTool(["echo", "--mode", "invalid"])
    #expect(invalid.status == 64)
    #expect(invalid.stderr.hasSuffix("Error: --mode invalid cannot be combined with words\nUsage: smelt echo [<words> ...] [--mode <mode>] [--quiet]\n  See 'smelt echo --help' for more information.\n"))
  }

  @Test("exit codes follow argument-parser plus 130 for interrupts")
  func exitCodeValues() {
    #expect(ExitCode.success.rawValue == 0)
    #expect(ExitCode.failure.rawValue == 1)
    #expect(ExitCode.usage.rawValue == 64)
    #expect(ExitCode.interrupted.rawValue == 130)
  }

  @Test("interrupt cleanups run most recent first and can be unregistered")
  func cleanups() {
    let log = TextOutput.capture()
    InterruptHandler.register { log.write("a") }
    let token = InterruptHandler.register { log.write("b") }
    InterruptHandler.register { log.write("c") }
    InterruptHandler.unregister(token)
    InterruptHandler.runCleanups()
    InterruptHandler.runCleanups()
    #expect(log.text == "ca")
  }
}
