import Checkpoint
import JSON
import Pipeline
import Quantization
import ReferenceModel
import SafeTensors
import TensorCore
import Validation
import WeightFormats
import WeightSources

/// `validate --sensitivity`: what converting each tensor group costs the model, one group at a time.
///
/// Groups come from the model family's tensor classifier (`TensorClassifier`: attention, shared experts, routed
/// experts, dense MLP, output head, ... per decoder layer) over the weights a plain `--to SCHEME` conversion
/// converts. For each group and each *level* of the scheme's ladder (`SensitivityLadder`), the group's weights
/// are converted in memory by the conversion's own code (`ConversionRunner.readBack`: the plan's quantizer, then
/// the format's dequantizer), the rest of the model is left at the original's precision (`OverlayWeightProvider`),
/// and the forward pass is compared with the original's on the same tokens (`LogitStatistics`, as
/// `validate --level model`). Bytes are the conversion plan's output bytes of the group's tensors.
public struct SensitivityAnalysis: Sendable {
  /// One group's cost at one ladder level.
  public struct Measurement: Sendable, Equatable {
    /// The level's label (a scheme name, `keep`).
    public var level: String
    /// The recipe scheme of each of the group's weights at this level (a finer level where the level's layout
    /// cannot take a weight; `bf16` takes all).
    public var schemes: [String: String]
    public var byteCount: Int
    public var meanKL: Double
    public var meanKLStandardError: Double
    public var top1Agreement: Double
    public var top1StandardError: Double
    /// Whether the forward pass ran (false: the weights are unchanged or not on the forward path, KL 0).
    public var measured: Bool
  }

  /// One tensor group: the weights of one role in one layer.
  public struct Group: Sendable {
    public var label: String
    public var role: TensorRole
    public var layer: Int?
    public var isMTP: Bool
    /// Logical weight names, in checkpoint order.
    public var weights: [String]
    /// The original's bytes of those weights.
    public var originalByteCount: Int
    /// By ladder level, finest last; `measurements[schemeLevel]` is the `--to` scheme.
    public var measurements: [Measurement]
  }

  public var reference: String
  public var scheme: String
  public var tokens: [[Int]]
  public var groups: [Group]
  /// The index of the `--to` scheme in each group's `measurements`.
  public var schemeLevel: Int
  /// Output bytes of a plain `--to SCHEME` conversion (weights, no headers).
  public var plainByteCount: Int
  /// Output bytes of the tensors in no group (the same in every recipe).
  public var otherByteCount: Int
  /// Every logical weight of the checkpoint (what a recipe rule could reach).
  public var allWeights: [String] = []
  public var notes: [String] = []

