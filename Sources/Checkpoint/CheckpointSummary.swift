import SafeTensors
import SystemIO
import TensorCore
import WeightFormats

/// What `smelt inspect` reports about a checkpoint: sizes, dtypes, architecture, quantization and MoE
/// structure. Pure: computed from headers and config only, no tensor data is read.
public struct CheckpointSummary: Sendable {
  /// One file of the checkpoint.
  public struct File: Sendable {
    public var name: String
    public var tensorCount: Int
    public var tensorByteCount: Int
    public var fileByteCount: Int
  }

  /// Element count and bytes of one dtype.
  public struct DTypeUsage: Sendable {
    public var dtype: DType
    public var tensorCount: Int
    public var elementCount: Int
    public var byteCount: Int
  }

  /// One quantization layout found, with how many weights use it.
  public struct QuantizationUsage: Sendable {
    public var storage: WeightStorage
    public var weightCount: Int
    /// A human description: block shape, group size, scale dtype.
    public var detail: String
  }

  /// One decoder layer.
  public struct Layer: Sendable {
    public enum Kind: String, Sendable { case dense, moe, mtp }
    public var index: Int
    public var kind: Kind
    public var routedExpertCount: Int
    public var sharedExpertTensorCount: Int
    public var expertByteCount: Int
    public var nonExpertByteCount: Int
    /// Bytes of one routed expert (all its tensors, scales included), when the layer has experts.
    public var bytesPerExpert: Int?
  }

  public var path: String
  public var files: [File]
  public var tensorCount: Int
  /// Elements of every tensor (scales and packed words counted as stored), as `safetensors` would count.
  public var storedElementCount: Int
  /// Logical parameters: quantized weights count their unpacked elements; scales and zero points are
  /// not parameters.
  public var parameterCount: Int
  /// Logical parameters outside the MTP layer(s).
  public var parameterCountWithoutMTP: Int
  public var tensorByteCount: Int
  public var dtypes: [DTypeUsage]
  public var quantization: [QuantizationUsage]
  public var layers: [Layer]
  public var expertByteCount: Int
  public var nonExpertByteCount: Int
  public var mtpLayerIndices: [Int]
  public var config: ModelConfig?
  public var warnings: [String]

  /// Summarises `checkpoint`.
  public init(_ checkpoint: Checkpoint) {
    let entries = checkpoint.entries
    let config = checkpoint.config
    path = checkpoint.directory
    self.config = config
    warnings = checkpoint.warnings
    files = checkpoint.files.enumerated().map { i, file in
      File(
        name: checkpoint.fileNames[i], tensorCount: file.header.tensors.count,
        tensorByteCount: file.header.tensors.reduce(0) { $0 + $1.byteCount }, fileByteCount: file.mapping.byteCount)
    }
    tensorCount = entries.count
    tensorByteCount = entries.reduce(0) { $0 + $1.byteCount }
    storedElementCount = entries.reduce(0) { $0 + (ByteCount.elementCount($1.shape) ?? 0) }

    var usage: [DType: DTypeUsage] = [:]
    for entry in entries {
      var item = usage[entry.dtype] ?? DTypeUsage(dtype: entry.dtype, tensorCount: 0, elementCount: 0, byteCount: 0)
      item.tensorCount += 1
      item.elementCount += ByteCount.elementCount(entry.shape) ?? 0
      item.byteCount += entry.byteCount
      usage[entry.dtype] = item
    }
    dtypes = usage.values.sorted { $0.byteCount > $1.byteCount }

    // The checkpoint's own name table (no second 100k-entry dictionary).
    let byName = EntryLookup(checkpoint: checkpoint)
    let groups = WeightGrouping.groups(of: entries)
    let hiddenLayers = config?.numHiddenLayers
    var parameters = 0
    var parametersWithoutMTP = 0
    var quantizationCounts: [WeightStorage: (Int, String)] = [:]
    for group in groups {
      let count = CheckpointSummary.logicalElementCount(group, byName)
      parameters += count
      let layer = TensorName(group.modulePath + ".x").layer
      if !(hiddenLayers != nil && layer != nil && layer! >= hiddenLayers!) { parametersWithoutMTP += count }
      if group.storage != .plain {
        // The first group of each layout describes it.
        if let previous = quantizationCounts[group.storage] {
          quantizationCounts[group.storage] = (previous.0 + 1, previous.1)
        } else {
          quantizationCounts[group.storage] = (1, CheckpointSummary.describe(group, byName, config))
        }
      }
    }
    parameterCount = parameters
    parameterCountWithoutMTP = parametersWithoutMTP
    quantization = quantizationCounts.map { QuantizationUsage(storage: $0.key, weightCount: $0.value.0, detail: $0.value.1) }
      .sorted { $0.weightCount > $1.weightCount }

    var perLayer: [Int: LayerTally] = [:]
    var expertBytes = 0
    for entry in entries {
      let name = TensorName(entry.name)
      if name.isRoutedExpert { expertBytes += entry.byteCount }
      guard let layer = name.layer else { continue }
      // Mutated in place through the dictionary (a copy out and back would copy the expert set per tensor).
      perLayer[layer, default: LayerTally()].add(name, byteCount: entry.byteCount)
    }
    layers = perLayer.keys.sorted().map { index in
      let item = perLayer[index]!
      let isMTP = hiddenLayers.map { index >= $0 } ?? false
      let kind: Layer.Kind = isMTP ? .mtp : (item.experts.isEmpty ? .dense : .moe)
      return Layer(
        index: index, kind: kind, routedExpertCount: item.experts.count, sharedExpertTensorCount: item.shared,
        expertByteCount: item.expertBytes, nonExpertByteCount: item.other, bytesPerExpert: item.perExpert.values.max())
    }
    expertByteCount = expertBytes
    nonExpertByteCount = tensorByteCount - expertBytes
    mtpLayerIndices = layers.filter { $0.kind == .mtp }.map(\.index)
  }

  /// Header entries by tensor name, through the checkpoint's index.
  struct EntryLookup {
    let checkpoint: Checkpoint
    subscript(name: String) -> TensorEntry? { checkpoint.location(of: name)?.entry }
  }

  /// Per-layer running totals while summarising.
  struct LayerTally {
    var experts = Set<Int>()
    var expertBytes = 0
    var other = 0
    var shared = 0
    var perExpert: [Int: Int] = [:]
    var dense = false

    mutating func add(_ name: TensorName, byteCount: Int) {
      if let expert = name.expert {
        experts.insert(expert)
        expertBytes += byteCount
        perExpert[expert, default: 0] += byteCount
      } else {
        other += byteCount
        if name.isSharedExpert { shared += 1 }
        let leafModule = name.modulePath
        if leafModule.hasSuffix("mlp.gate_proj") || leafModule.hasSuffix("mlp.up_proj") || leafModule.hasSuffix("mlp.down_proj") {
          dense = true
        }
      }
    }
  }

  /// Unpacked element count of a weight group (its format's header-only count).
  static func logicalElementCount(_ group: WeightGroup, _ entries: EntryLookup) -> Int {
    group.format.logicalElementCount(group) { entries[$0] }
  }

  /// The format's one-line description of a weight group.
  static func describe(_ group: WeightGroup, _ entries: EntryLookup, _ config: ModelConfig?) -> String {
    group.format.describe(group, entries: { entries[$0] }, config: FormatConfig(config?.raw))
  }

}
