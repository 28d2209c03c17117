#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// What identifies one version of a file without reading it: device, inode, size and modification time
/// (nanoseconds). A part of a split job records it with each file's SHA-256; `--finalize` trusts the hash
/// while the stamp is unchanged and hashes the file again when it is not (touched, replaced, rewritten).
public struct FileStamp: Sendable, Hashable, CustomStringConvertible, LosslessStringConvertible {
  public var device: UInt64
  public var inode: UInt64
  public var byteCount: Int
  public var modificationNanoseconds: Int64

  /// The stamp of the file at `path` (following links), or `nil` when there is none.
  public init?(of path: String) {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    device = UInt64(info.st_dev)
    inode = UInt64(info.st_ino)
    byteCount = Int(info.st_size)
    modificationNanoseconds = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
  }

  /// `device:inode:size:mtime_ns`.
  public var description: String { "\(device):\(inode):\(byteCount):\(modificationNanoseconds)" }

  public init?(_ description: String) {
    let parts = description.split(separator: ":")
    guard parts.count == 4, let device = UInt64(parts[0]), let inode = UInt64(parts[1]), let bytes = Int(parts[2]),
      let time = Int64(parts[3])
    else { return nil }
    (self.device, self.inode, byteCount, modificationNanoseconds) = (device, inode, bytes, time)
  }
}
