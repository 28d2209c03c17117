import Checkpoint
import SafeTensors
import SystemIO

/// The file format a conversion's output files are written in: safetensors shards today; a single-file
/// container (GGUF) plugs in here. `ConversionRunner` writes only through this seam: it asks the container for
/// each planned file's size and a writer, writes tensor byte ranges (or copies tensors file to file) through
/// the writer, and commits it.
public protocol OutputContainer: Sendable {
  /// The byte count of a file holding `tensors` (no I/O), so a finished file can be recognised on `--resume`.
  func fileByteCount(of tensors: [PlannedTensor]) throws -> Int
  /// A writer for a file holding `tensors`, written under a temporary name next to `path`.
  func makeWriter(path: String, tensors: [PlannedTensor]) throws -> any OutputFileWriter
  /// A writer of the tensors named `writing` only, into a file holding `tensors` that other parts of a split
  /// job write the rest of (`SharedOutputFile`): its `commit` syncs and leaves the file for `--finalize`.
  func makeSharedWriter(path: String, tensors: [PlannedTensor], writing: Set<String>) throws -> any OutputFileWriter
  /// The bytes a file holding `tensors` starts with, fixed by the plan (the header), and where each
  /// tensor's bytes lie in it (no I/O): what `--finalize` checks a part's file against.
  func layout(of tensors: [PlannedTensor]) throws -> (header: [UInt8], tensorRanges: [String: Range<Int>])
  /// Files written next to the weight files once they are complete (a safetensors index for several shards):
  /// `files` are the output file names and the tensors each holds, in order.
  func indexFiles(files: [(name: String, tensors: [PlannedTensor])], totalByteCount: Int) -> [(name: String, bytes: [UInt8])]
}

/// One output file being written (by several workers at once: every method may be called concurrently for
/// different tensors or disjoint byte ranges).
public protocol OutputFileWriter: Sendable {
  /// The complete file's byte count.
  var fileByteCount: Int { get }
  /// Bytes at the start of the file that are final as soon as the writer exists (the header).
  var headerByteCount: Int { get }
  /// Where tensor `name`'s bytes lie in the file.
  func fileRange(ofTensor name: String) -> Range<Int>?
  /// Writes bytes `offset..<offset+bytes.count` of tensor `name`.
  func write(tensorNamed name: String, atByteOffsetWithinTensor offset: Int, bytes: UnsafeRawBufferPointer) throws
  /// Copies all of tensor `name` from `source` at `sourceFileOffset` (file to file).
  func copy(tensorNamed name: String, from source: FileDescriptor, sourceFileOffset: Int) throws
  /// Checks that every tensor (a shared writer: its own) is complete and renames the file into place (a
  /// shared writer: syncs it).
  func commit() throws
  /// Removes the temporary file.
  func abandon()
}

/// safetensors shards with `model.safetensors.index.json` when there are several.
public struct SafeTensorsContainer: OutputContainer {
  public init() {}

  public func fileByteCount(of tensors: [PlannedTensor]) throws -> Int { try SafeTensorsLayout(tensors: tensors).fileByteCount }

  public func makeWriter(path: String, tensors: [PlannedTensor]) throws -> any OutputFileWriter {
    try SafeTensorsFileWriter(path: path, layout: try SafeTensorsLayout(tensors: tensors))
  }

  public func makeSharedWriter(path: String, tensors: [PlannedTensor], writing: Set<String>) throws -> any OutputFileWriter {
    try SafeTensorsFileWriter(sharedPath: path, layout: try SafeTensorsLayout(tensors: tensors), writing: writing)
  }

  public func layout(of tensors: [PlannedTensor]) throws -> (header: [UInt8], tensorRanges: [String: Range<Int>]) {
    let layout = try SafeTensorsLayout(tensors: tensors)
    var ranges: [String: Range<Int>] = [:]
    for entry in layout.entries {
      let start = layout.header.dataStart + entry.dataOffsets.lowerBound
      ranges[entry.name] = start..<(start + entry.byteCount)
    }
    return (layout.headerBytes, ranges)
  }

  public func indexFiles(files: [(name: String, tensors: [PlannedTensor])], totalByteCount: Int) -> [(name: String, bytes: [UInt8])] {
    guard files.count > 1 else { return [] }
    let weightMap = files.flatMap { file in file.tensors.map { (tensor: $0.name, file: file.name) } }
    return [("model.safetensors.index.json", CheckpointIndex(weightMap: weightMap, totalByteCount: totalByteCount).jsonBytes())]
  }
}

extension SafeTensorsFileWriter: OutputFileWriter {
  public var fileByteCount: Int { layout.fileByteCount }
  public var headerByteCount: Int { layout.header.dataStart }

  public func fileRange(ofTensor name: String) -> Range<Int>? {
    guard let entry = layout.entry(named: name), let start = layout.fileOffset(ofTensor: name) else { return nil }
    return start..<(start + entry.byteCount)
  }
}
