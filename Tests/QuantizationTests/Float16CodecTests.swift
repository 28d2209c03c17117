import TensorCore
import Testing

@testable import Quantization

@Suite("F16 codec")
struct Float16CodecTests {
  @Test("F32 -> F16 (Swift Float16, reference, SIMD) matches numpy; NaNs by sign", arguments: ["special", "random"])
  func narrowMatchesGolden(set: String) throws {
    let v = try CodecGolden.vectors(set)
    let simd = try encoded(v.inputs, as: .float16)
    var mismatches = 0
    for i in v.inputs.indices {
      let vector = UInt16(simd[2 * i]) | UInt16(simd[2 * i + 1]) << 8
      let scalar = Float16Conversion.bits(from: v.inputs[i])
      let reference = Float16Conversion.bitsReference(from: v.inputs[i])
      let ok = CodecGolden.sameHalf(scalar, v.f16[i]) && CodecGolden.sameHalf(vector, v.f16[i])
        && reference == scalar  // the reference models F16C / compiler-rt NaN quieting exactly
      if !ok {
        if mismatches < 5 { Issue.record("\(v.inputs[i]): \(v.f16[i]) vs \(scalar) \(reference) \(vector)") }
        mismatches += 1
      }
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
