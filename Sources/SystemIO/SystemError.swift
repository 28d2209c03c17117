#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// A failed system call: what was attempted, on which path, and the `errno` it returned.
public struct SystemError: Error, Sendable, CustomStringConvertible, Equatable {
  /// The action in words, e.g. `"open"`, `"write"`, `"rename"`.
  public var operation: String
  /// The file involved, if any.
  public var path: String?
  /// The C `errno` value; 0 for a refusal that is not a failed call (then `detail` says why).
  public var code: Int32
  /// Extra context, e.g. the byte offset of a failed write.
  public var detail: String?

  public init(_ operation: String, path: String? = nil, code: Int32 = errno, detail: String? = nil) {
    self.operation = operation
    self.path = path
    self.code = code
    self.detail = detail
  }

  /// `EINVAL`, for refusals of an invalid argument made outside SystemIO.
  public static let invalidArgument: Int32 = EINVAL

  /// The C library's text for `code`, e.g. "No space left on device".
  public var reason: String { String(cString: strerror(code)) }

  public var description: String {
    var text = "cannot \(operation)"
    if let path { text += " '\(path)'" }
    if code == 0 { return text + ": " + (detail ?? "refused") }
    if let detail { text += " (\(detail))" }
    text += ": \(reason)"
    switch code {
    case ENOSPC: text += "; free some space on the output disk and run again"
    case EFBIG: text += "; the file size limit (ulimit -f) or the file system's maximum file size was reached"
    case EDQUOT: text += "; the disk quota is exhausted"
    case EMFILE, ENFILE: text += "; raise the open-file limit (ulimit -n) or close other programs"
    case ENOMEM: text += "; out of memory or address space (is ulimit -v set too low?)"
    default: break
    }
    return text
  }

  /// True for a write that failed for lack of room: a full disk, an exhausted quota, a file-size limit.
  public var isOutOfSpace: Bool { code == ENOSPC || code == EDQUOT || code == EFBIG }

  /// True when the error is `code`.
  public func `is`(_ code: Int32) -> Bool { self.code == code }
}
