import Testing

@testable import CommandLineSupport

@Suite("Help text") struct HelpTests {
  @Test("subcommand help at width 80")
  func subcommandHelp() {
    let expected = """
      OVERVIEW: Re-quantize a checkpoint.

      Reads every tensor once and writes the output directory shard by shard.

      USAGE: smelt convert <input> [<output>] [--to <format>]
        [--max-shard-size <size>] [--keep <glob> ...] [--threads <n>]
        [--index|--no-index] [--verbose] [--quiet] [--json]

      ARGUMENTS:
        <input>                 The checkpoint directory to read.
        <output>                Where to write the result.

      OPTIONS:
        --to <format>           The target format. (values: fp8, int4, mxfp4; default:
                                fp8)
        --max-shard-size <size> Largest output file. (default: 5GB)
        -k, --keep <glob>       Tensors to leave unchanged.
        -j, --threads <n>       Worker threads.
        --index/--no-index      Write model.safetensors.index.json. (default: --index)
        -v, --verbose           Log every tensor.
        -q, --quiet             Print no progress or log lines; results and errors
                                still appear.
        --json                  Print the result as JSON to stdout.
        -h, --help              Show help information.
      """
    let help = HelpFormatter.help(toolName: "smelt", configuration: convertConfiguration, columns: 80)
    #expect(help == expected)
    #expect(help.split(separator: "\n").allSatisfy { $0.count <= 80 })
  }

  @Test("a label too long for the column puts its help on the next line")
  func longLabel() {
    let configuration = CommandConfiguration(
      name: "x", abstract: "X.", arguments: [.option("a-very-long-option-name", valueName: "value", help: "Help.")])
    let help = HelpFormatter.help(toolName: "smelt", configuration: configuration, columns: 80)
    #expect(help.contains("\n  --a-very-long-option-name <value>\n                          Help.\n"))
  }

  @Test("root help lists subcommands and ends with the help hint")
  func rootHelp() {
    let help = HelpFormatter.rootHelp(
      toolName: "smelt", abstract: "Work with checkpoints.", discussion: "",
      subcommands: [convertConfiguration, CommandConfiguration(name: "inspect", abstract: "Summarize a checkpoint.")],
      columns: 80)
    #expect(
      help == """
        OVERVIEW: Work with checkpoints.

        USAGE: smelt <subcommand>

        OPTIONS:
          --version               Show the version.
          -h, --help              Show help information.

        SUBCOMMANDS:
          convert                 Re-quantize a checkpoint.
          inspect                 Summarize a checkpoint.

          See 'smelt help <subcommand>' for detailed help.
        """)
  }

  @Test("wraps to narrow widths and keeps long words whole")
  func wrapping() {
    #expect(HelpFormatter.wrap("USAGE: a bb ccc dddd", width: 10, indent: 2) == "USAGE: a\n  bb ccc\n  dddd")
    #expect(HelpFormatter.wrapLines("supercalifragilistic x", width: 5) == ["supercalifragilistic", "x"])
    #expect(Terminal.columns(fromEnvironmentValue: "120") == 120)
    #expect(Terminal.columns(fromEnvironmentValue: "abc") == 80)
    #expect(Terminal.columns(fromEnvironmentValue: nil) == 80)
    #expect(Terminal.columns(fromEnvironmentValue: "0") == 80)
  }
}
