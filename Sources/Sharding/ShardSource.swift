import Checkpoint
import SafeTensors
import TensorCore
import WeightFormats

/// One tensor of the checkpoint being sharded.
public struct SourceTensor: Sendable, Hashable {
  public var name: String
  public var dtype: DType
  public var shape: [Int]
  public var byteCount: Int
  /// Index into `ShardSource.fileNames`.
  public var fileIndex: Int
  /// Offset of the tensor's first byte from the start of its file.
  public var fileOffset: Int

  public init(name: String, dtype: DType, shape: [Int], byteCount: Int, fileIndex: Int, fileOffset: Int) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.byteCount = byteCount
    self.fileIndex = fileIndex
    self.fileOffset = fileOffset
  }
}

/// A weight and its quantization companions (or a lone tensor): the smallest unit a plan moves.
public struct SourceGroup: Sendable {
  public var storage: WeightStorage
  /// Role (`weight`, `weight_scale_inv`, ...) → index into `ShardSource.tensors`.
  public var parts: [String: Int]
  /// Indices into `ShardSource.tensors`, ascending.
  public var tensorIndices: [Int]

  public init(storage: WeightStorage, parts: [String: Int]) {
    self.storage = storage
    self.parts = parts
    self.tensorIndices = parts.values.sorted()
  }
}

/// What the planner needs to know about a checkpoint: its tensors (headers only), how they group into
/// weights, and its config. Built from a `Checkpoint`, or directly in tests.
public struct ShardSource: Sendable {
  /// The checkpoint directory.
  public var directory: String
  /// Shard file names, relative to `directory`.
  public var fileNames: [String]
  /// Every tensor, in the checkpoint's order.
  public var tensors: [SourceTensor]
  /// Every tensor belongs to exactly one group.
  public var groups: [SourceGroup]
  public var config: ModelConfig?
  /// Non-weight files to copy (config, tokenizer, generation config, ...).
  public var sidecarFiles: [String]

  public init(
    directory: String, fileNames: [String], tensors: [SourceTensor], groups: [SourceGroup], config: ModelConfig?,
    sidecarFiles: [String]
  ) {
    self.directory = directory
    self.fileNames = fileNames
    self.tensors = tensors
    self.groups = groups
    self.config = config
    self.sidecarFiles = sidecarFiles
  }

  /// Describes `checkpoint`; companions are found with `WeightGrouping`.
  public init(checkpoint: Checkpoint) throws {
    // Tensors in the checkpoint's order: a tensor's index here is its position in the checkpoint, so group
    // parts are found through the checkpoint's own name index.
    let entries = checkpoint.entries
    let dataStarts = checkpoint.files.map(\.header.dataStart)
    var tensors: [SourceTensor] = []
    tensors.reserveCapacity(entries.count)
    for (position, entry) in entries.enumerated() {
      let fileIndex = checkpoint.fileIndex(ofTensorAt: position)
      tensors.append(SourceTensor(
        name: entry.name, dtype: entry.dtype, shape: entry.shape, byteCount: entry.byteCount, fileIndex: fileIndex,
        fileOffset: dataStarts[fileIndex] + entry.dataOffsets.lowerBound))
    }
    var groups: [SourceGroup] = []
    var covered = [Bool](repeating: false, count: tensors.count)
    for group in WeightGrouping.groups(of: entries) {
      var parts = [String: Int](minimumCapacity: group.parts.count)
      for (role, name) in group.parts {
        guard let index = checkpoint.position(of: name), !covered[index] else { continue }
        parts[role] = index
        covered[index] = true
      }
      if !parts.isEmpty { groups.append(SourceGroup(storage: group.storage, parts: parts)) }
    }
    for (index, done) in covered.enumerated() where !done {
      groups.append(SourceGroup(storage: .plain, parts: ["weight": index]))
    }
    self.init(
      directory: checkpoint.directory, fileNames: checkpoint.fileNames, tensors: tensors, groups: groups,
      config: checkpoint.config, sidecarFiles: try checkpoint.sidecarFiles())
  }

  /// Total bytes of tensor data.
  public var tensorByteCount: Int { tensors.reduce(0) { $0 + $1.byteCount } }
}
