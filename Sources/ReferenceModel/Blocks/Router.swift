/// The experts one token is sent to, and the weight of each.
public struct RoutingDecision: Sendable, Equatable {
  /// Selected expert ids, best selection score first.
  public var expertIDs: [Int]
  /// The weight of each selected expert's output (same order).
  public var weights: [Float]

  public init(expertIDs: [Int], weights: [Float]) {
    self.expertIDs = expertIDs
    self.weights = weights
  }
}

/// The indices of the `k` largest `values`, largest first; ties go to the lower index.
func topKIndices(_ values: [Float], _ k: Int) -> [Int] {
  Array(
    values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(k))
}

/// DeepSeek-V3 `noaux_tc` routing of one token, as transformers' `DeepseekV3MoE.route_tokens_to_experts`:
///
/// 1. `s = sigmoid(logits)`; the selection score is `c = s + bias` (the bias picks experts, never weighs them).
/// 2. Groups of `E / groupCount` experts score the sum of their top-2 `c`; the best `selectedGroupCount` survive.
/// 3. Experts of the other groups score `maskedScore` (0 or −∞); the top `k` by `c` are selected.
/// 4. Weights are the unbiased `s` of the selected experts, divided by their sum + 1e-20 when `normalize`,
///    times `scalingFactor`.
///
/// - logits: `[E]` router logits in F32; bias: `[E]` `e_score_correction_bias` (zeros when absent).
public func routeSigmoidGroupLimited(
  logits: [Float], bias: [Float], groupCount: Int, selectedGroupCount: Int, expertsPerToken k: Int,
  normalize: Bool, scalingFactor: Float, maskedScore: GroupMask
) -> RoutingDecision {
  let E = logits.count
  let groupSize = E / groupCount
  let scores = logits.map(sigmoid)  // s[E]
  let choice = zip(scores, bias).map { $0 + $1 }  // c[E]

  var groupScores = [Float](repeating: 0, count: groupCount)
  for g in 0..<groupCount {
    let top2 = topKIndices(Array(choice[(g * groupSize)..<((g + 1) * groupSize)]), 2)
    groupScores[g] = choice[g * groupSize + top2[0]] + choice[g * groupSize + top2[1]]
  }
  let keptGroups = Set(topKIndices(groupScores, selectedGroupCount))

  let masked = maskedScore == .zero ? Float(0) : -Float.infinity
  var maskedChoice = choice
  for e in 0..<E where !keptGroups.contains(e / groupSize) { maskedChoice[e] = masked }
  let selected = topKIndices(maskedChoice, k)

  var weights = selected.map { scores[$0] }
  if normalize {
    var sum: Float = 0
    for w in weights { sum += w }
    let denominator = sum + 1e-20
    weights = weights.map { $0 / denominator }
  }
  return RoutingDecision(expertIDs: selected, weights: weights.map { $0 * scalingFactor })
}

/// Softmax top-k routing of one token (Qwen-MoE, Mixtral, DeepSeek-V2 `greedy`): `p = softmax(logits)` in F32,
/// the top `k` probabilities, divided by their sum when `normalize`, times `scalingFactor`.
public func routeSoftmaxTopK(
  logits: [Float], expertsPerToken k: Int, normalize: Bool, scalingFactor: Float
) -> RoutingDecision {
  var probabilities = logits
  softmaxInPlace(&probabilities, count: probabilities.count)
  let selected = topKIndices(probabilities, k)
  var weights = selected.map { probabilities[$0] }
  if normalize {
    var sum: Float = 0
    for w in weights { sum += w }
    weights = weights.map { $0 / sum }
  }
  return RoutingDecision(expertIDs: selected, weights: weights.map { $0 * scalingFactor })
}

/// gpt-oss routing of one token (`GptOssTopKRouter`): the `k` largest router logits (bias included), their
/// weights a softmax over those `k` logits alone, in F32.
public func routeSoftmaxOverTopK(logits: [Float], expertsPerToken k: Int) -> RoutingDecision {
  let selected = topKIndices(logits, k)
  var weights = selected.map { logits[$0] }
  softmaxInPlace(&weights, count: weights.count)
  return RoutingDecision(expertIDs: selected, weights: weights)
}
