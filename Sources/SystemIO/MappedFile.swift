#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// A whole file mapped read-only into memory (`mmap(PROT_READ, MAP_PRIVATE)`), unmapped on deinit.
///
/// Zero-copy views into `bytes` are valid only while this object is alive; types that hand out views
/// keep a reference to it. Mapped bytes carry no alignment guarantee beyond the page start, so readers
/// use `loadUnaligned`. If another process truncates the file while it is mapped, touching the lost
/// pages raises SIGBUS; Smelt never writes its inputs, and documents that inputs must not change.
public final class MappedFile: Sendable {
  /// The path the file was opened with.
  public let path: String
  /// The file's size in bytes at the time of mapping.
  public let byteCount: Int
  // SAFETY: the mapping is read-only and immutable for the object's lifetime, so sharing the base
  // address across threads is safe; stored as a bit pattern to keep the class trivially Sendable.
  private let base: UInt

  /// Maps `path`. An empty file maps to an empty buffer (mmap rejects length 0).
  public init(path: String) throws(SystemError) {
    let fd = try FileDescriptor.open(path, .readOnly)
    defer { fd.close() }
    let size = try fd.byteCount()
    self.path = path
    self.byteCount = size
    if size == 0 {
      base = 0
      return
    }
    let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd.rawValue, 0)
    guard let address, address != MAP_FAILED else { throw SystemError("map", path: path, detail: "\(size) bytes") }
    base = UInt(bitPattern: address)
  }

  deinit {
    if base != 0 { munmap(UnsafeMutableRawPointer(bitPattern: base), byteCount) }
  }

  /// The file's bytes. Valid while `self` is alive.
  public var bytes: UnsafeRawBufferPointer {
    guard base != 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: base), count: byteCount)
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
