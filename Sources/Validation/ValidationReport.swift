import CMath
import Checkpoint
import TensorCore
import WeightFormats

/// Which comparisons `smelt validate` runs.
public enum ValidationLevel: String, Sendable, CaseIterable, Comparable {
  /// Every logical weight, dequantized, element by element.
  case tensor
  /// Every linear (and routed expert) on the same inputs; per MoE layer, the routing.
  case layer
  /// Both models end to end on the same tokens: logits KL, top-1, hidden states, routing.
  case model

  public static func < (lhs: ValidationLevel, rhs: ValidationLevel) -> Bool { lhs.rank < rhs.rank }

  private var rank: Int {
    switch self {
    case .tensor: 0
    case .layer: 1
    case .model: 2
    }
  }
}

/// The pass/fail limits. `nil` means "use the default" for the SNR and "no limit" for the others.
public struct ValidationThresholds: Sendable, Equatable {
  /// Smallest acceptable SNR (dB) of a weight and of a linear's output; `nil`: by the candidate's storage
  /// (`defaultMinimumSNR`).
  public var minimumSNRDecibels: Double?
  /// Smallest acceptable cosine similarity of a weight and of a linear's output.
  public var minimumCosine: Double?
  /// Largest acceptable `max |Δ| / max |ref|` of a weight (tensor level); `nil`: by the candidate's storage
  /// (`defaultMaximumPeakError`).
  public var maximumPeakError: Double?
  /// Largest acceptable mean KL divergence of the next-token distributions (nats).
  public var maximumMeanKL: Double?
  /// Smallest acceptable fraction (0...1) of positions whose top-1 token agrees.
  public var minimumTop1Agreement: Double?

  public init(
    minimumSNRDecibels: Double? = nil, minimumCosine: Double? = nil, maximumPeakError: Double? = nil,
    maximumMeanKL: Double? = nil, minimumTop1Agreement: Double? = nil
  ) {
    self.minimumSNRDecibels = minimumSNRDecibels
    self.minimumCosine = minimumCosine
    self.maximumPeakError = maximumPeakError
    self.maximumMeanKL = maximumMeanKL
    self.minimumTop1Agreement = minimumTop1Agreement
  }

  /// The default SNR floor for a candidate weight stored as `storage` with values of `dtype`, at the tensor
  /// level: the format's own gate (`WeightFormat.validationGates`).
  public static func defaultMinimumSNR(storage: WeightStorage, dtype: String?) -> Double {
    WeightFormats.format(of: storage).validationGates(dtype: dtype.flatMap(DType.init(rawValue:))).minimumSNRDecibels
  }

  /// The default ceiling on a weight's `max |Δ| / max |ref|` (`WeightFormat.validationGates`).
  public static func defaultMaximumPeakError(storage: WeightStorage, dtype: String?) -> Double {
    WeightFormats.format(of: storage).validationGates(dtype: dtype.flatMap(DType.init(rawValue:))).maximumPeakError
  }

  /// The peak-error ceiling for one weight.
  func maximumPeak(storage: WeightStorage, dtype: String?) -> Double {
    maximumPeakError ?? Self.defaultMaximumPeakError(storage: storage, dtype: dtype)
  }

  /// How much lower the default floor is for a linear's output than for its weight: real activations put
  /// most of their energy on a few (outlier) input channels, so an output can be much noisier than the
  /// weight as a whole (int4 g64 on the sample: 13.8 dB mean weight SNR, 6.7 dB worst output on the inputs the
  /// forward pass gave it).
  public static let layerDefaultMargin = 6.0

  /// The SNR floor for a weight judged by `storages` (`CheckpointWeightProvider.judgedStorages`): the
  /// lowest of theirs, so a weight rebuilt from a 4-bit and an 8-bit tensor is held to the 4-bit floor.
  func minimumSNR(storages: [(storage: WeightStorage, dtype: DType?)], level: ValidationLevel = .tensor) -> Double {
    storages.map { minimumSNR(storage: $0.storage, dtype: $0.dtype?.rawValue, level: level) }.min()
      ?? minimumSNR(storage: .plain, dtype: nil, level: level)
  }

