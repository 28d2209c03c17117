#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// How a file will be read, for `FileDescriptor.advise(_:)` (`posix_fadvise`).
public enum FileAccessPattern: Sendable {
  /// `POSIX_FADV_NORMAL`: the default read-ahead.
  case normal
  /// `POSIX_FADV_RANDOM`: no read-ahead (read only the bytes asked for, e.g. a header).
  case random
  /// `POSIX_FADV_SEQUENTIAL`: aggressive read-ahead.
  case sequential

  var rawValue: Int32 {
    switch self {
    case .normal: POSIX_FADV_NORMAL
    case .random: POSIX_FADV_RANDOM
    case .sequential: POSIX_FADV_SEQUENTIAL
    }
  }
}

extension FileDescriptor {
  /// Tells the kernel how this descriptor will read the file (`posix_fadvise` over the whole file);
  /// advisory, errors ignored. Applies to this open file description only.
  public func advise(_ pattern: FileAccessPattern) {
    advise(pattern.rawValue)
  }
}
