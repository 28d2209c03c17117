#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// A whole regular file mapped read-only into memory (`mmap(PROT_READ, MAP_PRIVATE)`), unmapped on deinit.
///
/// Zero-copy views into `bytes` are valid only while this object is alive; types that hand out views
/// keep a reference to it. Mapped bytes carry no alignment guarantee beyond the page start, so readers
/// use `loadUnaligned`.
///
/// Inputs that change while mapped: if another process truncates the file, reading past its new end does
/// not kill the process (see `MappingFaults`): those pages read as zeros and the mapping remembers it.
/// Readers call `checkNotTruncated()` after each chunk they read and `checkUnchanged()` before committing a
/// result, and so fail with an error naming the file instead of writing zeros.
public final class MappedFile: Sendable {
  /// The path the file was opened with.
  public let path: String
  /// The file's size in bytes at the time of mapping.
  public let byteCount: Int
  // SAFETY: the mapping is read-only and immutable for the object's lifetime, so sharing the base
  // address across threads is safe; stored as a bit pattern to keep the class trivially Sendable.
  private let base: UInt
  /// The `MappingFaults` slot of the range (nil for an empty file, which maps nothing).
  private let faultSlot: Int?
  /// What the file was when mapped: a later `stat` that differs means it changed under the mapping.
  private let mapped: Snapshot

  private struct Snapshot: Sendable, Equatable {
    var identity: FileIdentity
    var byteCount: Int
    var modificationSeconds: Int
    var modificationNanoseconds: Int

    init(_ info: stat) {
      identity = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
      byteCount = Int(info.st_size)
      modificationSeconds = Int(info.st_mtim.tv_sec)
      modificationNanoseconds = Int(info.st_mtim.tv_nsec)
    }
  }

  /// Maps `path`. An empty file maps to an empty buffer (mmap rejects length 0).
  /// - Throws: `SystemError` if the file cannot be opened, is not a regular file, or cannot be mapped.
  public init(path: String) throws(SystemError) {
    let fd = try FileDescriptor.open(path, .readOnly)
    defer { fd.close() }
    var info = stat()
    guard fstat(fd.rawValue, &info) == 0 else { throw SystemError("stat", path: path) }
    let size = Int(info.st_size)
    self.path = path
    self.byteCount = size
    self.mapped = Snapshot(info)
    self.statusChangeTime = MappedFile.text(seconds: Int(info.st_ctim.tv_sec), nanoseconds: Int(info.st_ctim.tv_nsec))
    if size == 0 {
      base = 0
      faultSlot = nil
      return
    }
    if let problem = ProcessLimits.mappingProblem(byteCount: size) {
      throw SystemError("map", path: path, code: 0, detail: problem)
    }
    let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd.rawValue, 0)
    guard let address, address != MAP_FAILED else { throw SystemError("map", path: path, detail: "\(size) bytes") }
    do {
      faultSlot = try MappingFaults.register(start: UInt(bitPattern: address), byteCount: size)
    } catch {
      munmap(address, size)
      throw SystemError("map", path: path, code: error.code, detail: error.detail)
    }
    base = UInt(bitPattern: address)
  }

  deinit {
    if let faultSlot { MappingFaults.unregister(faultSlot) }
    if base != 0 { munmap(UnsafeMutableRawPointer(bitPattern: base), byteCount) }
  }

  /// The file's bytes. Valid while `self` is alive.
  public var bytes: UnsafeRawBufferPointer {
    guard base != 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: base), count: byteCount)
  }

  /// The file's modification time when it was mapped, as `seconds.nanoseconds` (for fingerprints).
  public var modificationTime: String {
    MappedFile.text(seconds: mapped.modificationSeconds, nanoseconds: mapped.modificationNanoseconds)
  }

  /// The file's status change time (`st_ctim`) when it was mapped, as `seconds.nanoseconds`: unlike the
  /// modification time, no program can set it, so a file rewritten with its old time restored
  /// (`cp -p`, `touch -r`) still shows. For fingerprints, not for `checkUnchanged()` (a `chmod` sets it).
  public let statusChangeTime: String

  private static func text(seconds: Int, nanoseconds: Int) -> String {
    let digits = String(nanoseconds)
    return "\(seconds)." + String(repeating: "0", count: max(0, 9 - digits.count)) + digits
  }

  /// True if a read of this mapping reached a page the file no longer has (it was truncated while
  /// mapped): such reads returned zeros. Cheap (one atomic load): call it after every chunk.
  public var wasTruncated: Bool { faultSlot.map(MappingFaults.hasFaulted) ?? false }

  /// Throws if a read of this mapping found the file truncated (see `wasTruncated`).
  public func checkNotTruncated() throws(SystemError) {
    guard wasTruncated else { return }
    // SIGBUS also reports a page the device could not read: say which one it was when the size tells.
    if let now = FileSystem.status(of: path)?.byteCount, now >= byteCount {
      throw SystemError(
        "read", path: path, code: 0,
        detail: "a page of the file could not be read while smelt was reading it (an I/O error, or the file shrank and grew again); check the disk or the network file system and rerun")
    }
    let now = FileSystem.status(of: path).map { " (it has \($0.byteCount) bytes now, \(byteCount) when smelt opened it)" } ?? ""
    throw SystemError(
      "read", path: path, code: 0,
      detail: "the file was truncated while smelt was reading it\(now); another program changed the input: rerun once it is stable")
  }

  /// Throws if the file was truncated under the mapping, or if the path now shows another size, another
  /// modification time or another file than the one mapped (rewritten in place or replaced while smelt
  /// read it). One `stat`: call it before committing a result derived from the bytes.
  public func checkUnchanged() throws(SystemError) {
    try checkNotTruncated()
    var info = stat()
    guard stat(path, &info) == 0 else {
      throw SystemError("read", path: path, detail: "the input disappeared while smelt was reading it")
    }
    let now = Snapshot(info)
    guard now != mapped else { return }
    let what: String
    if now.identity != mapped.identity {
      what = "was replaced by another file"
    } else if now.byteCount != mapped.byteCount {
      what = "changed size from \(mapped.byteCount) to \(now.byteCount) bytes"
    } else {
      what = "was modified (its modification time changed)"
    }
    throw SystemError(
      "read", path: path, code: 0,
      detail: "the file \(what) while smelt was reading it; another program changed the input: rerun once it is stable")
  }

  /// Access pattern hints for `advise(_:range:)`.
  public enum Advice: Sendable {
    /// `MADV_WILLNEED`: start reading ahead now.
    case willNeed
    /// `MADV_SEQUENTIAL`: aggressive read-ahead, early reclaim.
    case sequential
    /// `MADV_DONTNEED`: drop these pages from this mapping (they are re-read on next touch).
    case dontNeed
  }

  /// Advises the kernel about `range` (byte offsets into the file); advisory, errors ignored.
  public func advise(_ advice: Advice, range: Range<Int>? = nil) {
    guard base != 0 else { return }
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    let requested = (range ?? 0..<byteCount).clamped(to: 0..<byteCount)
    let start = requested.lowerBound / pageSize * pageSize
    let length = requested.upperBound - start
    guard length > 0 else { return }
    let flag: Int32
    switch advice {
    case .willNeed: flag = MADV_WILLNEED
    case .sequential: flag = MADV_SEQUENTIAL
    case .dontNeed: flag = MADV_DONTNEED
    }
    _ = madvise(UnsafeMutableRawPointer(bitPattern: base + UInt(start)), length, flag)
  }
}
