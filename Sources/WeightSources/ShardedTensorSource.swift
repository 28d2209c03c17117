import Checkpoint
import JSON
import SafeTensors
import SystemIO
import TensorCore
import WeightFormats

/// A `smelt shard` output directory (`OUT/manifest.json`, `formats/shard-manifest.md`) read as the checkpoint
/// it was made from: every tensor under its source name, routed experts found on whichever device holds them
/// (the first replica), tensor-parallel slices stitched back together along their split dimension, fused
/// `[E, ...]` expert tensors gathered back from each device's experts (`slice.indices`). Works for
/// both layouts (`hf`: `OUT/<device>/...`, renamed `deepseek-mp`: `OUT/model{i}-mp{N}.safetensors`).
public final class ShardedTensorSource: TensorSource {
  /// One stored piece of a source tensor.
  struct Piece: Sendable {
    var file: Int
    var name: String
    /// `nil`: the whole tensor; else the split dimension and the source positions along it the piece holds,
    /// in its own order (a contiguous range for tensor parallelism, a device's experts for fused experts).
    var slice: (dim: Int, positions: [Int])?
  }

  public let directory: String
  public let config: ModelConfig?
  public let entries: [TensorEntry]
  /// `skipped_tensors` of the manifest (deepseek-mp drops the MTP layer).
  public let skippedTensors: Set<String>
  private let entriesByName: [String: TensorEntry]
  private let pieces: [String: [Piece]]
  private let files: [SafeTensorsFile]

  public var inputFilePaths: [String] { files.map(\.path) + [FileSystem.join(directory, ShardManifest.fileName)] }

  public func checkUnchanged() throws {
    for file in files { try file.mapping.checkUnchanged() }
  }

  /// Whether `path` is a shard output directory (has a `manifest.json` of schema `smelt.shard-manifest/1`).
  public static func isShardOutput(_ path: String) -> Bool {
    FileSystem.isDirectory(path) && ShardManifest.read(directory: path, byteLimit: 64 << 20) != nil
  }

  /// Opens the shard output at `directory` through its manifest (which must list `tensors`).
  public init(directory: String) throws {
    self.directory = directory
    let manifestPath = FileSystem.join(directory, ShardManifest.fileName)
    let bytes = try FileSystem.readFile(manifestPath, limit: 1 << 30)
    func invalid(_ reason: String) -> WeightSourceError {
      .badShape(tensor: manifestPath, shape: [], expected: "a smelt shard manifest (\(DocumentSchema.shardManifest)): \(reason)")
    }
    guard let manifest = ShardManifest(json: bytes), let tensors = manifest.tensors else { throw invalid("schema and tensors") }
    guard !manifest.problems.contains(where: { $0.kind == .tensorEntry }),
      tensors.allSatisfy({ !$0.file.hasPrefix("/") && !$0.file.split(separator: "/").contains("..") })
    else { throw invalid("each tensor needs name, file (inside the directory) and source_name") }

    skippedTensors = Set(manifest.skippedTensors)
    var fileIndex: [String: Int] = [:]
    var files: [SafeTensorsFile] = []
    var pieces: [String: [Piece]] = [:]
    var order: [String] = []
    var shapes: [String: (DType, [Int])] = [:]
    for item in tensors {
      let (name, file, source) = (item.name, item.file, item.sourceName)
      let index: Int
      if let known = fileIndex[file] {
        index = known
      } else {
        index = files.count
        fileIndex[file] = index
        files.append(try SafeTensorsFile(path: FileSystem.join(directory, file)))
      }
      guard let stored = files[index].header.entry(named: name) else {
        throw WeightSourceError.missingWeight(name: name, checkpoint: FileSystem.join(directory, file))
      }
      var piece = Piece(file: index, name: name, slice: nil)
      var shape = stored.shape
      if let slice = item.slice {
        let (dim, start, count) = (slice.dim, slice.start, slice.count)
        let positions = slice.indices ?? (start >= 0 && count >= 0 ? Array(start..<(start + count)) : [])
        guard let sourceShape = item.sourceShape, dim >= 0,
          dim < sourceShape.count, stored.shape.count == sourceShape.count, stored.shape[dim] == count,
          positions.count == count, positions.allSatisfy({ $0 >= 0 && $0 < sourceShape[dim] })
        else { throw invalid("slice of '\(source)' does not match its stored shape \(stored.shape)") }
        piece.slice = (dim, positions)
        shape = sourceShape
      }
      if pieces[source] == nil { order.append(source) }
      // A replica (an expert on two devices, a replicated norm) adds nothing: keep the first copy.
      if piece.slice == nil, pieces[source]?.isEmpty == false { continue }
      if let slice = piece.slice, pieces[source]?.contains(where: { $0.slice?.positions == slice.positions }) == true {
        continue
      }
      pieces[source, default: []].append(piece)
      shapes[source] = (stored.dtype, shape)
    }

    var entries: [TensorEntry] = []
    for name in order {
      guard let (dtype, shape) = shapes[name], let byteCount = ByteCount.of(dtype, shape: shape),
        let entry = TensorEntry(name: name, dtype: dtype, shape: shape, dataOffsets: 0..<byteCount)
      else { throw invalid("tensor '\(name)' has an impossible shape") }
      entries.append(entry)
      if let slices = pieces[name], slices.first?.slice != nil {
        let dim = slices[0].slice?.dim ?? 0
        // Together the slices must cover the dimension: every position, the first copy of a replicated one.
        var covered = [Bool](repeating: false, count: shape[dim])
        for piece in slices {
          guard let slice = piece.slice, slice.dim == dim else {
            throw invalid("the slices of '\(name)' are not all along dim \(dim)")
          }
          for position in slice.positions { covered[position] = true }
        }
        if let gap = covered.firstIndex(of: false) {
          throw invalid("the slices of '\(name)' do not tile dim \(dim) (gap at \(gap))")
        }
      }
    }
    self.entries = entries
    entriesByName = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    self.pieces = pieces
    self.files = files

    // hf layout: every device directory carries config.json; deepseek-mp: the source checkpoint's, if present.
    var config: ModelConfig?
    var candidates = Set(fileIndex.keys.map { FileSystem.split($0).directory }).sorted().map { FileSystem.join(directory, $0) }
    if !manifest.source.directory.isEmpty { candidates.append(manifest.source.directory) }
    for candidate in candidates {
      let path = FileSystem.join(candidate, "config.json")
      if FileSystem.exists(path) {
        config = try ModelConfig(json: try FileSystem.readFile(path), path: path)
        break
      }
    }
    self.config = config
  }

