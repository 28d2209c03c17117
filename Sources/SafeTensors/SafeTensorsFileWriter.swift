import Synchronization
import SystemIO
import TensorCore

/// Writes a safetensors file planned by a `SafeTensorsLayout`, one tensor (or part of one) at a time.
///
/// The header is written first; tensor bytes go to their precomputed offsets with positional writes, from
/// any number of threads and in any order. Output goes to a hidden temporary sibling
/// (`.<name>.smelt-tmp`); `commit()` checks that every tensor was completely written, fsyncs, renames the
/// file into place and fsyncs the directory. A writer that is not committed (an error, `abandon()`, or
/// deinit) removes the temporary file, so a partial file never appears under the final name.
///
/// A *shared* writer (`init(sharedPath:layout:writing:)`) writes only some of the file's tensors into a file
/// other processes write the rest of (`SharedOutputFile`): `commit()` checks those tensors and syncs, and
/// the file keeps its temporary name until the job's last step publishes it.
public final class SafeTensorsFileWriter: Sendable {
  /// The plan being written.
  public let layout: SafeTensorsLayout
  private let output: Output
  /// Per tensor (in layout order): the disjoint, sorted byte ranges written so far.
  private let written: Mutex<[[Range<Int>]]>
  /// The positions (in layout order) this writer must complete: all, or a shared writer's own.
  private let owned: [Int]

  private enum Output: Sendable {
    case atomic(AtomicOutputFile)
    case shared(SharedOutputFile)

    var path: String {
      switch self {
      case .atomic(let file): file.path
      case .shared(let file): file.path
      }
    }
    var descriptor: FileDescriptor {
      switch self {
      case .atomic(let file): file.fileDescriptor
      case .shared(let file): file.fileDescriptor
      }
    }
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(SystemError) {
      switch self {
      case .atomic(let file): try file.write(bytes, at: offset)
      case .shared(let file): try file.write(bytes, at: offset)
      }
    }
  }

  /// Creates the temporary output file (sized to the final length) and writes the header.
  public init(path: String, layout: SafeTensorsLayout) throws(SafeTensorsFileError) {
    self.layout = layout
    do {
      let file = try AtomicOutputFile(path: path, byteCount: layout.fileByteCount)
      try file.write(layout.headerBytes, at: 0)
      output = .atomic(file)
    } catch {
      throw SafeTensorsFileError(path: path, error: .io(error))
    }
    written = Mutex(Array(repeating: [], count: layout.entries.count))
    owned = Array(layout.entries.indices)
  }

  /// Opens the shared temporary file of `path` (sized to the final length), writes the header (every
  /// sharing writer writes the same bytes) and will complete only the tensors named in `tensors`.
  public init(sharedPath path: String, layout: SafeTensorsLayout, writing tensors: Set<String>) throws(SafeTensorsFileError) {
    self.layout = layout
    do throws(SystemError) {
      let file = try SharedOutputFile(path: path, byteCount: layout.fileByteCount)
      do { try file.write(layout.headerBytes, at: 0) } catch {
        file.close()
        throw error
      }
      output = .shared(file)
    } catch {
      throw SafeTensorsFileError(path: path, error: .io(error))
    }
    written = Mutex(Array(repeating: [], count: layout.entries.count))
    owned = layout.entries.indices.filter { tensors.contains(layout.entries[$0].name) }
  }

  /// The final path.
  public var path: String { output.path }

  /// Writes all of tensor `name`'s bytes; `bytes.count` must equal the planned byte count.
  public func write(tensorNamed name: String, bytes: UnsafeRawBufferPointer) throws(SafeTensorsFileError) {
    guard let entry = layout.entry(named: name) else { throw fail(.tensorNotFound(name: name)) }
    guard bytes.count == entry.byteCount else {
      throw fail(.writeOutOfBounds(tensor: name, offsetWithinTensor: 0, byteCount: bytes.count, tensorByteCount: entry.byteCount))
    }
    try write(tensorNamed: name, atByteOffsetWithinTensor: 0, bytes: bytes)
  }

  /// Writes all of tensor `name`'s bytes from an array.
  public func write(tensorNamed name: String, bytes: [UInt8]) throws(SafeTensorsFileError) {
    let result: Result<Void, SafeTensorsFileError> = bytes.withUnsafeBytes { raw in
      Result { () throws(SafeTensorsFileError) in try write(tensorNamed: name, bytes: raw) }
    }
    try result.get()
  }

