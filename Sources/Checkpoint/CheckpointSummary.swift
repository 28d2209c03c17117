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
  /// True when MTP modules sit outside numbered layers (Qwen3.5's `mtp.fc`).
  public var hasUnnumberedMTPModules: Bool
  /// Parameters used per token: without MTP, with only `num_experts_per_tok` routed experts per MoE layer, the
  /// embedding and head counted as the family's vendor counts them (`ActiveParameterConvention`); nil when the
  /// config does not say how many experts a token uses.
  public var activeParameterCount: Int?
  /// The model family the config describes.
  public var family: ModelFamily
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
    storedElementCount = entries.reduce(0) { $0 + $1.elementCount }

    var usage = DType.allCases.map { DTypeUsage(dtype: $0, tensorCount: 0, elementCount: 0, byteCount: 0) }
    let dtypeSlot = Dictionary(uniqueKeysWithValues: DType.allCases.enumerated().map { ($1, $0) })
    for entry in entries {
      let slot = dtypeSlot[entry.dtype]!
      usage[slot].tensorCount += 1
      usage[slot].elementCount += entry.elementCount
      usage[slot].byteCount += entry.byteCount
    }
    dtypes = usage.filter { $0.tensorCount > 0 }.sorted { $0.byteCount > $1.byteCount }

    // The checkpoint's own name table (no second 100k-entry dictionary).
    let byName = EntryLookup(checkpoint: checkpoint)
    let classifier = checkpoint.classifier
    family = checkpoint.family
    var parameters = 0
    var parametersWithoutMTP = 0
    var embeddingParameters = 0
    var headParameters = 0
    var routedParameters: [Int: Int] = [:]
    var quantizationCounts: [WeightStorage: (Int, String)] = [:]
    WeightGrouping.forEachGroup(of: entries) { group in
      let count = CheckpointSummary.logicalElementCount(group, byName)
      parameters += count
      let place = classifier.classify(group.parts.values.min() ?? group.modulePath)
      if !place.isMTP {
        parametersWithoutMTP += count
        if place.role == .embedding { embeddingParameters += count }
        if place.role == .outputHead { headParameters += count }
        if place.isRoutedExpert, let layer = place.layer { routedParameters[layer, default: 0] += count }
      }
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
    var mtpWithoutLayer = false
    for entry in entries {
      let place = classifier.classify(entry.name)
      if place.isRoutedExpert { expertBytes += entry.byteCount }
      guard let layer = place.layer else {
        if place.isMTP { mtpWithoutLayer = true }
        continue
      }
      // Mutated in place through the dictionary (a copy out and back would copy the expert set per tensor).
      perLayer[layer, default: LayerTally()].add(place, entry: entry)
    }
    layers = perLayer.keys.sorted().map { index in
      let item = perLayer[index]!
      let kind: Layer.Kind = item.mtp ? .mtp : (item.routedExpertCount == 0 ? .dense : .moe)
      return Layer(
        index: index, kind: kind, routedExpertCount: item.routedExpertCount, sharedExpertTensorCount: item.shared,
        expertByteCount: item.expertBytes, nonExpertByteCount: item.other, bytesPerExpert: item.bytesPerExpert)
    }
    expertByteCount = expertBytes
    nonExpertByteCount = tensorByteCount - expertBytes
    mtpLayerIndices = layers.filter { $0.kind == .mtp }.map(\.index)
    hasUnnumberedMTPModules = mtpWithoutLayer

    // Active per token, in the family's vendor's convention: every parameter outside MTP, less each MoE layer's
    // unselected experts, less the embedding and head where the vendor does not count them (a tied head is the
    // embedding matrix, counted as the head).
    let convention = family.activeParameters
    let tied = headParameters == 0 && (config?.tieWordEmbeddings ?? false)
    var uncounted = 0
    if !convention.countsEmbedding && !(tied && convention.countsOutputHead) { uncounted += embeddingParameters }
    if !convention.countsOutputHead { uncounted += headParameters }
    if let k = config?.numExpertsPerTok, k > 0 {
      var inactive = 0
      for layer in layers where layer.kind == .moe && layer.routedExpertCount > 0 {
        let routed = routedParameters[layer.index] ?? 0
        inactive += routed / layer.routedExpertCount * max(0, layer.routedExpertCount - k)
      }
      activeParameterCount = parametersWithoutMTP - uncounted - inactive
    } else if layers.allSatisfy({ $0.kind != .moe }) {
      activeParameterCount = parametersWithoutMTP - uncounted
    } else {
      activeParameterCount = nil
    }
  }

  /// Header entries by tensor name, through the checkpoint's index.
  struct EntryLookup {
    let checkpoint: Checkpoint
    subscript(name: String) -> TensorEntry? { checkpoint.entry(named: name) }
  }

  /// Per-layer running totals while summarising.
  struct LayerTally {
    /// Largest expert dim of a fused routed-expert tensor (`[E, ...]`).
    var fusedExpertCount = 0
    var fusedBytes = 0
    var expertBytes = 0
    var other = 0
    var shared = 0
    /// Routed expert → its bytes (the keys are the layer's experts).
    var perExpert: [Int: Int] = [:]
    var mtp = false

    mutating func add(_ place: TensorClass, entry: TensorEntry) {
      if place.isMTP { mtp = true }
      if place.isRoutedExpert {
        expertBytes += entry.byteCount
        if let expert = place.expert {
          perExpert[expert, default: 0] += entry.byteCount
        } else {
          fusedExpertCount = max(fusedExpertCount, entry.shape.first ?? 0)
          fusedBytes += entry.byteCount
        }
      } else {
        other += entry.byteCount
        if place.role == .sharedExpert { shared += 1 }
      }
    }

    /// Routed experts in the layer: distinct per-expert indices, or the fused tensors' expert dim.
    var routedExpertCount: Int { max(perExpert.count, fusedExpertCount) }

    /// Bytes of one routed expert (a fused tensor contributes its share).
    var bytesPerExpert: Int? {
      if let largest = perExpert.values.max() { return largest + (fusedExpertCount > 0 ? fusedBytes / fusedExpertCount : 0) }
      return fusedExpertCount > 0 ? fusedBytes / fusedExpertCount : nil
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
