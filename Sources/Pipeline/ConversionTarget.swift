import TensorCore

/// What `smelt convert --to` produces.
public enum ConversionTarget: Sendable, Equatable, CustomStringConvertible {
  /// Dequantize / cast weights to a plain floating dtype (`bf16`, `f16`, `f32`).
  case cast(DType)
  /// Plain unscaled casts of every floating tensor to `F8_E4M3` or `F8_E5M2`, saturating at ±max.
  case unscaledFP8(DType)
  /// Scaled FP8 E4M3 weights.
  case fp8(FP8Layout)

  /// The names accepted by `--to`, in help order.
  public static let names = ["bf16", "f16", "f32", "fp8-block", "fp8-channel", "fp8-tensor", "f8-e4m3", "f8-e5m2"]

  /// Parses a `--to` value. `blockShape` and `ue8m0` refine `fp8-block`.
  public static func parse(_ name: String, blockShape: (rows: Int, columns: Int) = (128, 128), ue8m0: Bool = false) -> ConversionTarget? {
    switch name {
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
