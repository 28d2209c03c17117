#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// An exclusive, advisory lock on an output directory (`flock` on `DIR/.smelt.lock`), so a second Smelt
/// process writing the same output refuses instead of interleaving with the first. The kernel drops the
/// lock when the process dies, so a killed run never leaves a stale lock behind.
public final class DirectoryLock: Sendable {
  /// The lock file.
  public let path: String
  private let descriptor: FileDescriptor

  /// Why a lock could not be taken.
  public struct HeldError: Error, Sendable, CustomStringConvertible {
    /// The directory that is busy.
    public let directory: String
    public var description: String {
      "output directory '\(directory)' is in use by another smelt process (lock file \(directory)/.smelt.lock); wait for it to finish or choose another output directory"
    }
  }

  /// Takes the lock for `directory` (which must exist), failing at once if another process holds it.
  public init(directory: String) throws {
    path = FileSystem.join(directory, ".smelt.lock")
    descriptor = try FileDescriptor.open(path, .readWriteCreating)
    while flock(descriptor.rawValue, LOCK_EX | LOCK_NB) != 0 {
      if errno == EINTR { continue }
      let code = errno
      descriptor.close()
      if code == EWOULDBLOCK { throw HeldError(directory: directory) }
      throw SystemError("lock", path: path, code: code)
    }
  }

  /// True when a process holds the lock of `directory` right now. Read-only: opens an existing lock file
  /// without creating it and probes with a shared, non-blocking `flock`.
  public static func isHeld(directory: String) -> Bool {
    let fd = open(FileSystem.join(directory, ".smelt.lock"), O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { _ = Glibc.close(fd) }
    while flock(fd, LOCK_SH | LOCK_NB) != 0 {
      if errno == EINTR { continue }
      return errno == EWOULDBLOCK
    }
    _ = flock(fd, LOCK_UN)
    return false
  }

  /// Releases the lock and removes the lock file.
  public func release() {
    _ = unlink(path)
    descriptor.close()
  }
}
