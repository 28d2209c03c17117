import Testing
@testable import ReferenceModel

@Suite("MoE routers")
struct RouterTests {
  // 8 experts in 4 groups of 2; keep 2 groups; pick 2 experts.
  func route(_ logits: [Float], bias: [Float] = .init(repeating: 0, count: 8), mask: GroupMask = .negativeInfinity)
    -> RoutingDecision
  {
    routeSigmoidGroupLimited(
      logits: logits, bias: bias, groupCount: 4, selectedGroupCount: 2, expertsPerToken: 2, normalize: true,
      scalingFactor: 2.5, maskedScore: mask)
  }

  @Test("groups score the sum of their top two; the best single expert loses with a weak partner")
  func groupLimitation() {
    // Group 0: experts 0, 1 = (5, -5): top-2 sum low. Groups 1, 2: (2, 2) each. Group 3: (-5, -5).
    let decision = route([5, -5, 2, 2, 1.9, 1.9, -5, -5])
    #expect(Set(decision.expertIDs) == [2, 3])
  }

  @Test("the correction bias picks experts but never weighs them")
  func biasSelectsOnly() {
    let logits: [Float] = [0, 0.1, 0, 0.2, 0, 0, 0, 0]
    let bias: [Float] = [1, 0, 1, 0, 0, 0, 0, 0]
    let decision = route(logits, bias: bias)
    #expect(Set(decision.expertIDs) == [0, 2])
    // Both selected have logit 0: sigmoid 0.5 each, normalized to 0.5, times 2.5.
    #expect(decision.weights == [1.25, 1.25])
  }

  @Test("weights are the normalized unbiased sigmoid scores times routed_scaling_factor")
  func weightsNormalized() {
    let decision = route([3, 1, 0, 0, 0, 0, 0, 0])
    #expect(decision.expertIDs == [0, 1])
    let s0 = sigmoid(3), s1 = sigmoid(1)
    #expect(abs(decision.weights[0] - 2.5 * s0 / (s0 + s1)) < 1e-6)
    #expect(abs(decision.weights.reduce(0, +) - 2.5) < 1e-6)
  }

  @Test("masking dropped groups with 0 differs from −inf only when kept scores are negative")
  func maskValue() {
    let logits: [Float] = [4, 4, 3, 3, -9, -9, -9, -9]
    let positive = [Float](repeating: 1, count: 8)
    #expect(route(logits, bias: positive, mask: .zero) == route(logits, bias: positive, mask: .negativeInfinity))
    // Biases push every score below zero; groups 0 and 1 win, but with a 0 mask the dropped experts (score 0)
    // beat the kept ones (score < 0), as in transformers ≤ 4.5x.
    let negative = [Float](repeating: -3, count: 8)
    #expect(Set(route(logits, bias: negative, mask: .negativeInfinity).expertIDs) == [0, 1])
    #expect(Set(route(logits, bias: negative, mask: .zero).expertIDs).isDisjoint(with: [0, 1, 2, 3]))
  }

  @Test("softmax top-k renormalizes the kept probabilities")
  func softmaxTopK() {
    let decision = routeSoftmaxTopK(logits: [1, 3, 2, 0], expertsPerToken: 2, normalize: true, scalingFactor: 1)
    #expect(decision.expertIDs == [1, 2])
    #expect(abs(decision.weights.reduce(0, +) - 1) < 1e-6)
    let raw = routeSoftmaxTopK(logits: [1, 3, 2, 0], expertsPerToken: 2, normalize: false, scalingFactor: 1)
    #expect(raw.weights.reduce(0, +) < 1)
  }
}
