import CommandLineSupport
import SmeltCommands
import Testing

/// Runs `smelt` in process and returns (status, stdout, stderr).
private func smelt(_ arguments: String...) -> (status: Int32, stdout: String, stderr: String) {
  let stdout = TextOutput.capture()
  let stderr = TextOutput.capture()
  let status = SmeltCommands.run(arguments: arguments, stdout: stdout, stderr: stderr, columns: 80)
  return (status, stdout.text, stderr.text)
}

@Suite("smelt root command") struct RootCommandTests {
  @Test("--help prints the overview and options to stdout")
  func help() {
    let result = smelt("--help")
    #expect(result.status == 0)
    #expect(result.stderr.isEmpty)
    #expect(result.stdout.hasPrefix("OVERVIEW: Convert, re-quantize, shard and validate"))
    #expect(result.stdout.contains("\nUSAGE: smelt <subcommand>\n"))
    #expect(result.stdout.contains("  --version               Show the version.\n  -h, --help              Show help information.\n"))
    #expect(smelt() == result)
    #expect(smelt("help") == result)
  }

  @Test("--version prints the version")
  func version() {
    #expect(smelt("--version") == (0, SmeltVersion.current + "\n", ""))
  }

  @Test("an unknown subcommand is a usage error")
  func unknownCommand() {
    let result = smelt("frobnicate", "x")
    #expect(result.status == 64)
    #expect(result.stdout.isEmpty)
    #expect(result.stderr.hasPrefix("Error: Unexpected argument 'frobnicate'\nUsage: smelt <subcommand>\n"))
    #expect(smelt("help", "frobnicate").status == 64)
  }

  @Test("every subcommand's declaration is sound and its help renders")
  func subcommandsAreWellFormed() {
    for command in SmeltCommands.commands {
      let name = command.configuration.name
      #expect(command.configuration.problems == [], "\(name)")
      let result = smelt(name, "--help")
      #expect(result.status == 0, "\(name)")
      #expect(result.stdout.contains("USAGE: smelt \(name)"), "\(name)")
      #expect(smelt("help", name) == result, "\(name)")
    }
    let names = SmeltCommands.commands.map { $0.configuration.name }
    #expect(Set(names).count == names.count, "duplicate subcommand names: \(names)")
  }
}
