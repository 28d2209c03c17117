import TensorCore
import WeightFormats
import WeightSources

/// A named set of model-level limits for `smelt validate` (`--preset NAME`): the largest mean KL of the
/// next-token distributions and the smallest top-1 agreement a correct conversion of that precision family
/// reaches. Without `--preset`, validate picks the preset of the candidate's coarsest weight storage
/// (`automatic(for:)`); `none` sets no model-level limit.
///
/// The figures come from `scripts/gate-table` (every `--to` target of both DeepSeek-V3 samples, several token
/// sets) and are documented in formats/validation-report.md: each preset passes every correct conversion
/// of its family there and fails an unscaled cast of block-FP8 codes (top-1 agreement ≈ 0). They are loose
/// on purpose — a random tiny model's logits are nearly flat, so small weight errors swap its argmax; real
/// models agree far more — so tighten them with `--max-kld`/`--min-top1` from a baseline run.
public struct ValidationPreset: Sendable, Equatable {
  /// The `--preset` name.
  public var name: String
  /// Largest acceptable mean KL (nats); `nil`: no limit.
  public var maximumMeanKL: Double?
  /// Smallest acceptable top-1 agreement (fraction); `nil`: no limit.
  public var minimumTop1Agreement: Double?

  /// 16/32-bit float casts: at most one BF16/F16 rounding per weight.
  public static let lossless = ValidationPreset(name: "lossless", maximumMeanKL: 0.02, minimumTop1Agreement: 0.8)
  /// FP8 E4M3/E5M2 (block, channel, tensor scales; unscaled casts).
  public static let fp8 = ValidationPreset(name: "fp8", maximumMeanKL: 1.0, minimumTop1Agreement: 0.25)
  /// 5- to 8-bit integer codes with group scales (GGML q8_0, q6_K, q5_*).
  public static let int8 = ValidationPreset(name: "int8", maximumMeanKL: 1.0, minimumTop1Agreement: 0.25)
  /// 4-bit integer codes (compressed-tensors int4, GPTQ, MLX affine, GGML q4_*/q3_K/q2_K).
  public static let int4 = ValidationPreset(name: "int4", maximumMeanKL: 3.0, minimumTop1Agreement: 0.1)
  /// 4-bit floats with microscales (MXFP4, NVFP4).
  public static let fp4 = ValidationPreset(name: "fp4", maximumMeanKL: 3.0, minimumTop1Agreement: 0.1)
  /// No model-level limit (tensor and layer gates still apply).
  public static let none = ValidationPreset(name: "none", maximumMeanKL: nil, minimumTop1Agreement: nil)

  /// Every preset, finest first (the `--preset` values).
  public static let all: [ValidationPreset] = [.lossless, .fp8, .int8, .int4, .fp4, .none]

  /// The preset named `name`, or `nil`.
  public static func named(_ name: String) -> ValidationPreset? { all.first { $0.name == name } }

  /// The preset of a precision family.
  public static func of(_ family: PrecisionFamily) -> ValidationPreset {
    switch family {
    case .lossless: .lossless
    case .fp8: .fp8
    case .int8: .int8
    case .int4: .int4
    case .fp4: .fp4
    }
  }

  /// Whether the preset sets any model-level limit.
  public var isEmpty: Bool { maximumMeanKL == nil && minimumTop1Agreement == nil }

  /// The preset of the coarsest storage among `candidate`'s weights, with the weight that decided it
  /// (`nil` for a candidate without weights: `lossless`).
  public static func automatic(for candidate: CheckpointWeightProvider) -> (preset: ValidationPreset, decidedBy: String?) {
    var coarsest: (family: PrecisionFamily, name: String)?
    for name in candidate.logicalNames {
      for (storage, dtype) in candidate.judgedStorages(of: name) {
        let family = WeightFormats.format(of: storage).precisionFamily(dtype: dtype)
        if coarsest == nil || family > coarsest!.family { coarsest = (family, name) }
      }
    }
    guard let coarsest else { return (.lossless, nil) }
    return (of(coarsest.family), coarsest.name)
  }
}

/// The model-level gate a run applied, and why: what `validate` prints and records (`gates` in the JSON).
public struct ModelGate: Sendable, Equatable {
  /// The preset the limits start from.
  public var preset: ValidationPreset
  /// How it was chosen: `--preset`, or the candidate weight whose storage picked it.
  public var origin: String
  /// The limits applied (a preset's, or `--max-kld` / `--min-top1` where given).
  public var maximumMeanKL: Double?
  public var minimumTop1Agreement: Double?

  public init(preset: ValidationPreset, origin: String, maximumMeanKL: Double?, minimumTop1Agreement: Double?) {
    self.preset = preset
    self.origin = origin
    self.maximumMeanKL = maximumMeanKL
    self.minimumTop1Agreement = minimumTop1Agreement
  }

  /// One line: `preset fp8 (…): mean KL <= 1, top-1 >= 25 %` or `none: no model-level limit`.
  public var summary: String {
    var limits: [String] = []
    if let maximumMeanKL { limits.append("mean KL <= \(ReportFormat.number(maximumMeanKL))") }
    if let minimumTop1Agreement { limits.append("top-1 agreement >= \(ReportFormat.percent(minimumTop1Agreement))") }
    let what = limits.isEmpty ? "NO model-level limit (KL and top-1 are reported, not judged)" : limits.joined(separator: ", ")
    return "preset \(preset.name) (\(origin)): \(what)"
  }
}
