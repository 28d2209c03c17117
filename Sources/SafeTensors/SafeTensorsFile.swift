import SystemIO
import TensorCore

/// A safetensors file mapped read-only, with its validated header.
///
/// The header is read and validated first (the 8 length bytes are checked before any more of the file
/// is read), then the file is mapped once. Tensor data is reached through zero-copy `TensorView`s that keep this
/// object, and so the mapping, alive. A file truncated while open reads as zeros past its new end instead of
/// raising SIGBUS, and its mapping remembers it: readers check `mapping.checkNotTruncated()` (see `MappedFile`).
public final class SafeTensorsFile: Sendable {
  /// The path the file was opened with.
  public let path: String
  /// The validated header.
  public let header: SafeTensorsHeader
  /// The mapping the views point into.
  public let mapping: MappedFile

  /// Maps and validates the file at `path`.
  ///
  /// The header is read with `pread`, read-ahead off, before the file is mapped: opening touches only
  /// the header's bytes. (Reading it through the mapping would fault in the kernel's read-around window
  /// of tensor data with it, up to several MiB per file on disks tuned for streaming.)
  /// - Throws: `SafeTensorsFileError` with the path and the first rule the file breaks, or `.io`.
  public convenience init(path: String) throws(SafeTensorsFileError) {
    let (prefix, fileByteCount) = try SafeTensorsFile.readPrefix(path: path)
    let parsed: Result<SafeTensorsHeader, SafeTensorsError> = prefix.withUnsafeBytes { bytes in
      Result { () throws(SafeTensorsError) in try SafeTensorsHeader.parse(prefix: bytes, fileByteCount: fileByteCount) }
    }
    let header: SafeTensorsHeader
    do {
      header = try parsed.get()
    } catch {
      throw SafeTensorsFileError(path: path, error: error)
    }
    let mapping: MappedFile
    do {
      mapping = try MappedFile(path: path)
    } catch {
      throw SafeTensorsFileError(path: path, error: .io(error))
    }
    guard mapping.byteCount == fileByteCount else {
      let detail = "the file changed size from \(fileByteCount) to \(mapping.byteCount) bytes while it was opened"
      throw SafeTensorsFileError(path: path, error: .io(SystemError("map", path: path, code: 0, detail: detail)))
    }
    self.init(mapping: mapping, header: header)
  }

  /// The file's first 8 + N bytes (its length field and header) and its size; fewer when the 8 bytes are
  /// already wrong (the parser then says why).
  private static func readPrefix(path: String) throws(SafeTensorsFileError) -> (prefix: [UInt8], fileByteCount: Int) {
    do {
      let fd = try FileDescriptor.open(path, .readOnly)
      defer { fd.close() }
      fd.advise(.random)
      let size = try fd.byteCount()
      let first = try read(fd, byteCount: min(8, size))
      let n: Result<Int, SafeTensorsError> = first.withUnsafeBytes { bytes in
        Result { () throws(SafeTensorsError) in try SafeTensorsHeader.headerByteCount(firstBytes: bytes, fileByteCount: size) }
      }
      guard case .success(let headerByteCount) = n else { return (first, size) }
      return (try read(fd, byteCount: 8 + headerByteCount), size)
    } catch {
      throw SafeTensorsFileError(path: path, error: .io(error))
    }
  }