  public func entry(_ name: String) -> TensorEntry? { entriesByName[name] }

  public func bytes(of name: String, range: Range<Int>) throws -> TensorBytes {
    guard let entry = entriesByName[name], let parts = pieces[name], let first = parts.first else {
      throw WeightSourceError.missingWeight(name: name, checkpoint: directory)
    }
    guard range.lowerBound >= 0, range.upperBound <= entry.byteCount else {
      throw WeightSourceError.badShape(
        tensor: name, shape: entry.shape, expected: "bytes \(range.lowerBound)..<\(range.upperBound) inside \(entry.byteCount)")
    }
    guard let slice = first.slice else {
      guard let view = files[first.file].tensor(named: first.name) else {
        throw WeightSourceError.missingWeight(name: first.name, checkpoint: files[first.file].path)
      }
      return TensorBytes(view: view, range: range)
    }
    // Stitch: view the tensor as [outer, extent along dim, inner bytes]; each piece holds [outer, count, inner].
    let width = entry.byteCount / max(1, entry.elementCount)
    let outer = entry.shape[..<slice.dim].reduce(1, *)
    let innerBytes = entry.shape[(slice.dim + 1)...].reduce(1, *) * width
    let extent = entry.shape[slice.dim]
    var whole = [UInt8](repeating: 0, count: entry.byteCount)
    var written = [Bool](repeating: false, count: extent)
    for part in parts {
      guard let piece = part.slice, let view = files[part.file].tensor(named: part.name) else {
        throw WeightSourceError.missingWeight(name: part.name, checkpoint: files[part.file].path)
      }
      let count = piece.positions.count
      let pieceBytes = view.bytes
      guard pieceBytes.count == outer * count * innerBytes else {
        throw WeightSourceError.badShape(
          tensor: part.name, shape: view.shape, expected: "a slice of \(entry.shape) along dim \(slice.dim)")
      }
      whole.withUnsafeMutableBytes { out in
        for (k, position) in piece.positions.enumerated() where !written[position] {
          written[position] = true
          for o in 0..<outer {
            let destination = (o * extent + position) * innerBytes
            let source = (o * count + k) * innerBytes
            out[destination..<(destination + innerBytes)].copyBytes(from: pieceBytes[source..<(source + innerBytes)])
          }
        }
      }
    }
    return TensorBytes(range == 0..<entry.byteCount ? whole : Array(whole[range]))
  }
}
