import SystemIO
import TensorCore

/// SHA-256 of files, for the manifests `convert`, `shard` and `verify` write and check.
///
/// Hashing dominates a conversion otherwise: the portable `TensorCore.SHA256` runs at ~250 MB/s per core,
/// while the system's libcrypto (loaded at run time with `dlopen`, when present) uses the CPU's SHA
/// instructions at ~1.5-2 GB/s. The digest is the same either way (tested); `SMELT_PURE_SHA256=1` forces
/// the portable code. No build-time dependency: without libcrypto Smelt falls back silently.
public enum FileDigest {
  /// The lowercase hex SHA-256 of the file at `path`, read in 8 MiB chunks.
  public static func sha256(of path: String, forcePortable: Bool = false) throws -> String {
    let fd = try FileDescriptor.open(path, .readOnly)
    defer { fd.close() }
    return try sha256(of: fd, byteCount: try fd.byteCount(), forcePortable: forcePortable)
  }

  /// The lowercase hex SHA-256 of the first `byteCount` bytes of `descriptor`, read in 8 MiB chunks;
  /// `progress` is called with each chunk's size.
  public static func sha256(
    of descriptor: FileDescriptor, byteCount: Int, forcePortable: Bool = false, progress: ((Int) -> Void)? = nil
  ) throws -> String {
    descriptor.advise(.sequential)
    let chunk = 8 << 20
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
    defer { buffer.deallocate() }
    var hasher = Hasher(forcePortable: forcePortable)
    var offset = 0
    while offset < byteCount {
      let n = min(chunk, byteCount - offset)
      let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
      try descriptor.read(into: slice, at: offset)
      hasher.update(UnsafeRawBufferPointer(slice))
      offset += n
      progress?(n)
    }
    return hasher.finalizeHex()
  }

  /// The SHA-256 of the bytes of `ranges` (sorted, disjoint) of the file at `path`, read in order.
  public static func sha256(of path: String, byteCount: Int, ranges: [Range<Int>]) throws -> String {
    let descriptor = try FileDescriptor.open(path, .readOnly)
    defer { descriptor.close() }
    let chunk = 8 << 20
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
    defer { buffer.deallocate() }
    var hasher = Hasher()
    for range in ranges {
      guard range.upperBound <= byteCount else { throw SystemError("hash", path: path, code: SystemError.invalidArgument, detail: "range \(range) past the end") }
      var offset = range.lowerBound
      while offset < range.upperBound {
        let n = min(chunk, range.upperBound - offset)
        let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
        try descriptor.read(into: slice, at: offset)
        hasher.update(UnsafeRawBufferPointer(slice))
        offset += n
      }
    }
    return hasher.finalizeHex()
  }

  /// One pass over the first `byteCount` bytes of the file at `path`: its SHA-256, and the SHA-256 of the
  /// bytes of each range set (sorted, disjoint ranges, read in order) — the parts' shares of a file several
  /// parts wrote.
  public static func sha256(of path: String, byteCount: Int, rangeSets: [[Range<Int>]]) throws -> (whole: String, sets: [String]) {
    let descriptor = try FileDescriptor.open(path, .readOnly)
    defer { descriptor.close() }
    descriptor.advise(.sequential)
    let chunk = 8 << 20
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
    defer { buffer.deallocate() }
    var whole = Hasher()
    let sets = rangeSets.map { _ in HasherBox() }
    var cursors = [Int](repeating: 0, count: rangeSets.count)
    var offset = 0
    while offset < byteCount {
      let n = min(chunk, byteCount - offset)
      let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
      try descriptor.read(into: slice, at: offset)
      whole.update(UnsafeRawBufferPointer(slice))
      let window = offset..<(offset + n)
      for (k, ranges) in rangeSets.enumerated() {
        while cursors[k] < ranges.count {
          let range = ranges[cursors[k]]
          let overlap = range.clamped(to: window)
          if !overlap.isEmpty {
            sets[k].update(UnsafeRawBufferPointer(rebasing: slice[(overlap.lowerBound - offset)..<(overlap.upperBound - offset)]))
          }
          // Done with this range once it ends inside the window; else it continues in the next chunk.
          guard range.upperBound <= window.upperBound else { break }
          cursors[k] += 1
        }
      }
      offset += n
    }
    return (whole.finalizeHex(), sets.map { $0.finalizeHex() })
  }

  /// A `Hasher` that can live in an array.
  private final class HasherBox {
    private var hasher: Hasher? = Hasher()
    func update(_ bytes: UnsafeRawBufferPointer) { hasher!.update(bytes) }
    func finalizeHex() -> String { hasher.take()!.finalizeHex() }
  }

  /// Whether libcrypto's SHA-256 is in use.
  public static var usesSystemLibrary: Bool { SystemSHA256.functions != nil && !portableForced }

  static var portableForced: Bool { ProcessEnvironment.current("SMELT_PURE_SHA256") == "1" }

  /// A streaming SHA-256: libcrypto's when available, else `TensorCore.SHA256`.
  public struct Hasher: ~Copyable {
    private var portable: SHA256?
    private let context: UnsafeMutableRawPointer?
    private let functions: SystemSHA256.Functions?

    public init(forcePortable: Bool = false) {
      if !forcePortable, !FileDigest.portableForced, let functions = SystemSHA256.functions {
        let context = UnsafeMutableRawPointer.allocate(byteCount: SystemSHA256.contextByteCount, alignment: 64)
        if functions.initialize(context) == 1 {
          self.context = context
          self.functions = functions
          portable = nil
          return
        }
        context.deallocate()
      }
      context = nil
      functions = nil
      portable = SHA256()
    }

    deinit { context?.deallocate() }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
      if let context, let functions {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        _ = functions.update(context, base, bytes.count)
      } else {
        portable?.update(bytes)
      }
    }

    public consuming func finalizeHex() -> String {
      if let context, let functions {
        var digest = [UInt8](repeating: 0, count: 32)
        _ = digest.withUnsafeMutableBufferPointer { functions.finalize($0.baseAddress!, context) }
        return SHA256.hexString(digest)
      }
      var hasher = portable ?? SHA256()
      return SHA256.hexString(hasher.finalize())
    }
  }
}