  /// Measures every group of `checkpoint` at every level of `ladder`.
  public static func measure(
    checkpoint: Checkpoint, ladder: SensitivityLadder, tokens: [[Int]], log: (String) -> Void
  ) throws -> SensitivityAnalysis {
    let reference = CheckpointWeightProvider(checkpoint: checkpoint)
    let configuration = try reference.modelConfiguration()
    try TokenBatch.check(tokens, vocabularySize: configuration.vocabularySize)
    // One whole-model plan per level; the plain scheme's refuses incompatible weights as convert does.
    var runners: [ConversionRunner] = []
    for (index, level) in ladder.levels.enumerated() {
      let plan = try ConversionPlan(
        checkpoint: checkpoint, target: level.target, skipIncompatible: index != ladder.schemeLevel)
      runners.append(ConversionRunner(plan: plan, checkpoint: checkpoint, output: checkpoint.directory))
    }
    let plain = runners[ladder.schemeLevel].plan
    let jobIndex = runners.map { runner in
      Dictionary(runner.plan.jobs.indices.map { (WeightDecoding.logicalName(of: runner.plan.jobs[$0].group), $0) }, uniquingKeysWith: { a, _ in a })
    }
    let incompatible = runners.map { Set($0.plan.skippedIncompatible.map(\.name)) }

    // The groups: the weights the plain conversion converts, by (MTP, layer, role) in checkpoint order.
    let classifier = checkpoint.classifier
    var groups: [Group] = []
    var groupOf: [String: Int] = [:]
    for job in plain.jobs {
      if case .copy = job.action { continue }
      let name = WeightDecoding.logicalName(of: job.group)
      let kind = classifier.classify(name)
      let key = "\(kind.isMTP ? "mtp " : "")\(kind.layer.map { "layer \($0) " } ?? "")\(kind.role.rawValue)"
      if let index = groupOf[key] {
        groups[index].weights.append(name)
        groups[index].originalByteCount += job.sourceByteCount
      } else {
        groupOf[key] = groups.count
        groups.append(
          Group(label: key, role: kind.role, layer: kind.layer, isMTP: kind.isMTP, weights: [name],
            originalByteCount: job.sourceByteCount, measurements: []))
      }
    }
    guard !groups.isEmpty else { throw SensitivityError.nothingToConvert(scheme: ladder.levels[ladder.schemeLevel].text) }

    log("reference forward pass on \(tokens.count)×\(tokens.first?.count ?? 0) tokens")
    let model = try ReferenceModel(configuration: configuration, weights: reference)
    try model.checkWeightShapes()
    let referenceLogits = try model.forward(tokens).logits
    var otherBytes = plain.outputByteCount

    for g in groups.indices {
      for level in ladder.levels.indices {
        // Each weight at this level, or at the next finer level whose layout takes it (`bf16` takes all).
        var schemes: [String: String] = [:]
        var replaced: [String: FloatTensor] = [:]
        var bytes = 0
        for name in groups[g].weights {
          guard let used = (level..<ladder.levels.count).first(where: { !incompatible[$0].contains(name) }),
            let index = jobIndex[used][name]
          else { throw SensitivityError.unplanned(weight: name) }
          schemes[name] = ladder.levels[used].text
          bytes += runners[used].plan.jobs[index].outputByteCount
          // Values equal to the original's (a BF16 weight cast to BF16) change nothing: no forward pass for them.
          if let values = try runners[used].readBack(job: index), values != (try reference.weight(name).values) {
            replaced[name] = try FloatTensor(shape: try reference.shape(of: name), values: values)
          }
        }
        var measurement = Measurement(
          level: ladder.levels[level].text, schemes: schemes, byteCount: bytes, meanKL: 0, meanKLStandardError: 0,
          top1Agreement: 1, top1StandardError: 0, measured: false)
        if !replaced.isEmpty && !groups[g].isMTP {
          log("\(groups[g].label): \(ladder.levels[level].text)")
          let overlay = OverlayWeightProvider(base: reference, replaced: replaced)
          let logits = try ReferenceModel(configuration: configuration, weights: overlay).forward(tokens).logits
          let stats = LogitStatistics(reference: referenceLogits, candidate: logits)
          measurement.meanKL = stats.meanKL
          measurement.meanKLStandardError = stats.meanKLStandardError
          measurement.top1Agreement = stats.top1Fraction
          measurement.top1StandardError = stats.top1StandardError
          measurement.measured = true
        }
        groups[g].measurements.append(measurement)
      }
      otherBytes -= groups[g].measurements[ladder.schemeLevel].byteCount
    }
    var analysis = SensitivityAnalysis(
      reference: checkpoint.directory, scheme: ladder.levels[ladder.schemeLevel].text, tokens: tokens, groups: groups,
      schemeLevel: ladder.schemeLevel, plainByteCount: plain.outputByteCount, otherByteCount: otherBytes)
    analysis.allWeights = plain.jobs.map { WeightDecoding.logicalName(of: $0.group) }
    if groups.contains(where: \.isMTP) {
      analysis.notes.append("MTP layers are not on the forward path: their groups cost no KL here")
    }
    return analysis
  }

  /// The groups sorted by the KL the `--to` scheme costs, largest first (ties: checkpoint order).
  public var bySensitivity: [Group] {
    groups.enumerated().sorted { a, b in
      let (x, y) = (a.element.measurements[schemeLevel].meanKL, b.element.measurements[schemeLevel].meanKL)
      return x != y ? x > y : a.offset < b.offset
    }.map(\.element)
  }
}

