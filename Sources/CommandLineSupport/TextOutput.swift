import SystemIO
import Synchronization

/// An unbuffered text stream: a file descriptor (stdout, stderr) or an in-memory capture for tests.
///
/// Each `write` goes straight to `write(2)` (`StandardStream.writeAll`: short writes and `EINTR` handled), so output from
/// different streams and threads appears in the order it was written and nothing is lost on `exit`.
/// Thread-safe; concurrent `write`s do not interleave within one call.
public final class TextOutput: Sendable, TextOutputStream {
  private let stream: StandardStream?
  private let captured: Mutex<String>
  private let writeLock = Mutex<Void>(())
  private let capturedIsTerminal: Bool

  /// Standard output (file descriptor 1).
  public static let standardOutput = TextOutput(fileDescriptor: 1)
  /// Standard error (file descriptor 2).
  public static let standardError = TextOutput(fileDescriptor: 2)

  /// A stream writing to `fileDescriptor` (which it does not own or close).
  public init(fileDescriptor: Int32) {
    self.stream = StandardStream(rawValue: fileDescriptor)
    self.captured = Mutex("")
    self.capturedIsTerminal = false
  }

  /// An in-memory stream; `isTerminal` pretends to be a TTY so progress output can be tested.
  public init(capturingAsTerminal isTerminal: Bool = false) {
    self.stream = nil
    self.captured = Mutex("")
    self.capturedIsTerminal = isTerminal
  }

  /// A new in-memory stream.
  public static func capture(asTerminal: Bool = false) -> TextOutput {
    TextOutput(capturingAsTerminal: asTerminal)
  }

  /// Everything written so far to an in-memory stream (empty for a file descriptor).
  public var text: String { captured.withLock { $0 } }

  /// Whether the stream is a terminal (`isatty`); drives progress bars and colour decisions.
  public var isTerminal: Bool {
    guard let stream else { return capturedIsTerminal }
    return stream.isTerminal
  }

  /// Writes `string` as is. Write errors (a closed pipe) are ignored: there is nowhere to report them.
  public func write(_ string: String) {
    guard let stream else {
      captured.withLock { $0 += string }
      return
    }
    var string = string
    writeLock.withLock { _ in
      string.withUTF8 { bytes in _ = stream.writeAll(UnsafeRawBufferPointer(bytes)) }
    }
  }

  /// Writes `text` followed by a newline.
  public func line(_ text: String = "") {
    write(text + "\n")
  }
}
