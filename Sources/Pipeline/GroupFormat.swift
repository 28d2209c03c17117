import Checkpoint
import Quantization
import SafeTensors
import TensorCore
import WeightFormats

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

/// A 4-bit (or MLX 8-bit) group/block layout Smelt writes, each exactly as its consumer reads it.
public enum GroupFormat: Sendable, Hashable, CustomStringConvertible {
  /// compressed-tensors `pack-quantized` int4 (`weight_packed`, `weight_scale`, `weight_shape`,
  /// `weight_zero_point` when asymmetric).
  case int4(groupSize: Int, symmetry: Int4Symmetry)
  /// GPTQ v1, symmetric (`qweight`, `qzeros`, `scales`, `g_idx`).
  case gptq(groupSize: Int)
  /// MLX affine (`weight` U32, `scales`, `biases`).
  case mlxAffine(bits: Int, groupSize: Int)
  /// MXFP4: `.compressedTensors` writes `mxfp4-pack-quantized` with compressed-tensors' scale rule,
  /// `.gptOss` the gpt-oss `weight_blocks`/`weight_scales` layout with triton_kernels' (transformers') rule.
  case mxfp4(MXFP4.ScaleRule)
  /// NVFP4 in the producer's naming and arithmetic (ModelOpt or compressed-tensors).
  case nvfp4(NVFP4.Producer)

  /// The storage `WeightGrouping` detects for this layout.
  public var storage: WeightStorage {
    switch self {
    case .int4: return .int4PackQuantized
    case .gptq: return .gptq
    case .mlxAffine: return .mlxAffine
    case .mxfp4(.compressedTensors): return .mxfp4CompressedTensors
    case .mxfp4(.gptOss): return .mxfp4GptOss
    case .nvfp4(.modelOpt): return .nvfp4ModelOpt
    case .nvfp4(.compressedTensors): return .nvfp4CompressedTensors
    }
  }

  /// The config family that describes it.
  public var family: ConsumerFamily {
    switch self {
    case .int4, .mxfp4(.compressedTensors), .nvfp4(.compressedTensors): return .compressedTensors
    case .gptq: return .gptq
    case .mlxAffine: return .mlx
    case .mxfp4(.gptOss): return .gptOss
    case .nvfp4(.modelOpt): return .modelOpt
    }
  }

  /// Elements per group (block) along the input dimension.
  public var groupSize: Int {
    switch self {
    case .int4(let g, _), .gptq(let g), .mlxAffine(_, let g): return g
    case .mxfp4: return MXFP4.blockSize
    case .nvfp4: return NVFP4.blockSize
    }
  }

  /// Bits per element.
  public var bits: Int {
    if case .mlxAffine(let bits, _) = self { return bits }
    return 4
  }

  /// The `--to` / scheme name.
  public var name: String {
    switch self {
    case .int4(_, .symmetric): return "int4-g128"
    case .int4(_, .asymmetric): return "int4-asym"
    case .gptq: return "gptq"
    case .mlxAffine: return "mlx-affine"
    case .mxfp4(.compressedTensors): return "mxfp4"
    case .mxfp4(.gptOss): return "mxfp4-gpt-oss"
    case .nvfp4(.modelOpt): return "nvfp4"
    case .nvfp4(.compressedTensors): return "nvfp4-ct"
    }
  }

  public var description: String {
    switch self {
    case .int4(let g, let symmetry): return "int4 \(symmetry.rawValue) group \(g) (compressed-tensors pack-quantized)"
    case .gptq(let g): return "int4 symmetric group \(g) (GPTQ v1)"
    case .mlxAffine(let bits, let g): return "MLX affine \(bits)-bit group \(g)"
    case .mxfp4(.compressedTensors): return "MXFP4 (compressed-tensors mxfp4-pack-quantized)"
    case .mxfp4(.gptOss): return "MXFP4 (gpt-oss blocks/scales)"
    case .nvfp4(.modelOpt): return "NVFP4 (ModelOpt)"
    case .nvfp4(.compressedTensors): return "NVFP4 (compressed-tensors nvfp4-pack-quantized)"
    }
  }

  /// Why a `[rows, columns]` weight cannot take this layout, or `nil` if it can.
  public func unsupportedReason(rows: Int, columns: Int) -> String? {
    if columns % groupSize != 0 {
      return "input dimension \(columns) is not a multiple of the group size \(groupSize)"
    }
    if case .gptq = self, rows % 8 != 0 {
      return "output dimension \(rows) is not a multiple of 8 (GPTQ packs qzeros along it)"
    }
    if case .int4 = self, columns % 8 != 0 {
      return "input dimension \(columns) is not a multiple of 8"
    }
    return nil
  }

  /// The output tensor name of a quantizer output `suffix` for `module`.
  public func tensorName(module: String, suffix: String) -> String {
    if case .mxfp4(.gptOss) = self { return module + ".weight_" + suffix }
    return module + "." + suffix
  }

