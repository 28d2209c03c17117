import GGML
import SystemIO

/// A GGUF file opened for reading: the parsed header over a read-only mapping, with zero-copy views of each
/// tensor's bytes (valid while the `GGUFFile` is alive).
public final class GGUFFile: Sendable {
  public let path: String
  public let header: GGUFHeader
  /// The read-only mapping of the whole file.
  public let mapping: MappedFile

  /// Maps and parses `path`.
  /// - Throws: `SystemError` if the file cannot be read, `GGUFError` if it is not valid GGUF.
  public init(path: String) throws {
    let mapping = try MappedFile(path: path)
    self.path = path
    self.mapping = mapping
    header = try GGUFParser.parse(mapping.bytes, path: path)
  }

  public var metadata: GGUFMetadata { header.metadata }
  public var tensors: [GGUFTensorInfo] { header.tensors }
  public var byteCount: Int { mapping.byteCount }

  /// Where tensor `index`'s bytes lie in the file.
  public func fileRange(ofTensor index: Int) -> Range<Int> {
    let tensor = header.tensors[index]
    let start = header.dataOffset + tensor.offset
    return start..<start + tensor.byteCount
  }

  /// The bytes of tensor `index`.
  public func bytes(ofTensor index: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: mapping.bytes[fileRange(ofTensor: index)])
  }

  /// The bytes of the tensor named `name`.
  public func bytes(ofTensor name: String) throws(GGUFError) -> UnsafeRawBufferPointer {
    guard let index = header.tensors.firstIndex(where: { $0.name == name }) else {
      throw GGUFError(.missingTensor(name), path: path)
    }
    return bytes(ofTensor: index)
  }

  /// Drops the mapped pages of tensor `index` from this process (after streaming through it).
  public func release(tensor index: Int) {
    let start = header.dataOffset + header.tensors[index].offset
    mapping.advise(.dontNeed, range: start..<start + header.tensors[index].byteCount)
  }
}

/// Writes one planned GGUF file: the header first, then tensor data at the planned offsets in any order and
/// from any thread, then `commit()` syncs and renames the temporary file into place. Memory stays bounded:
/// nothing is buffered beyond the caller's chunks. Padding bytes are zero because the temporary file is
/// created at its final size (sparse).
public final class GGUFFileWriter: Sendable {
  public let layout: GGUFLayout
  private let output: AtomicOutputFile

  /// Creates `.<name>.smelt-tmp` next to `path` at the planned size and writes the header.
  public init(path: String, layout: GGUFLayout) throws(SystemError) {
    self.layout = layout
    output = try AtomicOutputFile(path: path, byteCount: layout.fileByteCount)
    do {
      try output.write(layout.headerBytes, at: 0)
    } catch {
      output.abandon()
      throw error
    }
  }

  public var path: String { output.path }
  public var temporaryPath: String { output.temporaryPath }

  /// Writes `bytes` at `offset` within tensor `index`.
  public func write(tensor index: Int, _ bytes: UnsafeRawBufferPointer, at offset: Int = 0) throws {
    let tensor = layout.tensors[index]
    guard offset >= 0, offset <= tensor.byteCount - bytes.count else {
      throw GGUFError(.writeOutOfRange(tensor: tensor.name, offset: offset, count: bytes.count, byteCount: tensor.byteCount))
    }
    try output.write(bytes, at: layout.fileOffset(ofTensor: index) + offset)
  }

  /// Syncs the data and renames the file into place.
  public func commit() throws(SystemError) { try output.commit() }

  /// Removes the temporary file.
  public func abandon() { output.abandon() }
}

extension GGUFFile {
  /// Opens `path` and, when its metadata says it is one file of a `llama-gguf-split` set, every file of the
  /// set, in order (the first holds the model's metadata).
  ///
  /// - Throws: `SystemError`/`GGUFError` for an unreadable or invalid file, `GGUFError.badSplit` when a file of
  ///   the set is missing or numbered wrongly.
  public static func openSet(_ path: String) throws -> [GGUFFile] {
    let first = try GGUFFile(path: path)
    guard let count = first.metadata[GGUFSplit.countKey]?.integerValue, count > 1 else { return [first] }
    let number = Int(first.metadata[GGUFSplit.numberKey]?.integerValue ?? 0)
    guard let paths = GGUFSplit.shardPaths(of: path, number: number, count: Int(count)) else {
      throw GGUFError(.badSplit("split.count is \(count) but the name does not end in -\(number + 1)-of-\(count).gguf"), path: path)
    }
    let files = try paths.map { $0 == path ? first : try GGUFFile(path: $0) }
    for (index, file) in files.enumerated() where file.metadata[GGUFSplit.numberKey]?.integerValue != Int64(index) {
      throw GGUFError(.badSplit("split.no should be \(index) in a set of \(count)"), path: file.path)
    }
    return files
  }
}