/// Why `--sensitivity` cannot run.
public enum SensitivityError: Error, CustomStringConvertible {
  /// The scheme converts no weight of the checkpoint.
  case nothingToConvert(scheme: String)
  /// A weight of a group has no job in a level's plan (a planning bug, not a user error).
  case unplanned(weight: String)
  /// `--to` names no scheme (the recipe parser's reason).
  case invalidScheme(String, reason: String)
  /// A scheme whose conversion cannot be replayed in memory (only the group layouts can).
  case notMeasurableInMemory(scheme: String)

  /// Whether the error is the user's to fix on the command line (a usage error, exit 64).
  public var isUsageError: Bool {
    switch self {
    case .invalidScheme, .notMeasurableInMemory: true
    case .nothingToConvert, .unplanned: false
    }
  }

  public var description: String {
    switch self {
    case .nothingToConvert(let scheme): return "--to \(scheme) converts no weight of this checkpoint: nothing to measure"
    case .unplanned(let weight): return "weight '\(weight)' has no job in the conversion plan"
    case .invalidScheme(let name, let reason): return "--to \(name): \(reason)"
    case .notMeasurableInMemory(let name):
      return "--sensitivity --to \(name): only the group layouts (int4-g*, int4-asym, gptq, mlx-affine, mxfp4, nvfp4) are measured in memory; convert with \(name) and run smelt validate --level model"
    }
  }
}

/// The schemes `--sensitivity --to SCHEME` tries on each group: the scheme itself, the other layouts of its
/// family a recipe may mix with it (other group sizes; MLX also 8 bits), and `bf16`, cheapest first.
public struct SensitivityLadder {
  public struct Level {
    /// The recipe scheme text (`int4-g128`, `mlx-affine:bits=8,group=64`, `bf16`).
    public var text: String
    /// The whole-model target converting every selected weight at this level.
    public var target: ConversionTarget
  }

  public var levels: [Level]
  public var schemeLevel: Int

  /// The ladder of `--to NAME` (refined by `defaults`); `SensitivityError.notMeasurableInMemory` for schemes
  /// measured only on disk.
  public static func of(_ name: String, defaults: ConversionRecipe.SchemeDefaults) throws -> SensitivityLadder {
    let parsed: RecipeScheme
    do { parsed = try ConversionRecipe.parseScheme(name, defaults: defaults) } catch {
      throw SensitivityError.invalidScheme(name, reason: "\(error)")
    }
    guard case .target(let target) = parsed, case .group(let format) = target else {
      throw SensitivityError.notMeasurableInMemory(scheme: name)
    }
    // GPTQ's config has one group size; the FP4 layouts have one block size: those have no siblings.
    var texts = format.layout.recipeSiblings
    if !texts.contains(where: { $0.format == format }) { texts.append((name, format)) }
    // Cheapest first: bits per weight of each layout (scales included), from the plan geometry of one 128×128 weight.
    func cost(_ f: GroupFormat) -> Int {
      f.outputs(module: "m", rows: 128, columns: 128, weightDType: .bfloat16, scaleDType: .bfloat16)
        .reduce(0) { $0 + (ByteCount.of($1.dtype, shape: $1.shape) ?? 0) }
    }
    texts.sort { cost($0.format) > cost($1.format) ? false : cost($0.format) < cost($1.format) || $0.text < $1.text }
    var levels = texts.map { item in
      Level(text: item.format == format ? name : item.text, target: .group(item.format))
    }
    // The finest level: BF16 (what `keep` gives a plain BF16 source; a 4-bit output cannot keep FP8 weights). Its
    // plan is a plain cast: only the jobs of the groups' weights are read.
    levels.append(Level(text: "bf16", target: .cast(.bfloat16)))
    return SensitivityLadder(levels: levels, schemeLevel: levels.firstIndex { $0.text == name } ?? 0)
  }
}
