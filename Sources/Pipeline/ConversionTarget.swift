import Quantization
import TensorCore

/// What `smelt convert --to` produces.
public enum ConversionTarget: Sendable, Equatable, CustomStringConvertible {
  /// Dequantize / cast weights to a plain floating dtype (`bf16`, `f16`, `f32`).
  case cast(DType)
  /// Plain unscaled casts of every floating tensor to `F8_E4M3` or `F8_E5M2`, saturating at ±max.
  case unscaledFP8(DType)
  /// Scaled FP8 E4M3 weights.
  case fp8(FP8Layout)
  /// A 4-bit (or MLX 8-bit) group layout.
  case group(GroupFormat)
  /// A mixed recipe: per-tensor schemes by glob rules (see `ConversionRecipe`).
  indirect case mixed(ConversionRecipe)

  /// The names accepted by `--to`, in help order.
  public static let names = [
    "bf16", "f16", "f32", "fp8-block", "fp8-channel", "fp8-tensor", "f8-e4m3", "f8-e5m2",
    "int4-g128", "int4-g64", "int4-g32", "int4-asym", "gptq", "mlx-affine", "mxfp4", "mxfp4-gpt-oss", "nvfp4", "nvfp4-ct",
  ]

  /// Group sizes accepted by the int4, GPTQ and MLX targets.
  public static let groupSizes = [32, 64, 128]

  /// Parses a `--to` value. `blockShape` and `ue8m0` refine `fp8-block`; `groupSize` (default: 128 for int4 and
  /// GPTQ, the name's own for `int4-g32`/`int4-g64`, 64 for MLX) and `bits` (MLX: 4 or 8) refine the group
  /// formats. Returns `nil` for an unknown name or an unsupported group size / bit width.
  public static func parse(
    _ name: String, blockShape: (rows: Int, columns: Int) = (128, 128), ue8m0: Bool = false, groupSize: Int? = nil,
    bits: Int = 4
  ) -> ConversionTarget? {
    if let group = groupSize, !groupSizes.contains(group) { return nil }
    switch name {
    case "int4-g128", "int4-g64", "int4-g32":
      return .group(.int4(groupSize: groupSize ?? Int(name.dropFirst("int4-g".count)) ?? 128, symmetry: .symmetric))
    case "int4-asym": return .group(.int4(groupSize: groupSize ?? 128, symmetry: .asymmetric))
    case "gptq": return .group(.gptq(groupSize: groupSize ?? 128))
    case "mlx-affine":
      guard MLXAffine.supportedBits.contains(bits) else { return nil }
      return .group(.mlxAffine(bits: bits, groupSize: groupSize ?? 64))
    case "mxfp4": return .group(.mxfp4(.compressedTensors))
    case "mxfp4-gpt-oss": return .group(.mxfp4(.gptOss))
    case "nvfp4": return .group(.nvfp4(.modelOpt))
    case "nvfp4-ct": return .group(.nvfp4(.compressedTensors))
    case "bf16": return .cast(.bfloat16)
    case "f16": return .cast(.float16)
    case "f32": return .cast(.float32)
    case "f8-e4m3": return .unscaledFP8(.float8E4M3FN)
    case "f8-e5m2": return .unscaledFP8(.float8E5M2)
    case "fp8-block":
      return .fp8(FP8Layout(granularity: .block(rows: blockShape.rows, columns: blockShape.columns), ue8m0Scales: ue8m0))
    case "fp8-channel": return .fp8(FP8Layout(granularity: .channel, ue8m0Scales: ue8m0))
    case "fp8-tensor": return .fp8(FP8Layout(granularity: .tensor, ue8m0Scales: ue8m0))
    default: return nil
    }
  }

  public var description: String {
    switch self {
    case .cast(let dtype): return "cast to \(dtype)"
    case .unscaledFP8(let dtype): return "unscaled cast to \(dtype)"
    case .fp8(let layout): return layout.description
    case .group(let format): return format.description
    case .mixed(let recipe): return "mixed recipe (\(recipe.rules.count) rule(s), default \(recipe.fallback))"
    }
  }
}

/// Scaled FP8 E4M3 weight layouts.
///
/// - `block` with the DeepSeek naming is the release convention (`weight_scale_inv` F32
///   `[ceil(out/r), ceil(in/c)]`, `quant_method: fp8`); `channel` and `tensor` use the compressed-tensors
///   `float-quantized` naming (`weight_scale` `[out, 1]` / `[1]`), which vLLM loads.
public struct FP8Layout: Sendable, Equatable, CustomStringConvertible {
  public enum Granularity: Sendable, Equatable {
    case block(rows: Int, columns: Int)
    case channel
    case tensor
  }
  public var granularity: Granularity
  /// Round every scale up to a power of two (DeepSeek-V3.1 `scale_fmt: ue8m0`), then quantize with it.
  public var ue8m0Scales: Bool

  public init(granularity: Granularity, ue8m0Scales: Bool = false) {
    self.granularity = granularity
    self.ue8m0Scales = ue8m0Scales
  }

  /// The name of the scale tensor next to `weight`.
  public var scaleLeaf: String {
    if case .block = granularity { return "weight_scale_inv" }
    return "weight_scale"
  }

  public var description: String {
    switch granularity {
    case .block(let r, let c): return "FP8 E4M3, F32 scale per \(r)x\(c) block\(ue8m0Scales ? " (ue8m0)" : "")"
    case .channel: return "FP8 E4M3, scale per output channel (compressed-tensors)"
    case .tensor: return "FP8 E4M3, one scale per tensor (compressed-tensors)"
    }
  }
}
