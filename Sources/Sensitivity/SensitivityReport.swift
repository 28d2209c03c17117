import Checkpoint
import JSON
import Pipeline

/// A written recipe and what it is predicted and planned to reach.
public struct SensitivityOutcome: Sendable {
  public var recipe: SensitivityRecipe
  public var target: RecipeSelection.Target
  /// The chosen level of each group (by `SensitivityAnalysis.groups` index).
  public var choice: [Int]
  public var predictedMeanKL: Double
  /// The bytes `smelt convert --recipe` plans for the recipe (weights, no headers).
  public var plannedByteCount: Int
  public var path: String = ""
}

extension SensitivityAnalysis {
  /// Chooses a level per group for `target` and builds the recipe; plans it (as `convert --recipe` would) for
  /// its real output bytes.
  public func recipe(target: RecipeSelection.Target, checkpoint: Checkpoint) throws -> SensitivityOutcome {
    let options = groups.map { $0.measurements.map { RecipeSelection.Option(byteCount: $0.byteCount, meanKL: $0.meanKL) } }
    let choice = RecipeSelection.choose(options, fixedByteCount: otherByteCount, target: target)
    var schemes: [String: String] = [:]
    var order: [String] = []
    for (group, level) in zip(groups, choice) {
      schemes.merge(group.measurements[level].schemes) { a, _ in a }
      order += group.weights
    }
    let fallback = groups.first?.measurements.first?.level ?? scheme
    let recipe = SensitivityRecipe(
      schemes: schemes, order: order, fallback: fallback, allWeights: allWeights, classifier: checkpoint.classifier)
    let text = JSONWriter(pretty: false).string(recipe.json)
    let parsed = try ConversionRecipe.parse(json: Array(text.utf8), path: "recipe", defaults: ConversionRecipe.SchemeDefaults())
    let plan = try ConversionPlan(checkpoint: checkpoint, target: .mixed(parsed))
    let predicted = zip(groups, choice).reduce(0.0) { $0 + $1.0.measurements[$1.1].meanKL }
    return SensitivityOutcome(
      recipe: recipe, target: target, choice: choice, predictedMeanKL: predicted, plannedByteCount: plan.outputByteCount)
  }
}

extension SensitivityAnalysis {
  /// The JSON report (`smelt.sensitivity/1`, formats/validation-report.md).
  public func json(_ outcome: SensitivityOutcome?) -> JSONValue {
    func number(_ value: Double) -> JSONValue { JSONNumber(value).map { .number($0) } ?? .null }
    func integer(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    func level(_ m: Measurement) -> JSONValue {
      .object(members: [
        ("scheme", .string(m.level)), ("bytes", integer(m.byteCount)), ("kl_mean", number(m.meanKL)),
        ("kl_mean_standard_error", number(m.meanKLStandardError)), ("top1_agreement", number(m.top1Agreement)),
        ("top1_standard_error", number(m.top1StandardError)), ("measured", .bool(m.measured)),
      ])
    }
    let rows: [JSONValue] = bySensitivity.map { group in
      let m = group.measurements[schemeLevel]
      return .object(members: [
        ("group", .string(group.label)), ("role", .string(group.role.rawValue)),
        ("layer", group.layer.map(integer) ?? .null), ("mtp", .bool(group.isMTP)),
        ("weights", .array(group.weights.map { .string($0) })), ("original_bytes", integer(group.originalByteCount)),
        ("bytes", integer(m.byteCount)), ("saved_bytes", integer(group.originalByteCount - m.byteCount)),
        ("kl_mean", number(m.meanKL)), ("kl_mean_standard_error", number(m.meanKLStandardError)),
        ("top1_agreement", number(m.top1Agreement)), ("top1_standard_error", number(m.top1StandardError)),
        ("levels", .array(group.measurements.map(level))),
      ])
    }
    var recipe: JSONValue = .null
    if let outcome {
      let target: JSONValue
      switch outcome.target {
      case .size(let bytes): target = .object(members: [("size", integer(bytes))])
      case .meanKL(let kl): target = .object(members: [("kl_mean", number(kl))])
      }
      recipe = .object(members: [
        ("path", .string(outcome.path)), ("target", target), ("planned_bytes", integer(outcome.plannedByteCount)),
        ("predicted_kl_mean", number(outcome.predictedMeanKL)),
        ("choices", .array(zip(groups, outcome.choice).map { .object(members: [("group", .string($0.label)), ("scheme", .string($0.measurements[$1].level))]) })),
        ("recipe", outcome.recipe.json),
      ])
    }
    return .object(members: [
      ("schema", .string(DocumentSchema.sensitivity)), ("reference", .string(reference)), ("scheme", .string(scheme)),
      ("tokens", .object(members: [("sequences", integer(tokens.count)), ("length", integer(tokens.first?.count ?? 0))])),
      ("plain_bytes", integer(plainByteCount)), ("groups", .array(rows)), ("recipe", recipe),
      ("notes", .array(notes.map { .string($0) })),
    ])
  }
}