  /// The tensors this layout writes for a `[rows, columns]` weight of `module`; `weightDType` is the dtype the
  /// quantizer sees the weight in, `scaleDType` the compressed-tensors int4 scale dtype.
  public func outputs(module: String, rows: Int, columns: Int, weightDType: DType, scaleDType: DType) -> [PlannedTensor] {
    let g = groupSize
    func tensor(_ suffix: String, _ dtype: DType, _ shape: [Int]) -> PlannedTensor {
      PlannedTensor(name: tensorName(module: module, suffix: suffix), dtype: dtype, shape: shape)
    }
    switch self {
    case .int4(_, let symmetry):
      var out = [
        tensor("weight_packed", .int32, [rows, columns / 8]),
        tensor("weight_scale", scaleDType, [rows, columns / g]),
        tensor("weight_shape", .int64, [2]),
      ]
      if symmetry == .asymmetric { out.append(tensor("weight_zero_point", .int32, [(rows + 7) / 8, columns / g])) }
      return out
    case .gptq:
      return [
        tensor("qweight", .int32, [columns / 8, rows]),
        tensor("qzeros", .int32, [columns / g, rows / 8]),
        tensor("scales", .float16, [columns / g, rows]),
        tensor("g_idx", .int32, [columns]),
      ]
    case .mlxAffine(let bits, _):
      return [
        tensor("weight", .uint32, [rows, columns * bits / 32]),
        tensor("scales", weightDType, [rows, columns / g]),
        tensor("biases", weightDType, [rows, columns / g]),
      ]
    case .mxfp4(.compressedTensors):
      return [tensor("weight_packed", .uint8, [rows, columns / 2]), tensor("weight_scale", .uint8, [rows, columns / g])]
    case .mxfp4(.gptOss):
      return [tensor("blocks", .uint8, [rows, columns / g, 16]), tensor("scales", .uint8, [rows, columns / g])]
    case .nvfp4(.modelOpt):
      return [
        tensor("weight", .uint8, [rows, columns / 2]), tensor("weight_scale", .float8E4M3FN, [rows, columns / g]),
        tensor("weight_scale_2", .float32, []),
      ]
    case .nvfp4(.compressedTensors):
      return [
        tensor("weight_packed", .uint8, [rows, columns / 2]), tensor("weight_scale", .float8E4M3FN, [rows, columns / g]),
        tensor("weight_global_scale", .float32, [1]),
      ]
    }
  }

  /// Whether fused siblings share one per-tensor scale (NVFP4: vLLM loads them as one layer).
  public var sharesTensorScaleWithFusedSiblings: Bool {
    if case .nvfp4 = self { return true }
    return false
  }

  /// Quantizes `weight` into this layout's tensors (suffix-named), with the clip search when `search`;
  /// `tensorAmax` is the fused siblings' largest |x| for layouts with a per-tensor scale.
  public func quantize(
    _ weight: WeightMatrix, search: Bool, scaleDType: DType, tensorAmax: Float? = nil
  ) throws(FormatQuantizationError) -> [PackedTensor] {
    switch self {
    case .int4(let g, let symmetry):
      let result = search
        ? try Int4GroupQuantizer.quantizeWithClipSearch(weight, groupSize: g, symmetry: symmetry, scaleDType: scaleDType)
        : try Int4GroupQuantizer.quantize(weight, groupSize: g, symmetry: symmetry, scaleDType: scaleDType)
      return Int4PackQuantized.tensors(result)
    case .gptq(let g):
      return GPTQv1.tensors(try GPTQv1.quantize(weight, groupSize: g, symmetry: .symmetric))
    case .mlxAffine(let bits, let g):
      let result = search
        ? try MLXAffine.quantizeWithClipSearch(weight, groupSize: g, bits: bits)
        : try MLXAffine.quantize(weight, groupSize: g, bits: bits)
      return MLXAffine.tensors(result)
    case .mxfp4(let rule):
      let result = search ? try MXFP4.quantizeWithClipSearch(weight, rule: rule) : try MXFP4.quantize(weight, rule: rule)
      return rule == .gptOss ? MXFP4.gptOssTensors(result) : MXFP4.compressedTensorsTensors(result)
    case .nvfp4(let producer):
      let result = search
        ? try NVFP4.quantizeWithClipSearch(weight, producer: producer, tensorAmax: tensorAmax)
        : try NVFP4.quantize(weight, producer: producer, tensorAmax: tensorAmax)
      return NVFP4.tensors(result)
    }
  }

  /// True when `--search` has a clip search for this layout (GPTQ has none: use int4-g128, the same grid).
  public var supportsSearch: Bool {
    if case .gptq = self { return false }
    return true
  }
}

/// What a group-format job needs beyond its layout.
public struct GroupJob: Sendable, Hashable {
  public var format: GroupFormat
  /// Choose scales with the clip search instead of round-to-nearest.
  public var search: Bool
  /// The dtype the quantizer treats the weight as (the plain source dtype; F32 for decoded sources, so FP8
  /// checkpoints requantize from their exact F32 dequantization).
  public var weightDType: DType
  /// compressed-tensors int4 scale dtype (the weight dtype, or the model dtype for F32-decoded sources).
  public var scaleDType: DType
  /// Indices (into the plan's jobs) of the fused siblings whose per-tensor scale this weight shares, itself
  /// included (`FusedLinears`; empty when it has its own).
  public var fusedJobs: [Int] = []
}
