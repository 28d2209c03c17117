#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// A descriptor written sequentially — standard output and error, a pipe — rather than at offsets like
/// `FileDescriptor`. It is not owned: nothing closes it.
public struct StandardStream: Sendable, Hashable {
  /// The C descriptor.
  public let rawValue: Int32

  public init(rawValue: Int32) { self.rawValue = rawValue }

  public static let output = StandardStream(rawValue: 1)
  public static let error = StandardStream(rawValue: 2)

  /// Whether the descriptor is a terminal (`isatty`).
  public var isTerminal: Bool { isatty(rawValue) == 1 }

  /// Writes all of `bytes` (`write(2)`, looping over short writes; `EINTR` retried). Returns false when a
  /// write fails (a closed pipe, a full disk): the rest is dropped.
  @discardableResult
  public func writeAll(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress else { return true }
    var offset = 0
    while offset < bytes.count {
      let written = SystemCall.retrying { write(rawValue, base + offset, bytes.count - offset) }
      guard written > 0 else { return false }
      offset += written
    }
    return true
  }
}

/// The running process: what a command-line tool asks of it besides files.
public enum CurrentProcess {
  /// The process id (`getpid`), e.g. to make a temporary name unique among concurrent processes.
  public static var identifier: Int32 { getpid() }

  /// Ends the process with `status` (`exit`: atexit handlers run, stdio is flushed).
  public static func exit(_ status: Int32) -> Never { exitProcess(status) }

  /// Makes a file-size limit (`ulimit -f`) surface as an `EFBIG` write error instead of `SIGXFSZ` killing
  /// the process (which would leave temporary files behind).
  public static func reportFileSizeLimitAsError() { signal(SIGXFSZ, SIG_IGN) }
}

/// The C library's `exit`, which `CurrentProcess.exit` shadows inside the enum.
private func exitProcess(_ status: Int32) -> Never { exit(status) }
