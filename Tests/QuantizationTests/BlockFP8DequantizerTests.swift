import TensorCore
import Testing

@testable import Quantization

@Suite("FP8 block dequantizer")
struct BlockFP8DequantizerTests {
  @Test("fast and reference dequantizers agree bit-exactly for every output dtype",
        arguments: [FP8Scheme.deepSeek, .block(rows: 1, columns: 128), .block(rows: 64, columns: 64), .channel, .tensor])
  func fastMatchesReference(scheme: FP8Scheme) throws {
    var rng = SeededGenerator(seed: 17)
    for (rows, columns) in [(1, 1), (3, 5), (127, 129), (257, 200)] {
      let layout = try FP8BlockLayout(rows: rows, columns: columns, scheme: scheme)
      let q = QuantizedFP8(
        weights: (0..<layout.elementCount).map { _ in UInt8.random(in: 0...255, using: &rng) },  // NaN codes too
        scales: (0..<layout.scaleCount).map { _ in Float.random(in: -1e-3...0.5, using: &rng) })
      for dtype in [DType.float32, .bfloat16, .float16] {
        let fast = try dequantizeFP8(q, layout: layout, to: dtype)
        let reference = try dequantizeFP8(q, layout: layout, to: dtype, reference: true)
        #expect(mismatchCount(fast, reference) == 0, "\(rows)x\(columns) \(scheme) \(dtype)")
      }
    }
  }

  @Test("BF16 output is the F32 product rounded to nearest even (DeepSeek weight_dequant)")
  func bf16Semantics() throws {
    let layout = try FP8BlockLayout(rows: 2, columns: 130, scheme: .deepSeek)
    let codes: [UInt8] = (0..<260).map { UInt8($0 % 256 == 0x7F ? 0 : $0 % 256) }
    let q = QuantizedFP8(weights: codes, scales: [0.000_123_45, 3.3])
    let out = try dequantizeFP8(q, layout: layout, to: .bfloat16)
    for i in 0..<260 {
      let product = Float8E4M3FN.float(fromBits: codes[i]) * q.scales[i % 130 < 128 ? 0 : 1]
      let bits = UInt16(out[2 * i]) | UInt16(out[2 * i + 1]) << 8
      #expect(bits == BFloat16.bitsReference(from: product))
    }
  }

  @Test("a non-finite scale is reported")
  func nonFiniteScale() throws {
    let layout = try FP8BlockLayout(rows: 2, columns: 200, scheme: .deepSeek)
    let q = QuantizedFP8(weights: [UInt8](repeating: 1, count: 400), scales: [1, .infinity])
    #expect(throws: QuantizationError.nonFiniteScale(scaleIndex: 1, value: .infinity)) {
      try dequantizeFP8(q, layout: layout, to: .bfloat16)
    }
    #expect(throws: QuantizationError.self) { try dequantizeFP8(q, layout: layout, to: .int8) }
    let short = QuantizedFP8(weights: [UInt8](repeating: 1, count: 399), scales: [1, 1])
    #expect(throws: QuantizationError.self) { try dequantizeFP8(short, layout: layout, to: .float32) }
  }
}
