#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// How a file's bytes will be used, for `FileDescriptor.advise(_:range:)` (`posix_fadvise`).
public enum FileAccessPattern: Sendable {
  /// `POSIX_FADV_NORMAL`: the default read-ahead.
  case normal
  /// `POSIX_FADV_RANDOM`: no read-ahead (read only the bytes asked for, e.g. a header).
  case random
  /// `POSIX_FADV_SEQUENTIAL`: aggressive read-ahead.
  case sequential
  /// `POSIX_FADV_DONTNEED`: the bytes are done with — clean pages leave the page cache, and writeback of
  /// dirty ones starts now without waiting.
  case dontNeed

  var rawValue: Int32 {
    switch self {
    case .normal: POSIX_FADV_NORMAL
    case .random: POSIX_FADV_RANDOM
    case .sequential: POSIX_FADV_SEQUENTIAL
    case .dontNeed: POSIX_FADV_DONTNEED
    }
  }
}
