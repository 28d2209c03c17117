import TensorCore
import Testing

@testable import Quantization

@Suite("BF16 codec")
struct BFloat16CodecTests {
  @Test("F32 -> BF16 (scalar, reference, SIMD) is bit-exact with ml_dtypes", arguments: ["special", "random"])
  func narrowMatchesGolden(set: String) throws {
    let v = try CodecGolden.vectors(set)
    let simd = try encoded(v.inputs, as: .bfloat16)
    var mismatches = 0
    for i in v.inputs.indices {
      let vector = UInt16(simd[2 * i]) | UInt16(simd[2 * i + 1]) << 8
      let scalar = BFloat16.bits(from: v.inputs[i])
      let reference = BFloat16.bitsReference(from: v.inputs[i])
      if scalar != v.bf16[i] || reference != v.bf16[i] || vector != v.bf16[i] {
        if mismatches < 5 { Issue.record("\(v.inputs[i]): \(v.bf16[i]) vs \(scalar) \(reference) \(vector)") }
        mismatches += 1
      }
    }
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
