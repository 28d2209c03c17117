import TensorCore
import Testing

@testable import Quantization

@Suite("F16 codec")
struct Float16CodecTests {
  @Test("F32 -> F16 (Swift Float16, reference, SIMD) matches numpy; NaNs by sign", arguments: ["special", "random"])
  func narrowMatchesGolden(set: String) throws {
    let v = try CodecGolden.vectors(set)
    let mismatches = try narrowingMismatches(
      v.inputs, expected: v.f16, dtype: .float16, scalar: Float16Conversion.bits(from:),
      reference: Float16Conversion.bitsReference(from:)
    ) { scalar, reference, vector, expected in
      CodecGolden.sameHalf(scalar, expected) && CodecGolden.sameHalf(vector, expected)
        && reference == scalar  // the reference models F16C / compiler-rt NaN quieting exactly
    }
    #expect(mismatches == 0)
  }

  @Test("every F16 pattern widens exactly and narrows back to itself")
  func roundTripAllPatterns() {
    for pattern in 0..<65536 {
      let bits = UInt16(pattern)
      let value = Float16Conversion.float(fromBits: bits)
      let quieted = bits & 0x7FFF > 0x7C00 ? bits | 0x0200 : bits
      #expect(Float16Conversion.bits(from: value) == quieted)
      #expect(Float16Conversion.bitsReference(from: value) == quieted)
    }
  }
}
