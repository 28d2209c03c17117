import Foundation
import TensorCore
import Testing
@testable import ReferenceModel

@Suite("blocks")
struct BlockTests {
  @Test("RMSNorm divides by the root mean square, then scales by the weight")
  func rmsNormHandExample() {
    let out = rmsNorm([3, 4, 0, 0], weight: [1, 2], rowCount: 2, width: 2, epsilon: 0.5)
    let rms = Float(12.5 + 0.5).squareRoot()
    #expect(abs(out[0] - 3 / rms) < 1e-6)
    #expect(abs(out[1] - 8 / rms) < 1e-6)
    #expect(out[2] == 0 && out[3] == 0)
  }

  @Test("softmax sums to one and keeps order")
  func softmaxSumsToOne() {
    var values: [Float] = [1, 2, 3, 1000]
    softmaxInPlace(&values, count: 3)
    #expect(abs(values[0] + values[1] + values[2] - 1) < 1e-6)
    #expect(values[0] < values[1] && values[1] < values[2])
    #expect(values[3] == 1000)
  }

  @Test("SwiGLU computes down(silu(gate·x) ⊙ up·x)")
  func swiGLUHandExample() {
    // D = 2, I = 1: gate = x0, up = x1, down = [1, 2]ᵀ.
    let weights = SwiGLUWeights(
      gate: LinearWeight(float32: [1, 0], outputCount: 1, inputCount: 2),
      up: LinearWeight(float32: [0, 1], outputCount: 1, inputCount: 2),
      down: LinearWeight(float32: [1, 2], outputCount: 2, inputCount: 1), intermediateSize: 1)
    let out = swiGLU([2, 3], weights: weights, rowCount: 1, hiddenSize: 2)
    let expected = 2 / (1 + exp(Float(-2))) * 3
    #expect(abs(out[0] - expected) < 1e-5 && abs(out[1] - 2 * expected) < 1e-5)
  }

  @Test("attention is causal: a query never sees later keys")
  func causalAttentionIgnoresTheFuture() {
    var generator = SplitMix64(seed: 3)
    let T = 5, H = 2, dk = 4, dv = 3
    let q = (0..<(T * H * dk)).map { _ in generator.nextUnitFloat() }
    var k = (0..<(T * H * dk)).map { _ in generator.nextUnitFloat() }
    var v = (0..<(T * H * dv)).map { _ in generator.nextUnitFloat() }
    let before = causalAttention(
      queries: q, keys: k, values: v, batchSize: 1, sequenceLength: T, headCount: H, keyDimension: dk,
      valueDimension: dv, scale: 0.5)
    for i in ((T - 1) * H * dk)..<(T * H * dk) { k[i] += 10 }
    for i in ((T - 1) * H * dv)..<(T * H * dv) { v[i] -= 10 }
    let after = causalAttention(
      queries: q, keys: k, values: v, batchSize: 1, sequenceLength: T, headCount: H, keyDimension: dk,
      valueDimension: dv, scale: 0.5)
    let earlier = (T - 1) * H * dv
    #expect(Array(before[..<earlier]) == Array(after[..<earlier]))
    #expect(Array(before[earlier...]) != Array(after[earlier...]))
    // The first query attends only to itself: its output is its own value.
    for h in 0..<H {
      for i in 0..<dv { #expect(abs(before[h * dv + i] - v[h * dv + i]) < 1e-6) }
    }
  }
}
