#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// The one place Smelt retries system calls that a signal interrupted (`EINTR`): callers never see it.
enum SystemCall {
  /// Runs `call` until it returns something other than `-1` with `errno == EINTR`; returns that result
  /// (`errno` is still set when it is `-1`).
  @inline(__always)
  static func retrying(_ call: () -> Int32) -> Int32 {
    while true {
      let result = call()
      if result != -1 || errno != EINTR { return result }
    }
  }

  /// `retrying` for calls that return a byte count.
  @inline(__always)
  static func retrying(_ call: () -> Int) -> Int {
    while true {
      let result = call()
      if result != -1 || errno != EINTR { return result }
    }
  }
}

/// What a path is, as `stat(2)`/`lstat(2)` tell it.
public struct FileStatus: Sendable, Equatable {
  /// The kind of directory entry.
  public enum Kind: Sendable, Equatable {
    case regularFile, directory, symbolicLink, fifo, socket, characterDevice, blockDevice, unknown

    /// A phrase for messages: "a named pipe (FIFO)".
    public var phrase: String {
      switch self {
      case .regularFile: return "a regular file"
      case .directory: return "a directory"
      case .symbolicLink: return "a symbolic link"
      case .fifo: return "a named pipe (FIFO)"
      case .socket: return "a socket"
      case .characterDevice: return "a character device"
      case .blockDevice: return "a block device"
      case .unknown: return "not a regular file"
      }
    }
  }

  public var kind: Kind
  /// Which file this is, whatever the path it was reached by: two paths name the same file (a symlink, a
  /// hard link, a bind mount) exactly when their identities are equal.
  public var identity: FileIdentity
  public var byteCount: Int
  /// Permission bits (`st_mode & 0o7777`).
  public var permissions: UInt32

  init(_ info: stat) {
    switch info.st_mode & S_IFMT {
    case S_IFREG: kind = .regularFile
    case S_IFDIR: kind = .directory
    case S_IFLNK: kind = .symbolicLink
    case S_IFIFO: kind = .fifo
    case S_IFSOCK: kind = .socket
    case S_IFCHR: kind = .characterDevice
    case S_IFBLK: kind = .blockDevice
    default: kind = .unknown
    }
    identity = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    byteCount = Int(info.st_size)
    permissions = UInt32(info.st_mode) & 0o7777
  }
}

/// A file's device and inode numbers: its identity on this machine.
public struct FileIdentity: Sendable, Hashable {
  public var device: UInt64
  public var inode: UInt64
}
