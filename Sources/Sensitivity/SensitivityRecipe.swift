import Checkpoint
import JSON
import Pipeline

/// The greedy choice behind `validate --sensitivity --write-recipe`: one ladder level per tensor group.
///
/// Every group starts at its cheapest level; then, while the target allows, the one upgrade (a group moved to a
/// costlier level with a lower KL) with the largest KL saved per byte added is taken. The model's KL is predicted
/// as the sum of the groups' KLs, each measured with the rest of the model at the original's precision (small
/// errors add about linearly; `smelt validate --level model` on the converted recipe measures the real one).
public enum RecipeSelection {
  /// One level of one group: its bytes and the KL it costs.
  public struct Option: Sendable, Equatable {
    public var byteCount: Int
    public var meanKL: Double

    public init(byteCount: Int, meanKL: Double) {
      self.byteCount = byteCount
      self.meanKL = meanKL
    }
  }

  /// What the recipe must reach.
  public enum Target: Sendable, Equatable {
    /// Total output bytes at most this (`--target-size`; by default a plain conversion's).
    case size(Int)
    /// Predicted mean KL at most this, in as few bytes as the greedy finds (`--target-kld`).
    case meanKL(Double)
  }

  /// The chosen level of each group (an index into its options); `fixedByteCount` is the bytes of everything
  /// outside the groups. A size no choice reaches gives every group its cheapest level.
  public static func choose(_ groups: [[Option]], fixedByteCount: Int, target: Target) -> [Int] {
    var choice = groups.map { options in
      options.indices.min { a, b in
        (options[a].byteCount, options[a].meanKL) < (options[b].byteCount, options[b].meanKL)
      } ?? 0
    }
    var bytes = fixedByteCount + zip(groups, choice).reduce(0) { $0 + $1.0[$1.1].byteCount }
    var kl = zip(groups, choice).reduce(0.0) { $0 + $1.0[$1.1].meanKL }
    while true {
      if case .meanKL(let limit) = target, kl <= limit { break }
      var best: (group: Int, option: Int, ratio: Double, added: Int)?
      for (g, options) in groups.enumerated() {
        let current = options[choice[g]]
        for (o, option) in options.enumerated() where option.meanKL < current.meanKL && option.byteCount >= current.byteCount {
          let added = option.byteCount - current.byteCount
          if case .size(let limit) = target, bytes + added > limit { continue }
          let ratio = added == 0 ? Double.infinity : (current.meanKL - option.meanKL) / Double(added)
          if let b = best, !(ratio > b.ratio || (ratio == b.ratio && added < b.added)) { continue }
          best = (g, o, ratio, added)
        }
      }
      guard let best else { break }
      bytes += best.added
      kl += groups[best.group][best.option].meanKL - groups[best.group][choice[best.group]].meanKL
      choice[best.group] = best.option
    }
    return choice
  }
}

/// A `--recipe` file (formats/convert-4bit.md) that converts each weight with the scheme chosen for it.
public struct SensitivityRecipe: Sendable {
  public var rules: [(match: String, scheme: String)]
  public var fallback: String

  /// Rules for every weight whose scheme is not `fallback`: one glob per weight module, with a routed expert's
  /// index generalized to `*` where the glob then matches only weights given the same scheme (`allWeights`:
  /// every weight of the plain conversion's plan, so no rule reaches a tensor it should not).
  public init(schemes: [String: String], order: [String], fallback: String, allWeights: [String], classifier: TensorClassifier) {
    self.fallback = fallback
    let modules = Dictionary(allWeights.map { ($0, TensorName.modulePath(of: $0)) }, uniquingKeysWith: { a, _ in a })
    var rules: [(match: String, scheme: String)] = []
    var covered = Set<String>()
    for name in order {
      guard let scheme = schemes[name], scheme != fallback, !covered.contains(name) else { continue }
      let module = modules[name] ?? TensorName.modulePath(of: name)
      var pattern = module
      if let expert = classifier.classify(name).expert {
        var parts = module.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if let at = parts.lastIndex(of: String(expert)) {
          parts[at] = "*"
          pattern = parts.joined(separator: ".")
        }
      }
      var glob = Glob(pattern)
      var matched = allWeights.filter { glob.matches($0) || glob.matches(modules[$0] ?? $0) }
      // A weight in no group has no scheme here: a glob reaching it falls back to the literal module.
      if pattern != module, !matched.allSatisfy({ schemes[$0] == scheme }) {
        glob = Glob(module)
        matched = allWeights.filter { glob.matches($0) || glob.matches(modules[$0] ?? $0) }
      }
      covered.formUnion(matched)
      rules.append((glob.pattern, scheme))
    }
    self.rules = rules
  }

  /// The recipe as `smelt convert --recipe` reads it.
  public var json: JSONValue {
    let items: [JSONValue] = rules.map { rule in
      .object(members: [("match", .string(rule.match)), ("scheme", .string(rule.scheme))])
    }
    return .object(members: [("rules", .array(items)), ("default", .string(fallback))])
  }
}
