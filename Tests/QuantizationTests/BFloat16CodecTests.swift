import TensorCore
import Testing

@testable import Quantization

@Suite("BF16 codec")
struct BFloat16CodecTests {
  @Test("F32 -> BF16 (scalar, reference, SIMD) is bit-exact with ml_dtypes", arguments: ["special", "random"])
  func narrowMatchesGolden(set: String) throws {
    let v = try CodecGolden.vectors(set)
    let mismatches = try narrowingMismatches(
      v.inputs, expected: v.bf16, dtype: .bfloat16, scalar: BFloat16.bits(from:),
      reference: BFloat16.bitsReference(from:)
    ) { scalar, reference, vector, expected in scalar == expected && reference == expected && vector == expected }
    #expect(mismatches == 0)
  }

  @Test("every BF16 pattern widens exactly and narrows back to itself (NaNs to the canonical quiet NaN)")
  func roundTripAllPatterns() {
    for pattern in 0..<65536 {
      let bits = UInt16(pattern)
      let value = BFloat16.float(fromBits: bits)
      let expected = value.isNaN ? bits & 0x8000 | 0x7FC0 : bits
      #expect(BFloat16.bits(from: value) == expected)
    }
  }
}
