import Foundation
import TensorCore
import Testing
@testable import ReferenceModel

@Suite("RoPE and YaRN")
struct RopeTests {
  static let v3Yarn = YarnScaling(
    factor: 40, originalMaxPositionEmbeddings: 4096, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDimensions: 1)
  static let v3Rope = RopeConfiguration(theta: 10000, interleaved: true, yarn: v3Yarn)

  @Test("V3's YaRN correction range is low 10, high 23")
  func v3CorrectionRange() {
    let range = RopeTable.yarnCorrectionRange(
      betaFast: 32, betaSlow: 1, dimension: 64, base: 10000, originalMaxPositionEmbeddings: 4096, truncate: true)
    #expect(range.low == 10 && range.high == 23)
  }

  @Test("V3's inverse frequencies: unchanged up to pair 10, divided by 40 from pair 23, ramped between")
  func v3InverseFrequencies() {
    let table = RopeTable(configuration: Self.v3Rope, dimension: 64, positionCount: 2)
    for i in 0..<32 {
      let plain = 1 / pow(Float(10000), Float(2 * i) / 64)
      let value = table.inverseFrequencies[i]
      if i <= 10 {
        #expect(abs(value - plain) <= 1e-6 * plain, "pair \(i)")
      } else if i >= 23 {
        #expect(abs(value - plain / 40) <= 1e-6 * plain, "pair \(i)")
      } else {
        let ramp = Float(i - 10) / 13
        let expected = plain * (1 - ramp) + plain / 40 * ramp
        #expect(abs(value - expected) <= 1e-6 * plain, "pair \(i)")
      }
    }
    #expect(table.attentionFactor == 1, "mscale / mscale_all_dim = 1 leaves cos/sin unscaled")
  }

  @Test("the attention factor falls back to 0.1·ln(factor) + 1 without mscale")
  func attentionFactorWithoutMscale() {
    let rope = RopeConfiguration(theta: 10000, yarn: YarnScaling(factor: 40, originalMaxPositionEmbeddings: 4096))
    let table = RopeTable(configuration: rope, dimension: 64, positionCount: 1)
    #expect(abs(Double(table.attentionFactor) - (0.1 * log(40.0) + 1)) < 1e-6)
    #expect(abs(table.cosines[0] - table.attentionFactor) < 1e-7, "cos(0) · factor")
  }

  @Test("V3's softmax scale is 192^-0.5 · mscale² ≈ 0.135234; without YaRN 192^-0.5")
  func softmaxScale() {
    #expect(abs(attentionSoftmaxScale(queryKeyHeadDimension: 192, rope: Self.v3Rope) - 0.135234) < 1e-6)
    let plain = RopeConfiguration(theta: 10000)
    #expect(abs(attentionSoftmaxScale(queryKeyHeadDimension: 192, rope: plain) - 0.0721688) < 1e-7)
  }

  @Test("interleaved RoPE rotates (x[2i], x[2i+1]) and writes evens then odds, as transformers does")
  func interleavedLayout() {
    let table = RopeTable(configuration: RopeConfiguration(theta: 10000), dimension: 4, positionCount: 3)
    var atZero: [Float] = [1, 2, 3, 4]
    table.rotate(&atZero, offset: 0, position: 0)
    #expect(atZero == [1, 3, 2, 4])

    // Position 2, pair 0 has angle 2 (inv_freq 1): (1, 2) → (cos2 − 2 sin2, 2 cos2 + sin2).
    var atTwo: [Float] = [1, 2, 0, 0]
    table.rotate(&atTwo, offset: 0, position: 2)
    #expect(abs(atTwo[0] - (cos(2) - 2 * sin(2))) < 1e-6)
    #expect(abs(atTwo[2] - (2 * cos(2) + sin(2))) < 1e-6)
  }

  @Test("rotate-half RoPE pairs x[i] with x[i + d/2] in place")
  func rotateHalfLayout() {
    let table = RopeTable(
      configuration: RopeConfiguration(theta: 10000, interleaved: false), dimension: 4, positionCount: 3)
    var values: [Float] = [1, 0, 2, 0]
    table.rotate(&values, offset: 0, position: 2)
    #expect(abs(values[0] - (cos(2) - 2 * sin(2))) < 1e-6)
    #expect(abs(values[2] - (2 * cos(2) + sin(2))) < 1e-6)
  }

  @Test("q·k after interleaved RoPE depends only on the distance between positions")
  func relativePositions() {
    let table = RopeTable(configuration: Self.v3Rope, dimension: 64, positionCount: 12)
    var generator = SplitMix64(seed: 11)
    let q0 = (0..<64).map { _ in generator.nextUnitFloat() - 0.5 }
    let k0 = (0..<64).map { _ in generator.nextUnitFloat() - 0.5 }
    func score(_ qPosition: Int, _ kPosition: Int) -> Float {
      var q = q0, k = k0
      table.rotate(&q, offset: 0, position: qPosition)
      table.rotate(&k, offset: 0, position: kPosition)
      return zip(q, k).map(*).reduce(0, +)
    }
    #expect(abs(score(5, 2) - score(10, 7)) < 1e-4)
  }
}
