import TensorCore
import Testing

@testable import Quantization

@Suite("FP8 block quantizer")
struct BlockFP8QuantizerTests {
  // Debug builds run the scalar reference slowly: small odd shapes for every scheme and rule, one large one.
  static let shapes: [(Int, Int)] = [(1, 1), (3, 5), (1, 300), (300, 1), (129, 127)]
  static let schemes: [FP8Scheme] = [.deepSeek, .block(rows: 1, columns: 128), .block(rows: 3, columns: 7), .channel, .tensor]

  @Test("fast and reference quantizers agree bit-exactly on odd shapes and every scheme", arguments: schemes)
  func fastMatchesReference(scheme: FP8Scheme) throws {
    for (index, (rows, columns)) in Self.shapes.enumerated() {
      let layout = try FP8BlockLayout(rows: rows, columns: columns, scheme: scheme)
      let bytes = try encoded(syntheticWeights(rows: rows, columns: columns, seed: UInt64(index)), as: .bfloat16)
      for rule in [FP8ScaleRule.deepSeek, FP8ScaleRule(format: .ue8m0), FP8ScaleRule(storageDType: .bfloat16)] {
        let fast = try quantizeFP8(bytes, dtype: .bfloat16, layout: layout, rule: rule)
        let reference = try quantizeFP8(bytes, dtype: .bfloat16, layout: layout, rule: rule, reference: true)
        #expect(fast == reference, "\(rows)x\(columns) \(scheme) \(rule)")
      }
    }
    let layout = try FP8BlockLayout(rows: 257, columns: 200, scheme: scheme)
    let bytes = try encoded(syntheticWeights(rows: 257, columns: 200, seed: 9), as: .bfloat16)
    let fast = try quantizeFP8(bytes, dtype: .bfloat16, layout: layout)
    #expect(fast == (try quantizeFP8(bytes, dtype: .bfloat16, layout: layout, reference: true)), "257x200 \(scheme)")
  }

  @Test("F32 and F16 sources quantize like the reference", arguments: [DType.float32, .float16])
  func otherSourceDTypes(dtype: DType) throws {
    let layout = try FP8BlockLayout(rows: 129, columns: 257, scheme: .deepSeek)
    let bytes = try encoded(syntheticWeights(rows: 129, columns: 257, seed: 7), as: dtype)
    let fast = try quantizeFP8(bytes, dtype: dtype, layout: layout)
    #expect(fast == (try quantizeFP8(bytes, dtype: dtype, layout: layout, reference: true)))
  }

  @Test("BF16 -> FP8 block -> F32 keeps 30-33 dB SNR on Gaussian weights")
  func gaussianSNR() throws {
    var rng = SeededGenerator(seed: 42)
    let (rows, columns) = (256, 512)
    let original = try decoded(
      encoded((0..<rows * columns).map { _ in rng.gaussian() * 0.02 }, as: .bfloat16), as: .bfloat16,
      count: rows * columns)
    let layout = try FP8BlockLayout(rows: rows, columns: columns, scheme: .deepSeek)
    for rule in [FP8ScaleRule.deepSeek, FP8ScaleRule(format: .ue8m0)] {
      let q = try quantizeFP8(try encoded(original, as: .bfloat16), dtype: .bfloat16, layout: layout, rule: rule)
      let restored = try decoded(try dequantizeFP8(q, layout: layout, to: .float32), as: .float32, count: original.count)
      let metrics = ErrorStatistics(reference: original, candidate: restored)
      #expect(metrics.snrDecibels >= 30 && metrics.snrDecibels <= 33, "\(rule.format): \(metrics)")
      #expect(metrics.cosineSimilarity > 0.999)
    }
  }

