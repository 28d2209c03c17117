#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// An exclusive, advisory lock on an output directory (`flock` on `DIR/.smelt.lock`), so a second Smelt
/// process writing the same output refuses instead of interleaving with the first. The kernel drops the
/// lock when the process dies, so a killed run never leaves a stale lock behind.
///
/// The lock file is removed on release, which makes the classic race possible: a second process opens the
/// file, the holder unlinks and closes it, the second locks the unlinked inode while a third creates and
/// locks a new one, and both believe they hold the directory. So a lock only counts once the locked
/// descriptor is still the file the path names (same device and inode, checked after `flock`); otherwise
/// the taker reopens and tries again. The holder unlinks while it still holds the lock, so whoever locks
/// an inode afterwards sees it unlinked.
public final class DirectoryLock: Sendable {
  /// The lock file.
  public let path: String
  private let descriptor: FileDescriptor

  /// The lock file's name inside the locked directory.
  public static let fileName = ".smelt.lock"

  /// Why a lock could not be taken.
  public struct HeldError: Error, Sendable, CustomStringConvertible {
    /// The directory that is busy.
    public let directory: String
    public var description: String {
      "output directory '\(directory)' is in use by another smelt process (lock file \(directory)/\(DirectoryLock.fileName)); wait for it to finish or choose another output directory"
    }
  }

  /// How the lock is shared.
  public enum Access: Sendable {
    /// One holder; refuses while anyone else holds it.
    case exclusive
    /// Any number of shared holders at once (the parts of one `shard --part` job); refuses while an
    /// exclusive holder has it, and makes exclusive takers refuse.
    case shared
  }

  /// Takes the lock for `directory` (which must exist), failing at once if another process holds it.
  public convenience init(directory: String, access: Access = .exclusive) throws {
    try self.init(directory: directory, access: access, beforeLocking: nil)
  }

  /// - Parameter beforeLocking: a test seam, run between opening the lock file and `flock`: the window in
  ///   which another process may release (and unlink) the lock.
  init(directory: String, access: Access, beforeLocking: (() -> Void)?) throws {
    path = FileSystem.join(directory, DirectoryLock.fileName)
    let operation = (access == .exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB
    while true {
      let candidate = try FileDescriptor.open(path, .readWriteCreating)
      beforeLocking?()
      guard SystemCall.retrying({ flock(candidate.rawValue, operation) }) == 0 else {
        let code = errno
        candidate.close()
        if code == EWOULDBLOCK { throw HeldError(directory: directory) }
        throw SystemError("lock", path: path, code: code)
      }
      // Still the file the path names? If it was unlinked (or replaced) after we opened it, the lock we
      // hold guards nothing: start over with whatever is there now.
      let locked = try? candidate.status().identity
      if let locked, let current = FileSystem.status(of: path, followingLinks: false)?.identity, locked == current {
        descriptor = candidate
        return
      }
      candidate.close()
    }
  }

  /// True when a process holds the lock of `directory` right now. Read-only: opens an existing lock file
  /// without creating it and probes with a shared, non-blocking `flock` (so shared holders do not count).
  public static func isHeld(directory: String) -> Bool {
    isHeld(directory: directory, probe: LOCK_SH)
  }

  /// True when any process (shared or exclusive holder) holds the lock of `directory`. Read from
  /// `/proc/locks` where it exists, so the probe never holds the lock itself (an exclusive probe would make
  /// a writer starting at that instant refuse); elsewhere an exclusive, non-blocking `flock` probe.
  public static func isHeldByAnyone(directory: String) -> Bool {
    let path = FileSystem.join(directory, fileName)
    guard let identity = FileSystem.status(of: path)?.identity else { return false }
    if let listed = flockHolders(of: identity) { return listed }
    return isHeld(directory: directory, probe: LOCK_EX)
  }

  /// Whether `/proc/locks` lists a granted `flock` on the file `identity` (`nil` when it cannot be read).
  /// Lines look like `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF` (device major:minor in hex);
  /// waiters (`->`) do not count.
  static func flockHolders(of identity: FileIdentity) -> Bool? {
    guard let bytes = try? FileSystem.readProcFile("/proc/locks") else { return nil }
    let device = identity.device
    let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
    let minor = (device & 0xFF) | ((device >> 12) & ~UInt64(0xFF))
    for line in bytes.split(separator: UInt8(ascii: "\n")) {
      let fields = line.split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
      guard fields.count > 5, fields[1] == "FLOCK" else { continue }
      for field in fields where field.filter({ $0 == ":" }).count == 2 {
        let parts = field.split(separator: ":")
        if UInt64(parts[2]) == identity.inode, UInt64(parts[0], radix: 16) == major, UInt64(parts[1], radix: 16) == minor {
          return true
        }
      }
    }
    return false
  }

  private static func isHeld(directory: String, probe: Int32) -> Bool {
    guard let fd = try? FileDescriptor.open(FileSystem.join(directory, fileName), .readOnly) else { return false }
    defer { fd.close() }
    if SystemCall.retrying({ flock(fd.rawValue, probe | LOCK_NB) }) == 0 {
      _ = flock(fd.rawValue, LOCK_UN)
      return false
    }
    return errno == EWOULDBLOCK
  }

  /// Releases the lock and removes the lock file (unlinked while still held: see the type's comment).
  public func release() {
    _ = unlink(path)
    descriptor.close()
  }

  /// Releases the lock but leaves the lock file, for a shared holder: other holders may still have it.
  public func releaseKeepingFile() {
    descriptor.close()
  }
}
