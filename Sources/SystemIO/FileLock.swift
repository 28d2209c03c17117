#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// An exclusive, advisory lock on one file (`flock`), taken without waiting: the lock of one part of a split
/// job, so that the same part never runs twice at once (a requeued Slurm task while the first still runs, a
/// user starting part 3 by hand). The kernel drops it when the process dies.
///
/// Unlike `DirectoryLock`, the lock file stays when released: removing it would let a second process lock
/// the unlinked inode while a third creates and locks a new one. Whoever owns the directory removes lock
/// files when nobody can hold them any more (`--finalize`, under the exclusive directory lock).
public final class FileLock: Sendable {
  public let path: String
  private let descriptor: FileDescriptor

  /// Another process holds the lock.
  public struct HeldError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let holder: String
    public var description: String { "\(holder) is running in another smelt process (lock file \(path))" }
  }

  /// Takes the lock on `path` (created if missing), failing at once if another process holds it.
  /// - Parameter holder: what the lock guards, for the message (`part 2/4 of convert`).
  public init(path: String, holder: String) throws {
    self.path = path
    let candidate = try FileDescriptor.open(path, .readWriteCreating)
    while flock(candidate.rawValue, LOCK_EX | LOCK_NB) != 0 {
      if errno == EINTR { continue }
      let code = errno
      candidate.close()
      if code == EWOULDBLOCK { throw HeldError(path: path, holder: holder) }
      throw SystemError("lock", path: path, code: code)
    }
    descriptor = candidate
  }

  /// Whether some process holds the lock on `path` now (probing without creating the file).
  public static func isHeld(_ path: String) -> Bool {
    let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { _ = Glibc.close(fd) }
    while flock(fd, LOCK_EX | LOCK_NB) != 0 {
      if errno == EINTR { continue }
      return errno == EWOULDBLOCK
    }
    _ = flock(fd, LOCK_UN)
    return false
  }

  /// Releases the lock (the file stays).
  public func release() { descriptor.close() }
}

extension FileSystem {
  /// Creates `path` holding exactly `bytes`, unless something already is there: written under a temporary
  /// name, synced, then hard-linked into place (`link(2)` never replaces), so that a reader sees either no
  /// file or the complete one, and of two processes creating it at once exactly one wins.
  /// - Returns: `true` if this call created the file, `false` if it existed.
  public static func createExclusively(_ bytes: [UInt8], at path: String) throws(SystemError) -> Bool {
    let (directory, name) = split(path)
    let temporary = join(directory, ".\(name).\(getpid()).smelt-link")
    let file = try FileDescriptor.open(temporary, .createTruncating)
    defer {
      file.close()
      _ = unlink(temporary)
    }
    try file.write(bytes, at: 0)
    try file.sync()
    if link(temporary, path) == 0 {
      syncDirectory(directory)
      return true
    }
    if errno == EEXIST { return false }
    throw SystemError("create", path: path, detail: "(hard link from '\(temporary)')")
  }
}