  @Test("quantize(dequantize(q, s)) reproduces q and s exactly when every block reaches ±448",
        arguments: [(160, 256), (300, 200), (128, 128), (5, 300)])
  func roundTripReproducesCodes(rows: Int, columns: Int) throws {
    var rng = SeededGenerator(seed: UInt64(rows * 1000 + columns))
    let layout = try FP8BlockLayout(rows: rows, columns: columns, scheme: .deepSeek)
    for trial in 0..<3 {
      var q = QuantizedFP8(
        weights: (0..<layout.elementCount).map { _ in
          var code = UInt8.random(in: 0...255, using: &rng)
          while code & 0x7F == 0x7F { code = UInt8.random(in: 0...255, using: &rng) }
          return code
        },
        // Scales as a quantizer makes them (amax / 448 in F32). Arbitrary F32 scales are not all fixed
        // points: RN(RN(448·s) / 448) != s for about 10 % of random s, so they could not round-trip.
        scales: (0..<layout.scaleCount).map { _ in
          let amax = Float(
            sign: .plus, exponent: Int.random(in: -12...12, using: &rng),
            significand: Float.random(in: 1..<2, using: &rng))
          return amax / 448
        })
      // Put ±448 somewhere inside every (cropped) block.
      for scaleRow in 0..<layout.scaleRows {
        for scaleColumn in 0..<layout.scaleColumns {
          let row = min(rows - 1, scaleRow * 128 + Int.random(in: 0..<128, using: &rng))
          let column = min(columns - 1, scaleColumn * 128 + Int.random(in: 0..<128, using: &rng))
          q.weights[row * columns + column] = Bool.random(using: &rng) ? 0x7E : 0xFE
        }
      }
      let f32 = try dequantizeFP8(q, layout: layout, to: .float32)
      let again = try quantizeFP8(f32, dtype: .float32, layout: layout)
      let codeMismatches = zip(again.weights, q.weights).filter { $0 != $1 }.count
      let scaleMismatches = zip(again.scaleBits, q.scaleBits).filter { $0 != $1 }.count
      #expect(codeMismatches == 0 && scaleMismatches == 0, "trial \(trial)")
      #expect(again == (try quantizeFP8(f32, dtype: .float32, layout: layout, reference: true)))
    }
  }

  @Test("edge blocks take amax over their real elements only", arguments: [(160, 256), (300, 200)])
  func edgeBlocks(rows: Int, columns: Int) throws {
    let values = syntheticWeights(rows: rows, columns: columns, seed: 99)
    let layout = try FP8BlockLayout(rows: rows, columns: columns, scheme: .deepSeek)
    #expect(layout.scaleShape == [(rows + 127) / 128, (columns + 127) / 128])
    let q = try quantizeFP8(try encoded(values, as: .float32), dtype: .float32, layout: layout)
    for scaleRow in 0..<layout.scaleRows {
      for scaleColumn in 0..<layout.scaleColumns {
        var amax: Float = 0
        for row in scaleRow * 128..<min(rows, scaleRow * 128 + 128) {
          for column in scaleColumn * 128..<min(columns, scaleColumn * 128 + 128) {
            amax = max(amax, abs(values[row * columns + column]))
          }
        }
        #expect(q.scales[scaleRow * layout.scaleColumns + scaleColumn] == (amax == 0 ? 1 : amax / 448))
      }
    }
  }

  @Test("ue8m0 scales are powers of two, at least the plain scale, and the codes use them")
  func ue8m0Scales() throws {
    let layout = try FP8BlockLayout(rows: 200, columns: 257, scheme: .deepSeek)
    let bytes = try encoded(syntheticWeights(rows: 200, columns: 257, seed: 3), as: .bfloat16)
    let plain = try quantizeFP8(bytes, dtype: .bfloat16, layout: layout)
    let pow2 = try quantizeFP8(bytes, dtype: .bfloat16, layout: layout, rule: FP8ScaleRule(format: .ue8m0))
    for (p, s) in zip(plain.scales, pow2.scales) {
      #expect(s.significand == 1 && s >= p && s < 2 * p)
    }
    #expect(mismatchCount(pow2.weights, plain.weights) > 0)
    #expect(FP8ScaleRule(format: .ue8m0).scale(forAbsoluteMaximum: 448) == 1)
    #expect(FP8ScaleRule(format: .ue8m0).scale(forAbsoluteMaximum: 448.5) == 2)
  }