  /// The first `byteCount` bytes of `fd`'s file.
  private static func read(_ fd: FileDescriptor, byteCount: Int) throws(SystemError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: byteCount)
    let result: Result<Void, SystemError> = bytes.withUnsafeMutableBytes { buffer in
      Result { () throws(SystemError) in try fd.read(into: buffer, at: 0) }
    }
    try result.get()
    return bytes
  }

  /// Validates an existing mapping.
  public init(mapping: MappedFile) throws(SafeTensorsFileError) {
    self.path = mapping.path
    self.mapping = mapping
    do {
      self.header = try SafeTensorsHeader.parse(prefix: mapping.bytes, fileByteCount: mapping.byteCount)
    } catch {
      // A header that read as zeros because the file shrank meanwhile: say that, not "invalid JSON".
      do { try mapping.checkNotTruncated() } catch let truncated { throw SafeTensorsFileError(path: mapping.path, error: .io(truncated)) }
      throw SafeTensorsFileError(path: mapping.path, error: error)
    }
  }

  /// A file whose `header` was parsed from `mapping`'s bytes.
  private init(mapping: MappedFile, header: SafeTensorsHeader) {
    self.path = mapping.path
    self.mapping = mapping
    self.header = header
  }

  /// The tensors in file order.
  public var entries: [TensorEntry] { header.tensors }

  /// The `__metadata__` map, if any.
  public var metadata: [String: String]? { header.metadata }

  /// A view of tensor `name`, or `nil` if the file has no such tensor.
  public func tensor(named name: String) -> TensorView? {
    header.entry(named: name).map { TensorView(entry: $0, owner: self) }
  }

  /// A view of tensor `name`, or `tensorNotFound` (with this file's path).
  public func requireTensor(named name: String) throws(SafeTensorsFileError) -> TensorView {
    guard let view = tensor(named: name) else {
      throw SafeTensorsFileError(path: path, error: .tensorNotFound(name: name))
    }
    return view
  }

  /// A view of `entry`, which must come from this file's header.
  public func tensor(_ entry: TensorEntry) -> TensorView {
    precondition(header.entry(named: entry.name) == entry, "entry does not belong to this file")
    return TensorView(entry: entry, owner: self)
  }
}

/// A zero-copy view of one tensor's bytes inside a mapped `SafeTensorsFile`.
///
/// Lifetime: `bytes` points into the mapping and is valid while this view or its `owner` is alive. The
/// view holds `owner` strongly, so keeping the view is enough; when using `bytes` after the last use of the
/// view, wrap the work in `withUnsafeBytes` (which extends the lifetime) instead.
/// The bytes have no alignment guarantee: read them with `loadUnaligned` or copy them out.
public struct TensorView: Sendable {
  /// The tensor's header entry.
  public let entry: TensorEntry
  /// The file (and mapping) the bytes belong to.
  public let owner: SafeTensorsFile

  init(entry: TensorEntry, owner: SafeTensorsFile) {
    self.entry = entry
    self.owner = owner
  }

  public var name: String { entry.name }
  public var dtype: DType { entry.dtype }
  public var shape: [Int] { entry.shape }

  /// The tensor's bytes in the mapping (little-endian, row-major, unaligned).
  public var bytes: UnsafeRawBufferPointer {
    let range = owner.header.fileRange(of: entry)
    return UnsafeRawBufferPointer(rebasing: owner.mapping.bytes[range])
  }

  /// Calls `body` with the bytes, keeping the mapping alive for the duration.
  public func withUnsafeBytes<Result, Failure: Error>(
    _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
  ) throws(Failure) -> Result {
    defer { withExtendedLifetime(owner) {} }
    return try body(bytes)
  }

  /// A copy of the bytes.
  public func copyBytes() -> [UInt8] { withUnsafeBytes { Array($0) } }

  /// A copy of the elements as `T`, whose size must equal the dtype's element size (for example `UInt16`
  /// for BF16, `Float` for F32). Works whatever the alignment of the data in the file.
  public func copyElements<T: BitwiseCopyable>(as type: T.Type) throws(SafeTensorsError) -> [T] {
    guard let width = dtype.byteWidth, MemoryLayout<T>.size == width, MemoryLayout<T>.stride == width else {
      throw .elementSizeMismatch(tensor: name, dtype: dtype, requestedByteWidth: MemoryLayout<T>.size)
    }
    return withUnsafeBytes { source in
      [T](unsafeUninitializedCapacity: entry.elementCount) { destination, initialized in
        // memcpy has no alignment requirement on the source.
        UnsafeMutableRawBufferPointer(destination).copyMemory(from: source)
        initialized = entry.elementCount
      }
    }
  }

  /// Element `index` read as `T` with an unaligned load. `T`'s size must equal the dtype's element size
  /// and `index` must be in `0..<entry.elementCount` (checked).
  public func element<T: BitwiseCopyable>(at index: Int, as type: T.Type) -> T {
    precondition(MemoryLayout<T>.size == dtype.byteWidth, "element type size does not match \(dtype)")
    precondition(index >= 0 && index < entry.elementCount, "element index out of range")
    return withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index * MemoryLayout<T>.size, as: T.self) }
  }
}