  /// The peak-error ceiling for a weight judged by `storages`: the highest of theirs.
  func maximumPeak(storages: [(storage: WeightStorage, dtype: DType?)]) -> Double {
    storages.map { maximumPeak(storage: $0.storage, dtype: $0.dtype?.rawValue) }.max()
      ?? maximumPeak(storage: .plain, dtype: nil)
  }

  /// The SNR floor for one weight (`level` `.tensor`) or one linear's output (`.layer`).
  func minimumSNR(storage: WeightStorage, dtype: String?, level: ValidationLevel = .tensor) -> Double {
    if let minimumSNRDecibels { return minimumSNRDecibels }
    let base = Self.defaultMinimumSNR(storage: storage, dtype: dtype)
    return level == .layer ? base - Self.layerDefaultMargin : base
  }
}

/// One logical weight compared (tensor level).
public struct TensorComparison: Sendable {
  /// The logical weight name (`model.layers.3.mlp.experts.7.up_proj.weight`).
  public var name: String
  /// The decoder layer, routed expert.
  public var layer: Int?
  public var expert: Int?
  /// The logical shape.
  public var shape: [Int]
  /// Storage on each side (`plain BF16`, `fp8-block F8_E4M3`).
  public var referenceStorage: String
  public var candidateStorage: String
  public var metrics: ComparisonMetrics
  /// The SNR floor applied.
  public var minimumSNRDecibels: Double
  /// The peak-error ceiling applied.
  public var maximumPeakError: Double
  /// Why it failed, or `nil`.
  public var failure: String?
  /// `zero reference` and other remarks.
  public var note: String?
  /// True when the candidate lacks the weight by design (`CheckpointWeightProvider.leavesOut`): not compared.
  public var leftOut = false
}

/// Where a linear's test inputs came from.
public enum LinearInput: String, Sendable {
  /// Seeded standard-normal rows.
  case random
  /// The reference model's own activations on the tokens (see `formats/validation-report.md`).
  case hidden
}

/// One linear (attention projection, MLP projection, expert, router) run on the same inputs with the
/// reference and the candidate weight (layer level).
public struct LinearComparison: Sendable {
  public var name: String
  public var layer: Int?
  public var expert: Int?
  public var input: LinearInput
  /// Input rows.
  public var rowCount: Int
  /// Output metrics.
  public var metrics: ComparisonMetrics
  public var minimumSNRDecibels: Double
  public var failure: String?
  public var note: String?
}

/// How often a MoE layer's selected expert set is unchanged.
public struct RoutingAgreement: Sendable {
  public var layer: Int
  /// Tokens compared.
  public var tokenCount: Int
  /// Tokens whose selected expert *set* is identical.
  public var unchangedCount: Int
  /// `layer`: reference and candidate router on the same inputs; `model`: each model's own forward pass.
  public var source: String
  /// `unchangedCount / tokenCount`.
  public var unchangedFraction: Double { tokenCount == 0 ? 1 : Double(unchangedCount) / Double(tokenCount) }
}

/// One layer's residual stream compared between the two forward passes.
public struct HiddenStateComparison: Sendable {
  public var layer: Int
  public var metrics: ComparisonMetrics

  /// The drift after this layer: `‖candidate − reference‖ / ‖reference‖` (from the SNR: `10^(−SNR/20)`);
  /// `nil` for a zero reference.
  public var relativeError: Double? {
    guard let snr = metrics.snrDecibels else { return nil }
    return CMath.pow(10, -snr / 20)
  }
}

