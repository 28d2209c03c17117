import TensorCore
import Testing

@testable import Quantization

@Suite("FP8 quantization with given scales")
struct BlockFP8GivenScalesTests {
  func quantize(_ bytes: [UInt8], dtype: DType, layout: FP8BlockLayout, scales: [Float], reference: Bool) throws -> [UInt8] {
    var weights = [UInt8](repeating: 0xAA, count: layout.elementCount)
    let shifted = [0x55] + bytes
    try shifted.withUnsafeBytes { raw in
      let src = UnsafeRawBufferPointer(rebasing: raw[1...])
      try scales.withUnsafeBufferPointer { s in
        try weights.withUnsafeMutableBytes { w in
          if reference {
            try BlockFP8.quantizeReference(src, dtype: dtype, layout: layout, givenScales: s, weights: w)
          } else {
            try BlockFP8.quantize(src, dtype: dtype, layout: layout, givenScales: s, weights: w)
          }
        }
      }
    }
    return weights
  }

  @Test("any F32 scales: dequantize to F32 then re-quantize onto the same scales reproduces every code",
        arguments: [FP8Scheme.deepSeek, .channel, .block(rows: 1, columns: 128)])
  func roundTripOntoGivenScales(scheme: FP8Scheme) throws {
    var rng = SeededGenerator(seed: 77)
    let layout = try FP8BlockLayout(rows: 160, columns: 300, scheme: scheme)
    let q = QuantizedFP8(
      weights: (0..<layout.elementCount).map { _ in
        var code = UInt8.random(in: 0...255, using: &rng)
        while code & 0x7F == 0x7F { code = UInt8.random(in: 0...255, using: &rng) }
        return code
      },
      // Arbitrary scales, most of which are not fixed points of amax/448.
      scales: (0..<layout.scaleCount).map { _ in
        Float(sign: .plus, exponent: Int.random(in: -20...4, using: &rng), significand: Float.random(in: 1..<2, using: &rng))
      })
    let f32 = try dequantizeFP8(q, layout: layout, to: .float32)
    let fast = try quantize(f32, dtype: .float32, layout: layout, scales: q.scales, reference: false)
    let reference = try quantize(f32, dtype: .float32, layout: layout, scales: q.scales, reference: true)
    #expect(mismatchCount(fast, q.weights) == 0)
    #expect(mismatchCount(reference, q.weights) == 0)
  }

  @Test("fast and reference agree on BF16 input, including saturation above 448·scale")
  func fastMatchesReference() throws {
    let layout = try FP8BlockLayout(rows: 130, columns: 129, scheme: .deepSeek)
    let bytes = try encoded(syntheticWeights(rows: 130, columns: 129, seed: 4), as: .bfloat16)
    let scales: [Float] = [1e-4, 3e-4, -2e-4, 1]
    let fast = try quantize(bytes, dtype: .bfloat16, layout: layout, scales: scales, reference: false)
    #expect(mismatchCount(fast, try quantize(bytes, dtype: .bfloat16, layout: layout, scales: scales, reference: true)) == 0)
    #expect(fast.contains(0x7E) && fast.contains(0xFE))
  }

  @Test("zero and non-finite given scales are errors")
  func badScales() throws {
    let layout = try FP8BlockLayout(rows: 2, columns: 2, scheme: .tensor)
    let bytes = try encoded([1, 2, 3, 4], as: .float32)
    #expect(throws: QuantizationError.zeroScale(scaleIndex: 0)) {
      try quantize(bytes, dtype: .float32, layout: layout, scales: [0], reference: false)
    }
    #expect(throws: QuantizationError.self) {
      try quantize(bytes, dtype: .float32, layout: layout, scales: [.nan], reference: true)
    }
  }
}
