import JSON
import Quantization
import SafeTensors
import TensorCore

/// The consumer family whose config block describes an output: one config block per checkpoint, so a mixed
/// recipe may only combine schemes that one family reads.
public enum ConsumerFamily: String, Sendable, Hashable, CustomStringConvertible {
  /// compressed-tensors `quantization_config` (vLLM, SGLang, transformers): int4 pack-quantized, MXFP4, NVFP4,
  /// FP8 (block/channel/tensor).
  case compressedTensors = "compressed-tensors"
  /// GPTQ v1 (`quant_method: gptq`).
  case gptq
  /// MLX `quantization` (mlx-lm, mlx-swift-lm), with per-module overrides.
  case mlx
  /// gpt-oss / transformers `quant_method: mxfp4`.
  case gptOss = "gpt-oss mxfp4"
  /// NVIDIA ModelOpt (`hf_quant_config.json`, `quant_method: modelopt`).
  case modelOpt = "modelopt"
  /// DeepSeek / HF `quant_method: fp8` (the release's FP8 blocks).
  case deepSeekFP8 = "fp8 (DeepSeek)"

  public var description: String { rawValue }
}

/// The writing side of one group/block layout (the 4-bit formats and MLX 8-bit), declared in the same file as
/// the `WeightFormat` that reads it back: the tensors it plans, its quantizer, its `--to` names and its piece
/// of the consumer's config. A value carries the layout's parameters (group size, symmetry, scale rule);
/// `GroupFormat` wraps one, and `WeightFormats.groupLayouts` lists every layout type.
public protocol GroupLayout: Sendable, Hashable, CustomStringConvertible {
  /// The storage `WeightGrouping` detects for this layout when it is read back.
  var storage: WeightStorage { get }
  /// The config family that describes it.
  var consumer: ConsumerFamily { get }
  /// The `--to` / scheme name of the layout (without its parameters).
  var name: String { get }
  /// Elements per group (block) along the input dimension.
  var groupSize: Int { get }
  /// Bits per element. Default 4.
  var bits: Int { get }
  /// Why a `[rows, columns]` weight cannot take this layout beyond the input dimension not dividing into
  /// groups (which `GroupFormat` checks for every layout), or `nil`. Default `nil`.
  func additionalUnsupportedReason(rows: Int, columns: Int) -> String?
  /// The output tensor name of a quantizer output `suffix` for `module`. Default `module.suffix`.
  func tensorName(module: String, suffix: String) -> String
  /// The tensors this layout writes for a `[rows, columns]` weight, by suffix (`GroupFormat.outputs` names
  /// them); `weightDType` is the dtype the quantizer sees the weight in, `scaleDType` the scale dtype of the
  /// layouts whose scales follow the model (compressed-tensors int4).
  func plannedTensors(rows: Int, columns: Int, weightDType: DType, scaleDType: DType) -> [(suffix: String, dtype: DType, shape: [Int])]
  /// Whether fused siblings share one per-tensor scale (NVFP4: vLLM loads them as one layer). Default `false`.
  var sharesTensorScaleWithFusedSiblings: Bool { get }
  /// Quantizes `weight` into this layout's tensors (suffix-named), with the clip search when `search`;
  /// `tensorAmax` is the fused siblings' largest |x| for layouts with a per-tensor scale.
  func quantize(_ weight: WeightMatrix, search: Bool, scaleDType: DType, tensorAmax: Float?) throws(FormatQuantizationError)
    -> [PackedTensor]
  /// Whether the tensors can be cut into row ranges that decode on their own (`rowSlice`). Default `true`; GPTQ
  /// stores the transpose.
  var slicesByRows: Bool { get }
  /// Rows `range` (starting on a multiple of 8) of this layout's tensors for a weight of `rows` rows, decodable
  /// on their own (asked only when `slicesByRows`). Default: every tensor whose leading dimension is `rows` is
  /// cut, the others kept.
  func rowSlice(_ tensors: [PackedTensor], rows: Int, range: Range<Int>) -> [PackedTensor]
  /// True when `--search` has a clip search for this layout. Default `true`.
  var supportsSearch: Bool { get }
  /// Whether one output may hold this layout at several group sizes (GPTQ's config has one `group_size`).
  /// Default `true`.
  var mixesGroupSizes: Bool { get }
  /// The compressed-tensors `config_groups` entry's `format` and `weights` (as compressed-tensors 0.20
  /// serializes its presets), for layouts of the compressed-tensors family; default `nil`.
  var compressedTensorsScheme: (format: String, weights: JSONValue)? { get }
  /// The recipe schemes of this layout's family that `validate --sensitivity` may mix with it (other group
  /// sizes, MLX's other bit width), with their recipe text; default none (the layout alone).
  var recipeSiblings: [(text: String, format: GroupFormat)] { get }
  /// The `--to` names of this layout type, in help order.
  static var targetNames: [GroupTargetName] { get }
}

