import TensorCore

/// A MoE feed-forward block: route every token, run each selected expert on its tokens, add the shared experts.
///
/// - x: `[N, D]`, the output of `post_attention_layernorm`. Returns `[N, D]` and each token's routing.
/// - routerWeight: `gate.weight[E, D]`; bias: `e_score_correction_bias[E]` (zeros when absent), which only biases
///   the selection; logitBias: a router bias added to the logits themselves (gpt-oss's `router.bias`).
/// - expert: loads routed expert `e`'s weights; called once per expert that some token selects, in increasing
///   order, on a background thread one expert ahead of its use (its page faults and copies overlap the previous
///   expert's matmuls), and dropped after use, so at most two routed experts are in memory at a time.
/// - shared: the shared experts as one SwiGLU of intermediate size `moe_intermediate_size · n_shared_experts`.
///
/// Like transformers, the weighted expert outputs are summed into an F32 buffer expert by expert (lowest id
/// first), then the shared experts' output is added.
func mixtureOfExperts(
  _ x: [Float], routerWeight: [Float], bias: [Float], configuration: MixtureOfExpertsConfiguration,
  rowCount N: Int, hiddenSize D: Int, logitBias: [Float]? = nil, expert: @escaping (Int) throws -> SwiGLUWeights,
  shared: SwiGLUWeights?
) throws -> (output: [Float], routing: [RoutingDecision]) {
  let E = configuration.routedExpertCount
  var logits = matmul(x, routerWeight, rowCount: N, inputCount: D, outputCount: E)  // [N, E], F32
  if let logitBias {
    for n in 0..<N {
      for e in 0..<E { logits[n * E + e] += logitBias[e] }
    }
  }

  var routing: [RoutingDecision] = []
  routing.reserveCapacity(N)
  for n in 0..<N {
    let tokenLogits = Array(logits[(n * E)..<((n + 1) * E)])
    switch configuration.router {
    case .sigmoidGroupLimited(let groupCount, let selectedGroupCount, let maskedScore):
      routing.append(
        routeSigmoidGroupLimited(
          logits: tokenLogits, bias: bias, groupCount: groupCount, selectedGroupCount: selectedGroupCount,
          expertsPerToken: configuration.expertsPerToken, normalize: configuration.normalizeTopK,
          scalingFactor: configuration.routedScalingFactor, maskedScore: maskedScore))
    case .softmaxTopK:
      routing.append(
        routeSoftmaxTopK(
          logits: tokenLogits, expertsPerToken: configuration.expertsPerToken,
          normalize: configuration.normalizeTopK, scalingFactor: configuration.routedScalingFactor))
    case .softmaxOverTopK:
      routing.append(routeSoftmaxOverTopK(logits: tokenLogits, expertsPerToken: configuration.expertsPerToken))
    }
  }

  // Tokens (and their weights) per expert: assignments[e] = [(row, weight)].
  var assignments = [[(row: Int, weight: Float)]](repeating: [], count: E)
  for (n, decision) in routing.enumerated() {
    for (e, w) in zip(decision.expertIDs, decision.weights) { assignments[e].append((n, w)) }
  }

  var output = [Float](repeating: 0, count: N * D)
  let selected = (0..<E).filter { !assignments[$0].isEmpty }
  var next = selected.first.map { first in Prefetch { try expert(first) } }
  for (position, e) in selected.enumerated() {
    let rows = assignments[e]
    guard let weights = try next?.value() else { break }
    next = position + 1 < selected.count ? Prefetch { [following = selected[position + 1]] in try expert(following) } : nil
    var gathered = [Float](repeating: 0, count: rows.count * D)  // [Ne, D]
    for (j, assignment) in rows.enumerated() {
      for d in 0..<D { gathered[j * D + d] = x[assignment.row * D + d] }
    }
    let expertOutput = swiGLU(gathered, weights: weights, rowCount: rows.count, hiddenSize: D)  // [Ne, D]
    for (j, assignment) in rows.enumerated() {
      for d in 0..<D { output[assignment.row * D + d] += expertOutput[j * D + d] * assignment.weight }
    }
  }

  if let shared {
    output = add(output, swiGLU(x, weights: shared, rowCount: N, hiddenSize: D))
  }
  return (output, routing)
}
