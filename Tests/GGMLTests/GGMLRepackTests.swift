import TensorCore
import Testing

@testable import GGML

@Suite("ggml lossless repacks")
struct GGMLRepackTests {
  /// E2M1 values by code (OCP MX): what every MXFP4 reader multiplies by `2^(e − 127)`.
  static let e2m1: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

  @Test("int4 g32 → Q4_0: ggml's dequantize_row_q4_0 gives (q − 8) · scale exactly where the scale is an F16 value")
  func q4_0() {
    let rows = 3, columns = 96
    var random = SplitMix64(seed: 7)
    let codes = (0..<(rows * columns)).map { _ in UInt8(random.next() % 16) }
    // BF16 scales (8 significant bits) across F16's range, plus three it cannot hold: too small, too large, and
    // a subnormal F16 that loses a bit.
    var scales = (0..<(rows * columns / 32)).map { i -> Float in
      let bf16 = UInt32(0x3A00 + (random.next() % 0x0A00)) << 16  // 2^-11 ... 2^8
      return Float(bitPattern: bf16) * (i % 2 == 0 ? 1 : -1)
    }
    scales[2] = 1e-9
    scales[4] = 1e6
    scales[6] = Float(bitPattern: 0x3381_0000)  // 2^-24 · (1 + 2^-7): finer than F16 subnormals
    let repacked = GGMLRepack.q4_0(offsetCodes: codes, scales: scales, rows: rows, columns: columns)
    #expect(repacked.inexactBlocks == [2, 4, 6])
    #expect(repacked.bytes.count == rows * columns / 32 * 18)
    var decoded = [Float](repeating: 0, count: rows * columns)
    repacked.bytes.withUnsafeBytes { LegacyQuants.dequantizeQ4_0($0.baseAddress!, count: rows * columns, into: &decoded) }
    for i in 0..<(rows * columns) where !repacked.inexactBlocks.contains(i / 32) {
      #expect(decoded[i].bitPattern == (Float(Int(codes[i]) - 8) * scales[i / 32]).bitPattern)
    }
  }

  @Test("MXFP4 → ggml MXFP4: the nibbles move from adjacent pairs to split halves and every value is exact")
  func mxfp4() {
    let rows = 2, columns = 64
    let codes = (0..<(rows * columns)).map { UInt8(($0 * 7 + $0 / 16) % 16) }
    let scales: [UInt8] = [0, 1, 127, 254]
    let repacked = GGMLRepack.mxfp4(codes: codes, e8m0Scales: scales, rows: rows, columns: columns)
    #expect(repacked.inexactBlocks.isEmpty)
    var decoded = [Float](repeating: 0, count: rows * columns)
    repacked.bytes.withUnsafeBytes { NonLinearQuants.dequantizeMXFP4($0.baseAddress!, count: rows * columns, into: &decoded) }
    for i in 0..<(rows * columns) {
      let expected = Self.e2m1[Int(codes[i])] * Float(sign: .plus, exponent: Int(scales[i / 32]) - 127, significand: 1)
      // ggml's table has no negative zero: −0 decodes as +0.
      #expect(decoded[i] == expected && (expected != 0 || decoded[i].sign == .plus))
    }
    #expect(GGMLRepack.mxfp4(codes: codes, e8m0Scales: [0xFF, 1, 2, 3], rows: rows, columns: columns).inexactBlocks == [0])
  }
}
