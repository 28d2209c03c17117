import SystemIO

/// A process exit status. Throw it from `Command.run` to end the command with that status and no message.
///
/// The policy mirrors swift-argument-parser: 0 for success, help and version; 64 (`EX_USAGE`) for usage
/// errors; 1 for any other failure. Smelt adds 130 for an interrupt (shell convention).
public struct ExitCode: Error, Sendable, Hashable, CustomStringConvertible {
  /// The status passed to `exit`.
  public var rawValue: Int32

  /// An exit status of `rawValue`.
  public init(_ rawValue: Int32) { self.rawValue = rawValue }

  /// 0: success, help or version.
  public static let success = ExitCode(0)
  /// 1: a failure while running a command (`EXIT_FAILURE`).
  public static let failure = ExitCode(1)
  /// 64: a usage error (`EX_USAGE`): bad arguments, options or values.
  public static let usage = ExitCode(64)
  /// 130: interrupted by SIGINT or SIGTERM (shell convention for 128 + SIGINT).
  public static let interrupted = ExitCode(InterruptHandler.exitStatus)

  /// `exit code N`.
  public var description: String { "exit code \(rawValue)" }
}