  /// Writes part of tensor `name` (for example a range of rows) starting `offset` bytes into the tensor.
  /// Parts may arrive in any order and from several threads, but may not overlap.
  public func write(tensorNamed name: String, atByteOffsetWithinTensor offset: Int, bytes: UnsafeRawBufferPointer)
    throws(SafeTensorsFileError)
  {
    guard let position = layout.header.position(of: name) else { throw fail(.tensorNotFound(name: name)) }
    let entry = layout.entries[position]
    guard offset >= 0, offset <= entry.byteCount, bytes.count <= entry.byteCount - offset else {
      throw fail(
        .writeOutOfBounds(tensor: name, offsetWithinTensor: offset, byteCount: bytes.count, tensorByteCount: entry.byteCount))
    }
    guard !bytes.isEmpty else { return }
    let range = offset..<(offset + bytes.count)
    let reserved = written.withLock { ranges -> Bool in SafeTensorsFileWriter.insert(range, into: &ranges[position]) }
    guard reserved else { throw fail(.overlappingWrite(tensor: name, offsetWithinTensor: offset, byteCount: bytes.count)) }
    do {
      try output.write(bytes, at: layout.header.dataStart + entry.dataOffsets.lowerBound + offset)
    } catch {
      throw fail(.io(error))
    }
  }

  /// Copies all of tensor `name` from `source` (starting at `sourceFileOffset`) file to file, without
  /// passing the bytes through user space where the kernel can copy them (`copy_file_range`).
  public func copy(tensorNamed name: String, from source: FileDescriptor, sourceFileOffset: Int) throws(SafeTensorsFileError) {
    guard let position = layout.header.position(of: name) else { throw fail(.tensorNotFound(name: name)) }
    let entry = layout.entries[position]
    guard entry.byteCount > 0 else { return }
    let range = 0..<entry.byteCount
    let reserved = written.withLock { ranges -> Bool in SafeTensorsFileWriter.insert(range, into: &ranges[position]) }
    guard reserved else { throw fail(.overlappingWrite(tensor: name, offsetWithinTensor: 0, byteCount: entry.byteCount)) }
    do {
      try FileCopy.copy(
        from: source, offset: sourceFileOffset, to: output.descriptor,
        offset: layout.header.dataStart + entry.dataOffsets.lowerBound, byteCount: entry.byteCount)
    } catch {
      throw fail(.io(error))
    }
  }

  /// Verifies that every tensor was completely written (a shared writer: its own), then syncs and renames
  /// the file into place (a shared writer: syncs and closes). If a tensor is incomplete, throws
  /// `incompleteTensor` and leaves the writer open.
  public func commit() throws(SafeTensorsFileError) {
    let incomplete = written.withLock { ranges -> [(Int, Int)] in
      var result: [(Int, Int)] = []
      for position in owned {
        let count = ranges[position].reduce(0) { $0 + $1.count }
        if count != layout.entries[position].byteCount { result.append((position, count)) }
      }
      return result
    }
    if let (position, count) = incomplete.first {
      let entry = layout.entries[position]
      throw fail(
        .incompleteTensor(
          tensor: entry.name, writtenByteCount: count, expectedByteCount: entry.byteCount,
          incompleteTensorCount: incomplete.count))
    }
    do {
      switch output {
      case .atomic(let file): try file.commit()
      case .shared(let file): try file.finish()
      }
    } catch {
      throw fail(.io(error))
    }
  }

  /// Removes the temporary file without creating the output (a shared writer closes it: siblings' bytes
  /// stay). Safe to call more than once.
  public func abandon() {
    switch output {
    case .atomic(let file): file.abandon()
    case .shared(let file): file.close()
    }
  }

  private func fail(_ error: SafeTensorsError) -> SafeTensorsFileError {
    SafeTensorsFileError(path: output.path, error: error)
  }

  /// Inserts `range` into sorted disjoint `ranges`, merging neighbours; false if it overlaps one.
  static func insert(_ range: Range<Int>, into ranges: inout [Range<Int>]) -> Bool {
    var low = 0
    var high = ranges.count
    while low < high {
      let mid = (low + high) / 2
      if ranges[mid].lowerBound < range.lowerBound { low = mid + 1 } else { high = mid }
    }
    if low > 0, ranges[low - 1].upperBound > range.lowerBound { return false }
    if low < ranges.count, ranges[low].lowerBound < range.upperBound { return false }
    var merged = range
    var removeStart = low
    var removeEnd = low
    if low > 0, ranges[low - 1].upperBound == range.lowerBound {
      merged = ranges[low - 1].lowerBound..<merged.upperBound
      removeStart = low - 1
    }
    if low < ranges.count, ranges[low].lowerBound == range.upperBound {
      merged = merged.lowerBound..<ranges[low].upperBound
      removeEnd = low + 1
    }
    ranges.replaceSubrange(removeStart..<removeEnd, with: [merged])
    return true
  }
}
