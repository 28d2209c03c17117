import Checkpoint
import JSON
import Quantization
import ReferenceModel
import SafeTensors
import SystemIO
import TensorCore

/// Weights for the reference model (and for comparisons) read lazily from a checkpoint in any format Smelt
/// reads, dequantized to F32 one tensor (or a range of rows) at a time.
///
/// Names are *logical weight names*: what the forward pass asks for (`model.layers.3.mlp.experts.7.up_proj.weight`),
/// whatever the storage. A quantized weight's companions (`weight_scale_inv`, `weight_scale`, ...) are resolved
/// through the checkpoint's index, so they may live in another file than the weight. The source is a checkpoint
/// (`CheckpointTensorSource`) or a `smelt shard` output directory (`ShardedTensorSource`: experts found through
/// the manifest, tensor-parallel slices stitched). Nothing is cached: memory stays at the tensors the caller
/// holds, and mapped pages are released after decoding.
///
/// | storage | dequantization |
/// |---|---|
/// | plain F32/F16/BF16/FP8/integers | `ElementCodec.decode` |
/// | DeepSeek FP8 block (`weight_scale_inv`) | `BlockFP8.dequantize`, block shape from `weight_block_size` or the scale grid, edge blocks cropped |
/// | compressed-tensors FP8 (`weight_scale`) | block, channel (`[out, 1]`) or tensor (`[1]`) scales |
/// | int4 pack-quantized, GPTQ v1, MLX affine, MXFP4 (compressed-tensors, gpt-oss), NVFP4 (ModelOpt, compressed-tensors) | the producer's dequantizer from `Quantization` (`PackedWeightDequantization`), whole tensor |
public final class CheckpointWeightProvider: WeightProvider, Sendable {
  /// Where the tensors come from.
  public let source: any TensorSource
  /// Every logical weight, in checkpoint order (companions folded into their weight).
  public let logicalNames: [String]
  private let groups: [String: WeightGroup]
  /// `quantization_config.weight_block_size`, when the config gives one.
  private let configuredBlockShape: [Int]?
  /// MLX affine bit width (config `quantization.bits`, default 4).
  private let mlxBits: Int

  /// A provider over `checkpoint`; reads no tensor data.
  public convenience init(checkpoint: Checkpoint) {
    self.init(source: CheckpointTensorSource(checkpoint))
  }

  /// A provider over any tensor source; reads no tensor data.
  public init(source: any TensorSource) {
    self.source = source
    var groups: [String: WeightGroup] = [:]
    var names: [String] = []
    for group in WeightGrouping.groups(of: source.entries) {
      let name = Self.logicalName(of: group)
      if groups.updateValue(group, forKey: name) == nil { names.append(name) }
    }
    self.groups = groups
    self.logicalNames = names
    configuredBlockShape = Self.configuredBlockShape(source.config?.quantizationConfig)
    mlxBits = PackedWeightDequantization.mlxBits(source.config)
  }

  /// `weight_block_size` (DeepSeek / HF fp8), else the first compressed-tensors
  /// `config_groups.*.weights.block_structure`.
  static func configuredBlockShape(_ quantization: ModelConfig.QuantizationConfig?) -> [Int]? {
    guard let quantization else { return nil }
    if let size = quantization.weightBlockSize { return size }
    for (_, group) in quantization.raw["config_groups"]?.objectValue ?? JSONObject() {
      if let block = group["weights"]?["block_structure"]?.arrayValue?.compactMap(\.intValue), block.count == 2 {
        return block
      }
    }
    return nil
  }

  /// Opens the checkpoint at `path`: a directory, a `.safetensors` file, or a `smelt shard` output directory
  /// (recognised by its `manifest.json`).
  public convenience init(path: String) throws {
    if ShardedTensorSource.isShardOutput(path) {
      self.init(source: try ShardedTensorSource(directory: path))
    } else {
      self.init(checkpoint: try Checkpoint.open(path))
    }
  }

  /// The source's path.
  public var directory: String { source.directory }

  /// The reference model's configuration from the checkpoint's `config.json`.
  public func modelConfiguration() throws -> ModelConfiguration {
    guard let config = source.config else { throw ValidationError.missingConfig(checkpoint: source.directory) }
    return try ModelConfiguration(checkpointConfig: config)
  }

  /// The logical name a group is known by: the plain tensor's name, `<module>.weight` for a quantized linear,
  /// the stem for gpt-oss `<stem>_blocks` / `<stem>_scales`.
  static func logicalName(of group: WeightGroup) -> String {
    switch group.storage {
    case .plain: group.parts["weight"] ?? group.modulePath
    case .mxfp4GptOss: group.modulePath
    default: group.modulePath + ".weight"
    }
  }

  // MARK: - WeightProvider

  public func contains(_ name: String) -> Bool { groups[name] != nil }

  /// How the weight `name` is stored, or `nil` when absent.
  public func storage(of name: String) -> WeightStorage? { groups[name]?.storage }