extension GroupLayout {
  /// Whether `other` is this layout with the same parameters.
  func isEqual(to other: any GroupLayout) -> Bool { (other as? Self) == self }

  public var bits: Int { 4 }
  public func additionalUnsupportedReason(rows: Int, columns: Int) -> String? { nil }
  public func tensorName(module: String, suffix: String) -> String { module + "." + suffix }
  public var sharesTensorScaleWithFusedSiblings: Bool { false }
  public var supportsSearch: Bool { true }
  public var slicesByRows: Bool { true }
  public func rowSlice(_ tensors: [PackedTensor], rows: Int, range: Range<Int>) -> [PackedTensor] {
    tensors.map { GroupFormat.rowSlice($0, rows: rows, range: range) }
  }
  public var mixesGroupSizes: Bool { true }
  public var compressedTensorsScheme: (format: String, weights: JSONValue)? { nil }
  public var recipeSiblings: [(text: String, format: GroupFormat)] { [] }
}

/// A group layout Smelt writes, with its parameters: the value `--to`, recipes and plans carry. Every property
/// is the layout's own (see `GroupLayout`); equal when the layouts are.
public struct GroupFormat: Sendable, Hashable, CustomStringConvertible {
  /// The layout and its parameters.
  public let layout: any GroupLayout

  public init(_ layout: some GroupLayout) { self.layout = layout }

  /// Group sizes the int4, GPTQ and MLX layouts accept.
  public static let groupSizes = [32, 64, 128]

  public static func == (a: GroupFormat, b: GroupFormat) -> Bool { a.layout.isEqual(to: b.layout) }
  public func hash(into hasher: inout Hasher) {
    hasher.combine(ObjectIdentifier(type(of: layout)))
    layout.hash(into: &hasher)
  }

  public var storage: WeightStorage { layout.storage }
  public var family: ConsumerFamily { layout.consumer }
  public var name: String { layout.name }
  public var groupSize: Int { layout.groupSize }
  public var bits: Int { layout.bits }
  public var description: String { layout.description }
  public var sharesTensorScaleWithFusedSiblings: Bool { layout.sharesTensorScaleWithFusedSiblings }
  public var supportsSearch: Bool { layout.supportsSearch }

  /// The layout as `type` (to read parameters only that layout has), or `nil` for another layout.
  public func layout<Layout: GroupLayout>(as type: Layout.Type) -> Layout? { layout as? Layout }

  /// Why a `[rows, columns]` weight cannot take this layout, or `nil` if it can.
  public func unsupportedReason(rows: Int, columns: Int) -> String? {
    if columns % groupSize != 0 {
      return "input dimension \(columns) is not a multiple of the group size \(groupSize)"
    }
    return layout.additionalUnsupportedReason(rows: rows, columns: columns)
  }

  /// The output tensor name of a quantizer output `suffix` for `module`.
  public func tensorName(module: String, suffix: String) -> String { layout.tensorName(module: module, suffix: suffix) }

  /// The tensors this layout writes for a `[rows, columns]` weight of `module`.
  public func outputs(module: String, rows: Int, columns: Int, weightDType: DType, scaleDType: DType) -> [PlannedTensor] {
    layout.plannedTensors(rows: rows, columns: columns, weightDType: weightDType, scaleDType: scaleDType).map {
      PlannedTensor(name: tensorName(module: module, suffix: $0.suffix), dtype: $0.dtype, shape: $0.shape)
    }
  }

  /// Rows `range` of `tensor` when its leading dimension is `rows`; `tensor` itself otherwise.
  public static func rowSlice(_ tensor: PackedTensor, rows: Int, range: Range<Int>) -> PackedTensor {
    guard let leading = tensor.shape.first, tensor.shape.count >= 2, leading == rows else { return tensor }
    var copy = tensor
    let rowBytes = tensor.bytes.count / rows
    copy.bytes = Array(tensor.bytes[(range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)])
    copy.shape[0] = range.count
    return copy
  }

  /// Quantizes `weight` into this layout's tensors (suffix-named); see `GroupLayout.quantize`.
  public func quantize(
    _ weight: WeightMatrix, search: Bool, scaleDType: DType, tensorAmax: Float? = nil
  ) throws(FormatQuantizationError) -> [PackedTensor] {
    try layout.quantize(weight, search: search, scaleDType: scaleDType, tensorAmax: tensorAmax)
  }
}
