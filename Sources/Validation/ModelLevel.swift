import CMath
import ReferenceModel
import TensorCore

extension Validator {
  /// Model level: the two forward passes on the same tokens, compared position by position.
  func compareModels(tokens: [[Int]], reference: ForwardResult, candidate: ForwardResult) -> ModelComparison {
    let stats = LogitStatistics(reference: reference.logits, candidate: candidate.logits)
    var hiddenStates: [HiddenStateComparison] = []
    for (layer, (r, c)) in zip(reference.layerOutputs, candidate.layerOutputs).enumerated() {
      hiddenStates.append(
        HiddenStateComparison(layer: layer, metrics: ComparisonMetrics(reference: r.values, candidate: c.values)))
    }
    var routing: [RoutingAgreement] = []
    for (r, c) in zip(reference.routing, candidate.routing) where r.layer == c.layer {
      let unchanged = zip(r.decisions, c.decisions).filter { Set($0.expertIDs) == Set($1.expertIDs) }.count
      routing.append(
        RoutingAgreement(layer: r.layer, tokenCount: r.decisions.count, unchangedCount: unchanged, source: "model"))
    }
    var comparison = ModelComparison(
      tokens: tokens, meanKL: stats.meanKL, p99KL: stats.p99KL, maxKL: stats.maxKL,
      top1Agreements: stats.top1Agreements, positionCount: stats.positionCount,
      maxAbsoluteLogitDifference: stats.maxAbsoluteDifference, nonFiniteLogitCount: stats.nonFiniteCount,
      logits: ComparisonMetrics(reference: reference.logits.values, candidate: candidate.logits.values),
      hiddenStates: hiddenStates, routing: routing, failures: [])
    comparison.meanKLStandardError = stats.meanKLStandardError
    comparison.top1StandardError = stats.top1StandardError
    comparison.referencePerplexity = LogitStatistics.perplexity(logits: reference.logits, tokens: tokens)
    comparison.candidatePerplexity = LogitStatistics.perplexity(logits: candidate.logits, tokens: tokens)
    comparison.failures = comparison.violations(of: options.thresholds)
    return comparison
  }
}

extension ModelComparison {
  /// The model-level thresholds this comparison breaks (non-finite logits always fail).
  public func violations(of thresholds: ValidationThresholds) -> [String] {
    var failures: [String] = []
    if nonFiniteLogitCount > 0 {
      failures.append("the candidate's logits have \(nonFiniteLogitCount) NaN or infinite value(s)")
    }
    if let maximum = thresholds.maximumMeanKL, !(meanKL <= maximum) {
      failures.append("mean KL \(ReportFormat.number(meanKL)) > \(ReportFormat.number(maximum))")
    }
    if let minimum = thresholds.minimumTop1Agreement, !(top1Agreement >= minimum) {
      failures.append(
        "top-1 agreement \(ReportFormat.percent(top1Agreement)) (\(top1Agreements)/\(positionCount)) < \(ReportFormat.percent(minimum))")
    }
    return failures
  }
}

/// Next-token distribution statistics of two `[B, T, V]` logit tensors.
public struct LogitStatistics: Sendable {
  /// `KL(p ‖ q)` per position, `p = softmax(reference)`, `q = softmax(candidate)`, in nats (Double math).
  public var perPositionKL: [Double]
  public var meanKL: Double
  /// 99th percentile (nearest rank) and maximum of `perPositionKL`.
  public var p99KL: Double
  public var maxKL: Double
  public var top1Agreements: Int
  public var positionCount: Int
  public var maxAbsoluteDifference: Double
  /// Non-finite candidate logits.
  public var nonFiniteCount: Int

  public var top1Fraction: Double { positionCount == 0 ? 1 : Double(top1Agreements) / Double(positionCount) }

  /// Compares `reference` and `candidate` (same shape, last dimension the vocabulary).
  public init(reference: FloatTensor, candidate: FloatTensor) {
    precondition(reference.shape == candidate.shape, "logits of different shapes")
    let V = reference.shape.last ?? 1
    let positions = V == 0 ? 0 : reference.values.count / V
    var kl: [Double] = []
    kl.reserveCapacity(positions)
    var agreements = 0, nonFinite = 0
    var maxDifference = 0.0
    for n in 0..<positions {
      let r = reference.values[(n * V)..<((n + 1) * V)]
      let c = candidate.values[(n * V)..<((n + 1) * V)]
      let bad = c.filter { !$0.isFinite }.count
      if bad > 0 {
        nonFinite += bad
        kl.append(.infinity)
        continue
      }
      for (a, b) in zip(r, c) { maxDifference = max(maxDifference, abs(Double(a) - Double(b))) }
      let logP = Self.logSoftmax(r), logQ = Self.logSoftmax(c)
      var divergence = 0.0
      for v in 0..<V { divergence += CMath.exp(logP[v]) * (logP[v] - logQ[v]) }
      kl.append(max(0, divergence))
      if Self.argmax(r) == Self.argmax(c) { agreements += 1 }
    }
    perPositionKL = kl
    meanKL = kl.isEmpty ? 0 : kl.reduce(0, +) / Double(kl.count)
    let sorted = kl.sorted()
    p99KL = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((0.99 * Double(sorted.count)).rounded(.up)) - 1)]
    maxKL = sorted.last ?? 0
    top1Agreements = agreements
    positionCount = positions
    maxAbsoluteDifference = maxDifference
    nonFiniteCount = nonFinite
  }

  /// `exp(mean over sequences b and positions t < T − 1 of −log softmax(logits[b, t])[tokens[b][t + 1]])`:
  /// the perplexity of `[B, T, V]` logits on their own next tokens; `nil` when `T < 2` or the shapes disagree.
  public static func perplexity(logits: FloatTensor, tokens: [[Int]]) -> Double? {
    let V = logits.shape.last ?? 0
    let T = tokens.first?.count ?? 0
    guard V > 0, T > 1, logits.values.count == tokens.count * T * V else { return nil }
    var negativeLogLikelihood = 0.0
    for (b, sequence) in tokens.enumerated() {
      for t in 0..<(T - 1) {
        let start = (b * T + t) * V
        let row = logits.values[start..<(start + V)]
        let next = sequence[t + 1]
        guard next < V else { return nil }
        let m = Double(row.max() ?? 0)
        var sum = 0.0
        for v in row { sum += CMath.exp(Double(v) - m) }
        negativeLogLikelihood += m + CMath.log(sum) - Double(row[start + next])
      }
    }
    return CMath.exp(negativeLogLikelihood / Double(tokens.count * (T - 1)))
  }

  static func logSoftmax(_ x: ArraySlice<Float>) -> [Double] {
    let m = Double(x.max() ?? 0)
    var sum = 0.0
    for v in x { sum += CMath.exp(Double(v) - m) }
    let logSum = m + CMath.log(sum)
    return x.map { Double($0) - logSum }
  }

  /// The first index of the largest value.
  static func argmax(_ x: ArraySlice<Float>) -> Int {
    var best = x.startIndex
    for i in x.indices where x[i] > x[best] { best = i }
    return best - x.startIndex
  }
}