  /// The dtype of the tensor holding `name`'s values (the quantized codes for a quantized weight).
  public func storedDType(of name: String) -> DType? {
    guard let group = groups[name], let main = mainTensorName(group) else { return nil }
    return source.entry(main)?.dtype
  }

  /// The bytes `name` occupies in the checkpoint (its tensors and companions); 0 when absent.
  public func storedByteCount(of name: String) -> Int {
    guard let group = groups[name] else { return 0 }
    return group.parts.values.reduce(0) { $0 + (source.entry($1)?.byteCount ?? 0) }
  }

  /// The logical (dequantized) shape of `name`.
  public func shape(of name: String) throws -> [Int] {
    let group = try group(name)
    switch group.storage {
    case .plain, .fp8Block, .fp8CompressedTensors:
      return try entry(try part(group, "weight")).shape
    default:
      let main = try entry(try part(group, roleOfMain(group)))
      return try PackedWeightDequantization.logicalShape(group.storage, mainShape: main.shape, mlxBits: mlxBits, name: name)
    }
  }

  public func weight(_ name: String) throws -> FloatTensor {
    let shape = try shape(of: name)
    let rowCount = shape.count >= 1 ? shape[0] : 1
    return try dequantize(name, rows: 0..<rowCount, wholeTensor: true)
  }

  /// Rows `rows` of `name` (dimension 0; the remaining dimensions flattened into columns): only the needed
  /// bytes are read and dequantized, so an embedding lookup or an `lm_head` slice never loads the whole matrix.
  public func weightRows(_ name: String, rows: Range<Int>) throws -> FloatTensor {
    try dequantize(name, rows: rows, wholeTensor: false)
  }

  // MARK: - Dequantization

  private func group(_ name: String) throws -> WeightGroup {
    guard let group = groups[name] else {
      throw ValidationError.missingWeight(name: name, checkpoint: source.directory)
    }
    return group
  }

  private func entry(_ name: String) throws -> TensorEntry {
    guard let entry = source.entry(name) else {
      throw ValidationError.missingWeight(name: name, checkpoint: source.directory)
    }
    return entry
  }

  private func part(_ group: WeightGroup, _ role: String) throws -> String {
    guard let tensor = group.parts[role] else {
      throw ValidationError.missingCompanion(
        weight: Self.logicalName(of: group), role: role, checkpoint: source.directory)
    }
    return tensor
  }

  private func mainTensorName(_ group: WeightGroup) -> String? { group.parts[roleOfMain(group)] }

  /// Dequantizes `rows` of `name`; `wholeTensor` keeps the stored shape instead of `[rows, columns]`.
  private func dequantize(_ name: String, rows: Range<Int>, wholeTensor: Bool) throws -> FloatTensor {
    let group = try group(name)
    if PackedWeightDequantization.storages.contains(group.storage) {
      return try dequantizePacked(name, group, rows: rows, wholeTensor: wholeTensor)
    }
    let main = try entry(try part(group, roleOfMain(group)))
    let shape = main.shape
    let rowCount = shape.count >= 1 ? shape[0] : 1
    let columns = shape.count >= 2 ? shape.dropFirst().reduce(1, *) : 1
    guard rows.lowerBound >= 0, rows.upperBound <= rowCount else {
      throw ValidationError.rowsOutOfRange(tensor: name, rows: rows, rowCount: rowCount)
    }
    let outputShape = wholeTensor ? shape : [rows.count, columns]
    let values: [Float]
    switch group.storage {
    case .plain:
      values = try decodePlainRows(main, rows: rows, columns: columns)
    case .fp8Block:
      let scale = try entry(try part(group, "weight_scale_inv"))
      values = try dequantizeFP8Rows(main, scale: scale, rows: rows)
    case .fp8CompressedTensors:
      let scale = try entry(try part(group, "weight_scale"))
      values = try dequantizeFP8Rows(main, scale: scale, rows: rows)
    default:
      throw ValidationError.unsupportedStorage(weight: name, storage: group.storage.rawValue)
    }
    return try FloatTensor(shape: outputShape, values: values)
  }

  private func roleOfMain(_ group: WeightGroup) -> String {
    if PackedWeightDequantization.storages.contains(group.storage) {
      return PackedWeightDequantization.mainRole(group.storage)
    }
    return "weight"
  }

  /// 4-bit storages: the whole weight through the producer's dequantizer, then the requested rows.
  private func dequantizePacked(_ name: String, _ group: WeightGroup, rows: Range<Int>, wholeTensor: Bool) throws
    -> FloatTensor
  {
    let shape = try shape(of: name)
    guard rows.lowerBound >= 0, rows.upperBound <= shape[0] else {
      throw ValidationError.rowsOutOfRange(tensor: name, rows: rows, rowCount: shape[0])
    }
    let tensors = try group.parts.sorted { $0.key < $1.key }.map { role, tensorName in
      let stored = try entry(tensorName)
      let bytes = try source.bytes(of: tensorName, range: 0..<stored.byteCount)
      defer { bytes.releasePages() }
      return PackedTensor(nameSuffix: role, dtype: stored.dtype, shape: stored.shape, bytes: bytes.copy())
    }
    let values = try PackedWeightDequantization.dequantize(
      storage: group.storage, tensors: tensors, logicalShape: shape, mlxBits: mlxBits, name: name)
    let columns = shape[1]
    guard values.count == shape[0] * columns else {
      throw ValidationError.badShape(tensor: name, shape: shape, expected: "\(values.count) dequantized values")
    }
    if wholeTensor || rows == 0..<shape[0] { return try FloatTensor(shape: wholeTensor ? shape : [rows.count, columns], values: values) }
    return try FloatTensor(
      shape: [rows.count, columns], values: Array(values[(rows.lowerBound * columns)..<(rows.upperBound * columns)]))
  }

