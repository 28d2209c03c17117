import Checkpoint
import CommandLineSupport

/// The check at the end of `convert` and `shard`: the output read as its consumer reads it
/// (`Verification.consumerCheck`). Smelt writing something its config does not explain fails the job.
enum OutputCheck {
  static func run(directory: String, context: CommandContext) throws {
    let errors = Verification.consumerCheck(directory: directory).filter { !$0.isWarning }
    guard !errors.isEmpty else { return }
    for finding in errors { context.stderr.line(finding.description) }
    context.stderr.line(
      "Error: '\(directory)' is not consistent with its config.json (\(errors.count) problem(s) above): its consumer would misread it; this is a smelt bug, please report it")
    throw ExitCode.failure
  }
}
