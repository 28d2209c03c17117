import Checkpoint
import ReferenceModel
import TensorCore
import WeightSources

/// What to validate and how.
public struct ValidationOptions: Sendable {
  /// The levels to run (`tensor`, `layer`, `model`).
  public var levels: Set<ValidationLevel>
  /// Tokens for the layer (hidden-state inputs) and model levels; `nil`: `randomTokenCount` seeded ids.
  public var tokens: [[Int]]?
  /// How many random token ids to draw per sequence when `tokens` is `nil`.
  public var randomTokenCount: Int
  /// How many random sequences of `randomTokenCount` ids (a batch: `--random-tokens 8x32`).
  public var randomSequenceCount = TokenBatch.defaultRandomShape.sequences
  /// Seed of the random tokens and of the random linear inputs.
  public var seed: UInt64
  /// Only these decoder layers at the tensor and layer levels (the model level always runs every layer).
  public var layers: IndexSelection?
  /// Only these routed experts.
  public var experts: IndexSelection?
  public var thresholds: ValidationThresholds
  /// The model-level gate `thresholds` carries and why (what the report prints); `nil`: not recorded (a
  /// library caller that set `thresholds` itself).
  public var modelGate: ModelGate?
  /// Whether the layer level also feeds each linear the reference model's own activations (which needs a
  /// reference forward pass over every layer); `nil`: only when no `layers` subset is chosen.
  public var hiddenStateInputs: Bool?
  /// Rows of random input per linear.
  public var randomInputRowCount: Int
  /// Elements per side read at once when comparing one tensor (bounds memory on huge embeddings).
  public var chunkElementCount: Int

  public init(
    levels: Set<ValidationLevel> = Set(ValidationLevel.allCases), tokens: [[Int]]? = nil, randomTokenCount: Int = TokenBatch.defaultRandomShape.length,
    seed: UInt64 = 0, layers: IndexSelection? = nil, experts: IndexSelection? = nil,
    thresholds: ValidationThresholds = ValidationThresholds(), hiddenStateInputs: Bool? = nil,
    randomInputRowCount: Int = 16,
    chunkElementCount: Int = 1 << 24
  ) {
    self.levels = levels
    self.tokens = tokens
    self.randomTokenCount = randomTokenCount
    self.seed = seed
    self.layers = layers
    self.experts = experts
    self.thresholds = thresholds
    self.hiddenStateInputs = hiddenStateInputs
    self.randomInputRowCount = randomInputRowCount
    self.chunkElementCount = chunkElementCount
  }
}

/// Compares a candidate checkpoint (a conversion) with its reference at the tensor, layer and model levels
/// and judges the result against thresholds. Both sides are read lazily through `CheckpointWeightProvider`,
/// one tensor at a time (model level: one layer at a time), so memory stays bounded.
public struct Validator {
  public let reference: CheckpointWeightProvider
  public let candidate: CheckpointWeightProvider
  public let options: ValidationOptions

  public init(reference: CheckpointWeightProvider, candidate: CheckpointWeightProvider, options: ValidationOptions) {
    self.reference = reference
    self.candidate = candidate
    self.options = options
  }

  /// Runs the chosen levels. `log` receives one line per step (for progress on stderr).
  ///
  /// The work is a list of independent units (`units()`), each run on its own and assembled in order, which
  /// is also how `smelt validate --part I/N` splits it: a single run and a split run go through the same
  /// code and give the same report.
  ///
  /// - Throws: configuration problems (no config.json for layer/model levels, differing architectures, token
  ///   ids outside the vocabulary). Problems with individual weights are failures in the report instead.
  public func run(log: (String) -> Void = { _ in }) throws -> ValidationReport {
    let units = units()
    if units.contains(where: \.isTensor) { log("tensor level: comparing weights") }
    return assemble(try units.map { try run($0, log: log) })
  }

  /// The reference's configuration, after checking the candidate describes the same architecture.
  func checkedConfiguration() throws -> ModelConfiguration {
    let configuration = try reference.modelConfiguration()
    if candidate.source.config != nil {
      let other = try candidate.modelConfiguration()
      if other != configuration {
        // Named by its first differing field, not by two printed structures.
        let difference = StructuralDescription.firstDifference(configuration, other)
        throw ValidationError.configMismatch(
          field: difference.map { $0.path.isEmpty ? "architecture" : $0.path } ?? "architecture",
          reference: difference?.a ?? "one architecture", candidate: difference?.b ?? "another")
      }
    }
    return configuration
  }

  func resolvedTokens(_ configuration: ModelConfiguration) throws -> [[Int]] {
    let tokens =
      options.tokens
      ?? TokenBatch.random(
        count: options.randomTokenCount, sequences: options.randomSequenceCount, vocabularySize: configuration.vocabularySize,
        seed: options.seed)
    try TokenBatch.check(tokens, vocabularySize: configuration.vocabularySize)
    return tokens
  }

  /// Whether a weight falls inside the `--layers` / `--experts` selection.
  func isSelected(_ name: TensorName) -> Bool {
    if let layers = options.layers {
      guard let layer = name.layer, layers.contains(layer) else { return false }
    }
    if let experts = options.experts, let expert = name.expert, !experts.contains(expert) { return false }
    return true
  }

  /// Judges one set of metrics: returns the failure (if any) and a note.
  func judge(_ metrics: ComparisonMetrics, minimumSNR: Double, maximumPeak: Double? = nil) -> (
    failure: String?, note: String?
  ) {
    if metrics.nonFiniteCount > 0 {
      return ("the candidate has \(metrics.nonFiniteCount) NaN or infinite value(s)", nil)
    }
    if metrics.referenceIsZero {
      if metrics.candidateIsZero { return (nil, "zero reference") }
      return (
        "zero reference, but the candidate is not zero (max abs error \(ReportFormat.number(metrics.maxAbsoluteError)))",
        "zero reference"
      )
    }
    if let snr = metrics.snrDecibels, snr < minimumSNR {
      return ("snr \(ReportFormat.decibels(snr)) dB < \(ReportFormat.decibels(minimumSNR)) dB", nil)
    }
    if let maximumPeak, let peak = metrics.peakError, peak > maximumPeak {
      return (
        "peak error \(ReportFormat.number(peak)) × max |reference| > \(ReportFormat.number(maximumPeak)) (max abs error \(ReportFormat.number(metrics.maxAbsoluteError)))",
        nil
      )
    }
    if let minimum = options.thresholds.minimumCosine, metrics.cosineSimilarity < minimum {
      return ("cosine \(ReportFormat.cosine(metrics.cosineSimilarity)) < \(ReportFormat.cosine(minimum))", nil)
    }
    return (nil, nil)
  }
}