/// End-to-end comparison on the same tokens (model level).
public struct ModelComparison: Sendable {
  /// The tokens run (`[B][T]`).
  public var tokens: [[Int]]
  /// KL(softmax(reference) ‖ softmax(candidate)) per position, in nats: mean, 99th percentile (nearest
  /// rank), maximum.
  public var meanKL: Double
  public var p99KL: Double
  public var maxKL: Double
  /// Positions whose argmax token agrees, and the total.
  public var top1Agreements: Int
  public var positionCount: Int
  /// `max |Δlogit|`.
  public var maxAbsoluteLogitDifference: Double
  /// NaN or infinite candidate logits (always a failure).
  public var nonFiniteLogitCount: Int
  /// Logits compared as a tensor.
  public var logits: ComparisonMetrics
  /// The residual stream after each layer.
  public var hiddenStates: [HiddenStateComparison]
  /// Each MoE layer's routing in the two forward passes.
  public var routing: [RoutingAgreement]
  /// Why it failed (threshold violations), empty when it passed.
  public var failures: [String]
  /// How far `meanKL` and `top1Agreement` would move with another batch of the same size (their standard
  /// errors, llama.cpp's formulas; 0 for fewer than two positions).
  public var meanKLStandardError: Double = 0
  public var top1StandardError: Double = 0
  /// Each side's perplexity on the tokens themselves: `exp` of the mean negative log-likelihood of every next
  /// token (`B × (T − 1)` predictions); `nil` for sequences of one token. Meaningful when the tokens are real
  /// text (`--tokens-file`); on random ids both are near the vocabulary size.
  public var referencePerplexity: Double? = nil
  public var candidatePerplexity: Double? = nil

  /// `top1Agreements / positionCount`.
  public var top1Agreement: Double { positionCount == 0 ? 1 : Double(top1Agreements) / Double(positionCount) }
  /// `candidatePerplexity / referencePerplexity` (1: the conversion costs nothing on this text).
  public var perplexityRatio: Double? {
    guard let referencePerplexity, let candidatePerplexity, referencePerplexity > 0 else { return nil }
    return candidatePerplexity / referencePerplexity
  }
}

/// One failed check, for the summary and the exit status.
public struct ValidationFailure: Sendable, Equatable {
  public var level: ValidationLevel
  /// The tensor, linear or `logits`.
  public var subject: String
  public var layer: Int?
  public var expert: Int?
  public var message: String

  /// `tensor model.layers.3.mlp.experts.7.up_proj.weight (layer 3, expert 7): snr 6.1 dB < 25 dB`.
  public var summary: String {
    var place: [String] = []
    if let layer { place.append("layer \(layer)") }
    if let expert { place.append("expert \(expert)") }
    return "\(level.rawValue) \(subject)\(place.isEmpty ? "" : " (\(place.joined(separator: ", ")))"): \(message)"
  }
}

/// Everything `smelt validate` measured.
public struct ValidationReport: Sendable {
  public var reference: String
  public var candidate: String
  public var levels: [ValidationLevel]
  public var layers: IndexSelection?
  public var experts: IndexSelection?
  public var thresholds: ValidationThresholds
  /// The model-level gate applied (`nil` without the model level).
  public var modelGate: ModelGate?
  public var tensors: [TensorComparison] = []
  public var linears: [LinearComparison] = []
  /// Layer-level routing (same inputs, each side's router).
  public var routing: [RoutingAgreement] = []
  public var model: ModelComparison?
  /// Remarks that are not failures (skipped checks, candidate-only tensors).
  public var notes: [String] = []

  /// Every failed check, in report order.
  public var failures: [ValidationFailure] {
    var failures: [ValidationFailure] = []
    for t in tensors {
      if let failure = t.failure {
        failures.append(ValidationFailure(level: .tensor, subject: t.name, layer: t.layer, expert: t.expert, message: failure))
      }
    }
    for l in linears {
      if let failure = l.failure {
        failures.append(
          ValidationFailure(
            level: .layer, subject: "\(l.name) on \(l.input.rawValue) inputs", layer: l.layer, expert: l.expert,
            message: failure))
      }
    }
    for message in model?.failures ?? [] {
      failures.append(ValidationFailure(level: .model, subject: "logits", layer: nil, expert: nil, message: message))
    }
    return failures
  }

  /// No check failed.
  public var passed: Bool { failures.isEmpty }
}