  @Test("an all-zero block gets scale 1 and zero codes")
  func zeroBlock() throws {
    let layout = try FP8BlockLayout(rows: 130, columns: 256, scheme: .deepSeek)
    var values = [Float](repeating: 0, count: 130 * 256)
    values[129 * 256 + 200] = 3  // only block (1, 1) is non-zero
    for reference in [false, true] {
      let q = try quantizeFP8(try encoded(values, as: .float32), dtype: .float32, layout: layout, reference: reference)
      #expect(q.scales == [1, 1, 1, 3 / 448])
      #expect(q.weights.filter { $0 != 0 }.count == 1 && q.weights[129 * 256 + 200] == 0x7E)
    }
  }

  @Test("NaN and infinite inputs are reported with their position", arguments: [Float.nan, -.infinity])
  func nonFiniteInput(bad: Float) throws {
    let layout = try FP8BlockLayout(rows: 20, columns: 150, scheme: .deepSeek)
    var values = syntheticWeights(rows: 20, columns: 150, seed: 5)
    values[9 * 150 + 140] = bad
    values[17 * 150 + 3] = .infinity
    let bytes = try encoded(values, as: .float32)
    for reference in [false, true] {
      do {
        _ = try quantizeFP8(bytes, dtype: .float32, layout: layout, reference: reference)
        Issue.record("no error")
      } catch let error as QuantizationError {
        guard case .nonFiniteInput(let index, let row, let column, let value) = error else {
          Issue.record("wrong error \(error)")
          continue
        }
        #expect(index == 9 * 150 + 140 && row == 9 && column == 140)
        #expect(value.isNaN == bad.isNaN && (bad.isNaN || value == bad))
      }
    }
  }

  @Test("layouts give DeepSeek's scale shapes and reject empty or bad blocks")
  func layouts() throws {
    #expect(try FP8BlockLayout(rows: 576, columns: 7168, scheme: .deepSeek).scaleShape == [5, 56])
    #expect(try FP8BlockLayout(rows: 24576, columns: 1536, scheme: .deepSeek).scaleShape == [192, 12])
    #expect(try FP8BlockLayout(rows: 7, columns: 300, scheme: .block(rows: 1, columns: 128)).scaleShape == [7, 3])
    #expect(try FP8BlockLayout(rows: 7, columns: 300, scheme: .channel).scaleShape == [7, 1])
    #expect(try FP8BlockLayout(rows: 7, columns: 300, scheme: .tensor).scaleShape == [1])
    #expect(throws: QuantizationError.self) { try FP8BlockLayout(rows: 0, columns: 3, scheme: .deepSeek) }
    #expect(throws: QuantizationError.self) { try FP8BlockLayout(rows: 3, columns: 3, scheme: .block(rows: 0, columns: 1)) }
    #expect(throws: QuantizationError.self) { try FP8BlockLayout(rows: Int.max, columns: 3, scheme: .tensor) }
  }

  @Test("wrong buffer sizes and dtypes are errors")
  func badBuffers() throws {
    let layout = try FP8BlockLayout(rows: 4, columns: 4, scheme: .deepSeek)
    #expect(throws: QuantizationError.self) { try quantizeFP8([UInt8](repeating: 0, count: 31), dtype: .bfloat16, layout: layout) }
    #expect(throws: QuantizationError.self) { try quantizeFP8([UInt8](repeating: 0, count: 16), dtype: .uint8, layout: layout) }
    #expect(throws: QuantizationError.self) {
      try quantizeFP8([UInt8](repeating: 0, count: 32), dtype: .bfloat16, layout: layout, rule: FP8ScaleRule(storageDType: .int8))
    }
  }

  @Test("BF16-stored scales (compressed-tensors) are BF16 values and the codes divide by them")
  func bf16ScaleStorage() throws {
    let layout = try FP8BlockLayout(rows: 64, columns: 300, scheme: .channel)
    let bytes = try encoded(syntheticWeights(rows: 64, columns: 300, seed: 11), as: .bfloat16)
    let q = try quantizeFP8(bytes, dtype: .bfloat16, layout: layout, rule: FP8ScaleRule(storageDType: .bfloat16))
    for scale in q.scales { #expect(BFloat16.float(fromBits: BFloat16.bits(from: scale)) == scale) }
    let f32 = try dequantizeFP8(q, layout: layout, to: .float32)
    let plain = try quantizeFP8(f32, dtype: .float32, layout: layout, rule: FP8ScaleRule(storageDType: .bfloat16))
    #expect(plain.scales == q.scales)
  }
}