  /// Plain tensors: decode the byte range of `rows` (1-D tensors count as one row per element).
  private func decodePlainRows(_ tensor: TensorEntry, rows: Range<Int>, columns: Int) throws -> [Float] {
    guard ElementCodec.canDecode(tensor.dtype), let width = tensor.dtype.byteWidth else {
      throw ValidationError.unsupportedDType(
        tensor: tensor.name, dtype: tensor.dtype.rawValue, expected: "a floating-point or integer dtype")
    }
    let elementsPerRow = tensor.shape.count >= 2 ? columns : 1
    let start = rows.lowerBound * elementsPerRow, count = rows.count * elementsPerRow
    let bytes = try source.bytes(of: tensor.name, range: (start * width)..<((start + count) * width))
    defer { bytes.releasePages() }
    return try [Float](unsafeUninitializedCapacity: count) { out, initialized in
      try bytes.withUnsafeBytes { try ElementCodec.decode($0, dtype: tensor.dtype, into: out) }
      initialized = count
    }
  }

  /// FP8 E4M3 weight `[R, C]` with multiplier scales (DeepSeek `weight_scale_inv` or compressed-tensors
  /// `weight_scale`): block `[ceil(R/br), ceil(C/bc)]`, channel `[R, 1]` or tensor `[1]`/`[]`.
  private func dequantizeFP8Rows(_ weight: TensorEntry, scale: TensorEntry, rows: Range<Int>) throws -> [Float] {
    guard weight.dtype == .float8E4M3FN, weight.shape.count == 2 else {
      throw ValidationError.badShape(tensor: weight.name, shape: weight.shape, expected: "a 2-D F8_E4M3 weight")
    }
    let R = weight.shape[0], C = weight.shape[1]
    let scales = try decodeScales(scale)
    let scheme = try FP8ScaleGrid.scheme(
      rows: R, columns: C, scaleShape: scale.shape, scaleTensor: scale.name, configuredBlock: configuredBlockShape)
    // Widen the row range to whole scale rows, dequantize that, then crop.
    let scaleRowHeight: Int
    switch scheme {
    case .block(let blockRows, _): scaleRowHeight = blockRows
    case .channel: scaleRowHeight = 1
    case .tensor: scaleRowHeight = R
    }
    let first = (rows.lowerBound / scaleRowHeight) * scaleRowHeight
    let end = rows.upperBound
    guard end > first else { return [] }
    let full = try FP8BlockLayout(rows: R, columns: C, scheme: scheme)
    guard scales.count == full.scaleCount else {
      throw ValidationError.badShape(tensor: scale.name, shape: scale.shape, expected: "\(full.scaleShape) for \(scheme)")
    }
    let layout = try FP8BlockLayout(rows: end - first, columns: C, scheme: scheme)
    let scaleStart = (first / scaleRowHeight) * full.scaleColumns
    let scaleSlice = Array(scales[scaleStart..<(scaleStart + layout.scaleCount)])
    if let bad = scaleSlice.firstIndex(where: { !$0.isFinite }) {
      throw ValidationError.nonFiniteScale(tensor: scale.name, index: scaleStart + bad)
    }
    let codes = try source.bytes(of: weight.name, range: (first * C)..<(end * C))
    defer { codes.releasePages() }
    var values = [Float](repeating: 0, count: layout.elementCount)
    try scaleSlice.withUnsafeBufferPointer { scaleBuffer in
      try values.withUnsafeMutableBytes { out in
        try codes.withUnsafeBytes { code in
          try BlockFP8.dequantize(code, scales: scaleBuffer, layout: layout, to: .float32, into: out)
        }
      }
    }
    let skip = (rows.lowerBound - first) * C
    return skip == 0 ? values : Array(values[skip...])
  }

  private func decodeScales(_ scale: TensorEntry) throws -> [Float] {
    guard [.float32, .bfloat16, .float16].contains(scale.dtype) else {
      throw ValidationError.unsupportedDType(tensor: scale.name, dtype: scale.dtype.rawValue, expected: "F32, BF16 or F16")
    }
    let count = scale.elementCount
    let bytes = try source.bytes(of: scale.name, range: 0..<scale.byteCount)
    return try [Float](unsafeUninitializedCapacity: count) { out, initialized in
      try bytes.withUnsafeBytes { try ElementCodec.decode($0, dtype: scale.dtype, into: out) }
      initialized = count
    }
  }
}
