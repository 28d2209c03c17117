import CommandLineSupport
import SystemIO


/// The version `smelt --version` prints. The only place it is written down.
public enum SmeltVersion {
  public static let current = "0.1.0"
}

/// The `smelt` root command: the subcommand table, help and version, and the exit-code policy
/// (see `CommandLineTool`).
public enum SmeltCommands {
  /// Every subcommand, in the order `smelt --help` lists them. Add a new command's type here.
  public static let commands: [any Command.Type] = [
    InspectCommand.self, ConvertCommand.self, ShardCommand.self, ForwardCommand.self, ValidateCommand.self,
    VerifyCommand.self,
  ]

  /// The tool description shared by `main` and tests.
  public static let tool = CommandLineTool(
    name: "smelt",
    abstract: "Convert, re-quantize, shard and validate large safetensors checkpoints on a CPU.",
    version: SmeltVersion.current,
    commands: commands,
    writeJSONFile: { path, text in try FileSystem.writeFileAtomically(Array(text.utf8), to: path) })

  /// Runs `smelt` on `arguments` (without the executable name) and returns the exit status; writes only to
  /// the given streams. Tests call this; `main` calls it with the real streams.
  public static func run(
    arguments: [String], stdout: TextOutput, stderr: TextOutput, columns: Int? = nil
  ) -> Int32 {
    tool.run(arguments: arguments, stdout: stdout, stderr: stderr, columns: columns)
  }

  /// The executable's entry point: installs the interrupt handler, runs with the process arguments and
  /// exits with the resulting status.
  public static func main() -> Never {
    // A starved process must fail with a message, not crash in libdispatch or on a failed allocation.
    ProcessLimits.raiseOpenFileLimit()
    if let problem = ProcessLimits.startupProblem() {
      TextOutput.standardError.line("Error: \(problem)")
      CurrentProcess.exit(ExitCode.failure.rawValue)
    }
    InterruptHandler.install()
    // Temporary output files (AtomicOutputFile) register themselves; Ctrl-C must not leave them behind.
    _ = InterruptHandler.register { CleanupRegistry.shared.removeAllAndClose() }
    // A file-size limit (ulimit -f) must surface as an EFBIG write error, cleaned up and reported like a
    // full disk, instead of SIGXFSZ killing the process and leaving temporary files behind.
    CurrentProcess.reportFileSizeLimitAsError()
    let arguments = Array(CommandLine.arguments.dropFirst())
    let status = run(arguments: arguments, stdout: .standardOutput, stderr: .standardError)
    CurrentProcess.exit(status)
  }
}
