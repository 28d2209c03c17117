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

  /// One `--to` (and recipe scheme) name: its help line and how it becomes a target.
  public struct Name: Sendable {
    public let name: String
    /// What it writes, for `smelt convert --help`.
    public let help: String
    let make: @Sendable (Options) -> ConversionTarget?
  }

  /// What refines a name: `--block-size`, `--scale-format`, `--group-size`, `--bits`.
  public struct Options: Sendable {
    public var blockShape: (rows: Int, columns: Int)
    public var ue8m0: Bool
    public var groupSize: Int?
    public var bits: Int
  }

  /// Every `--to` name, in help order: the one table `--to` values, recipe schemes and the help text read.
  public static let catalog: [Name] = [
    Name(name: "bf16", help: "dequantize/cast to BF16") { _ in .cast(.bfloat16) },
    Name(name: "f16", help: "to F16") { _ in .cast(.float16) },
    Name(name: "f32", help: "to F32") { _ in .cast(.float32) },
    Name(name: "fp8-block", help: "FP8 E4M3 with F32 block scales (DeepSeek; --block-size, --scale-format)") { o in
      .fp8(FP8Layout(granularity: .block(rows: o.blockShape.rows, columns: o.blockShape.columns), ue8m0Scales: o.ue8m0))
    },
    Name(name: "fp8-channel", help: "FP8 with a scale per output channel (compressed-tensors)") { o in
      .fp8(FP8Layout(granularity: .channel, ue8m0Scales: o.ue8m0))
    },
    Name(name: "fp8-tensor", help: "FP8 with one scale per tensor (compressed-tensors)") { o in
      .fp8(FP8Layout(granularity: .tensor, ue8m0Scales: o.ue8m0))
    },
    Name(name: "f8-e4m3", help: "unscaled cast to F8_E4M3") { _ in .unscaledFP8(.float8E4M3FN) },
    Name(name: "f8-e5m2", help: "unscaled cast to F8_E5M2") { _ in .unscaledFP8(.float8E5M2) },
    Name(name: "int4-g128", help: "compressed-tensors pack-quantized, --group-size 32|64|128") { o in
      .group(.int4(groupSize: o.groupSize ?? 128, symmetry: .symmetric))
    },
    Name(name: "int4-g64", help: "the same, group 64") { o in .group(.int4(groupSize: o.groupSize ?? 64, symmetry: .symmetric)) },
    Name(name: "int4-g32", help: "the same, group 32") { o in .group(.int4(groupSize: o.groupSize ?? 32, symmetry: .symmetric)) },
    Name(name: "int4-asym", help: "with zero points") { o in .group(.int4(groupSize: o.groupSize ?? 128, symmetry: .asymmetric)) },
    Name(name: "gptq", help: "GPTQ v1") { o in .group(.gptq(groupSize: o.groupSize ?? 128)) },
    Name(name: "mlx-affine", help: "MLX affine, --bits 4|8, --group-size (default 64)") { o in
      MLXAffine.supportedBits.contains(o.bits) ? .group(.mlxAffine(bits: o.bits, groupSize: o.groupSize ?? 64)) : nil
    },
    Name(name: "mxfp4", help: "MXFP4, compressed-tensors") { _ in .group(.mxfp4(.compressedTensors)) },
    Name(name: "mxfp4-gpt-oss", help: "MXFP4, gpt-oss blocks/scales") { _ in .group(.mxfp4(.gptOss)) },
    Name(name: "nvfp4", help: "NVFP4, ModelOpt") { _ in .group(.nvfp4(.modelOpt)) },
    Name(name: "nvfp4-ct", help: "NVFP4, compressed-tensors") { _ in .group(.nvfp4(.compressedTensors)) },
  ]

  /// The names accepted by `--to`, in help order.
  public static let names = catalog.map(\.name)

  /// `name (help), ...` for `smelt convert --help`.
  public static let helpSummary = catalog.map { "\($0.name) (\($0.help))" }.joined(separator: ", ")

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
    let options = Options(blockShape: blockShape, ue8m0: ue8m0, groupSize: groupSize, bits: bits)
    return catalog.first { $0.name == name }?.make(options)
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
