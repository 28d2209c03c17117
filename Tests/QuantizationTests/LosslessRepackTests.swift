import TensorCore
import Testing

@testable import Quantization

@Suite("lossless repacks")
struct LosslessRepackTests {
  /// Random MXFP4 codes (every code, both zeros included) with block exponents drawn from `exponents`.
  static func weight(rows: Int, columns: Int, exponents: ClosedRange<Int>, seed: UInt64) -> MXFP4.Result {
    var random = SplitMix64(seed: seed)
    let codes = (0..<(rows * columns)).map { _ in UInt8(random.next() % 16) }
    let span = UInt64(exponents.count)
    let scales = (0..<(rows * columns / MXFP4.blockSize)).map { _ in UInt8(exponents.lowerBound + Int(random.next() % span)) }
    return MXFP4.Result(rowCount: rows, columnCount: columns, codes: codes, scales: scales)
  }

  /// The FP8 side read back as DeepSeek's `weight_dequant` does: `f32(q) · s` per block.
  static func decode(_ fp8: MXFP4.FP8Repack) throws -> [Float] {
    let layout = try FP8BlockLayout(
      rows: fp8.rowCount, columns: fp8.columnCount, scheme: .block(rows: fp8.blockRows, columns: fp8.blockColumns))
    var out = [Float](repeating: 0, count: fp8.rowCount * fp8.columnCount)
    try fp8.codes.withUnsafeBytes { codes in
      try fp8.scales.withUnsafeBufferPointer { scales in
        try out.withUnsafeMutableBytes { try BlockFP8.dequantize(codes, scales: scales, layout: layout, to: .float32, into: $0) }
      }
    }
    return out
  }

  static func mismatches(_ a: [Float], _ b: [Float]) -> Int {
    zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
  }

  @Test("MXFP4 → FP8 128×128 ue8m0 is bit-exact when each block's exponents span at most E4M3's range (ragged edges too)")
  func fp8Exact() throws {
    // 130 × 160: a ragged last block in both directions; exponents 120...128 span 9 binades (+ E2M1's 3).
    let weight = Self.weight(rows: 130, columns: 160, exponents: 120...128, seed: 1)
    let fp8 = MXFP4.repackToFP8Blocks(weight)
    #expect(fp8.inexactBlocks.isEmpty)
    #expect(fp8.roundedElementCount == 0)
    #expect(fp8.scaleShape == [2, 2])
    #expect(fp8.scaleExponents.allSatisfy { (-127...127).contains($0) })
    #expect(Self.mismatches(MXFP4.exactValues(weight), try Self.decode(fp8)) == 0)
    // The source's own BF16 dequantization is the same values (two significant bits fit BF16).
    #expect(Self.mismatches(MXFP4.dequantize(weight).values, try Self.decode(fp8)) == 0)
  }

  @Test("every E2M1 code at every exponent offset E4M3 can hold lands exactly; negative zero stays negative zero")
  func fp8EveryCode() throws {
    // One row of 32-blocks whose scales step down by one: 15 scales and E2M1's 4 binades span E4M3's 18
    // (2^-9 ... 2^8); a 16th scale would not fit.
    let columns = 32 * 15
    var codes: [UInt8] = []
    for _ in 0..<15 { codes += (0..<32).map { UInt8($0 % 16) } }
    var scales = (0..<15).map { UInt8(140 - $0) }
    let weight = MXFP4.Result(rowCount: 1, columnCount: columns, codes: codes, scales: scales)
    let fp8 = MXFP4.repackToFP8Blocks(weight, blockRows: 1, blockColumns: columns)
    #expect(fp8.inexactBlocks.isEmpty)
    #expect(Self.mismatches(MXFP4.exactValues(weight), try Self.decode(fp8)) == 0)
    #expect(fp8.codes[8] == 0x80)
    scales[14] -= 1
    let wider = MXFP4.repackToFP8Blocks(
      MXFP4.Result(rowCount: 1, columnCount: columns, codes: codes, scales: scales), blockRows: 1, blockColumns: columns)
    #expect(wider.inexactBlocks == [0])
    #expect(wider.roundedElementCount == 8)  // 0.5 and 1.5 (both signs, twice) of the widest block
  }

  @Test("blocks whose exponent spread exceeds E4M3 are reported, and only their smallest values are rounded")
  func fp8Inexact() throws {
    var weight = Self.weight(rows: 256, columns: 256, exponents: 125...127, seed: 2)
    // Block (1, 0): one 32-block 30 binades below the rest.
    weight.scales[(128 + 5) * 8 + 1] = 97
    let fp8 = MXFP4.repackToFP8Blocks(weight)
    #expect(fp8.inexactBlocks == [2])
    #expect(fp8.roundedElementCount > 0)
    let exact = MXFP4.exactValues(weight)
    let decoded = try Self.decode(fp8)
    for r in 0..<256 {
      for c in 0..<256 where !(r == 128 + 5 && (32..<64).contains(c)) {
        #expect(exact[r * 256 + c].bitPattern == decoded[r * 256 + c].bitPattern)
      }
    }
  }

  @Test("symmetric int4 groups come out as stored codes and exact scales; an asymmetric weight is refused")
  func int4Groups() throws {
    let values = (0..<(4 * 64)).map { Float(($0 * 37) % 23) - 11 }
    let result = try values.withUnsafeBufferPointer { buffer in
      try Int4GroupQuantizer.quantize(
        WeightMatrix(values: buffer, rowCount: 4, columnCount: 64, dtype: .bfloat16), groupSize: 32, symmetry: .symmetric,
        scaleDType: .bfloat16)
    }
    let tensors = Int4PackQuantized.tensors(result)
    let groups = try Int4PackQuantized.symmetricGroups(tensors, groupSize: 32)
    #expect(groups.rowCount == 4 && groups.columnCount == 64 && groups.scales.count == 8)
    let reference = try Int4PackQuantized.dequantize(tensors, groupSize: 32).values
    for i in 0..<(4 * 64) {
      let level = Float(Int(groups.offsetCodes[i]) - 8)
      #expect(BFloat16.float(fromBits: BFloat16.bits(from: level * groups.scales[i / 32])) == reference[i])
    }
    let asymmetric = try values.withUnsafeBufferPointer { buffer in
      try Int4GroupQuantizer.quantize(
        WeightMatrix(values: buffer, rowCount: 4, columnCount: 64, dtype: .bfloat16), groupSize: 32, symmetry: .asymmetric,
        scaleDType: .bfloat16)
    }
    #expect(throws: FormatQuantizationError.self) {
      try Int4PackQuantized.symmetricGroups(Int4PackQuantized.tensors(asymmetric), groupSize: 32)
    }
  }
}
