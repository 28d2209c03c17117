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
public final class SafeTensorsFileWriter: Sendable {
  /// The plan being written.
  public let layout: SafeTensorsLayout
  private let output: AtomicOutputFile
  /// Per tensor (in layout order): the disjoint, sorted byte ranges written so far.
  private let written: Mutex<[[Range<Int>]]>

  /// Creates the temporary output file (sized to the final length) and writes the header.
  public init(path: String, layout: SafeTensorsLayout) throws(SafeTensorsFileError) {
    self.layout = layout
    do {
      output = try AtomicOutputFile(path: path, byteCount: layout.fileByteCount)
      try output.write(layout.headerBytes, at: 0)
    } catch {
      throw SafeTensorsFileError(path: path, error: .io(error))
    }
    written = Mutex(Array(repeating: [], count: layout.entries.count))
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
        from: source, offset: sourceFileOffset, to: output.fileDescriptor,
        offset: layout.header.dataStart + entry.dataOffsets.lowerBound, byteCount: entry.byteCount)
    } catch {
      throw fail(.io(error))
    }
  }

  /// Verifies that every tensor was completely written, then syncs and renames the file into place.
  /// If a tensor is incomplete, throws `incompleteTensor` and leaves the writer open.
  public func commit() throws(SafeTensorsFileError) {
    let incomplete = written.withLock { ranges -> [(Int, Int)] in
      var result: [(Int, Int)] = []
      for (position, entry) in layout.entries.enumerated() {
        let count = ranges[position].reduce(0) { $0 + $1.count }
        if count != entry.byteCount { result.append((position, count)) }
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
      try output.commit()
    } catch {
      throw fail(.io(error))
    }
  }

  /// Removes the temporary file without creating the output. Safe to call more than once.
  public func abandon() { output.abandon() }

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
