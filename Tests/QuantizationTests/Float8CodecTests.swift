import TensorCore
import Testing

@testable import Quantization

@Suite("FP8 element codecs")
struct Float8CodecTests {
  @Test("decode tables match ml_dtypes for all 256 patterns of both formats")
  func decodeTables() throws {
    for (table, name) in [(Float8E4M3FN.decodeTable, "e4m3fn"), (Float8E5M2.decodeTable, "e5m2")] {
      let golden = try CodecGolden.floats("\(name)_decode.f32")
      try #require(golden.count == 256 && table.count == 256)
      for code in 0..<256 {
        if golden[code].isNaN {
          #expect(table[code].isNaN && table[code].sign == golden[code].sign, "\(name) 0x\(String(code, radix: 16))")
        } else {
          #expect(table[code].bitPattern == golden[code].bitPattern, "\(name) 0x\(String(code, radix: 16))")
        }
      }
    }
  }

  @Test("the non-saturating reference cast is bit-exact with ml_dtypes", arguments: ["special", "random"])
  func nonSaturatingMatchesGolden(set: String) throws {
    let v = try CodecGolden.vectors(set)
    var mismatches = 0
    for i in v.inputs.indices {
      if Float8E4M3FN.bitsNonSaturating(from: v.inputs[i]) != v.e4m3[i] { mismatches += 1 }
      if Float8E5M2.bitsNonSaturating(from: v.inputs[i]) != v.e5m2[i] { mismatches += 1 }
    }
    #expect(mismatches == 0)
  }

  @Test("saturating encoders (fast, SIMD, reference) match ml_dtypes with overflow clamped to max",
        arguments: ["special", "random"])
  func saturatingMatchesGolden(set: String) throws {
    let v = try CodecGolden.vectors(set)
    try check(v.inputs, golden: v.e4m3, Float8E4M3FN.self)
    try check(v.inputs, golden: v.e5m2, Float8E5M2.self)
  }

  private func check<F: Float8Format>(_ inputs: [Float], golden: [UInt8], _ format: F.Type) throws {
    let expected = inputs.indices.map { CodecGolden.saturated(golden[$0], input: inputs[$0], F.self) }
    let simd = try encoded(inputs, as: F.dtype)
    var mismatches = 0
    for i in inputs.indices {
      let scalar = F.bitsSaturating(from: inputs[i])
      let reference = F.bitsSaturatingReference(from: inputs[i])
      if scalar != expected[i] || reference != expected[i] || simd[i] != expected[i] {
        if mismatches < 5 {
          Issue.record("\(F.self) \(inputs[i]): expected \(expected[i]) scalar \(scalar) ref \(reference) simd \(simd[i])")
        }
        mismatches += 1
      }
    }
    #expect(mismatches == 0)
  }

  @Test("every BF16 and F16 input casts to FP8 exactly as ml_dtypes (non-saturating) and the tables saturate")
  func sixteenBitTables() throws {
    try checkTable(widen: BFloat16.float(fromBits:), golden: "bf16_to_e4m3fn.u8", Float8E4M3FN.fromBFloat16Table, Float8E4M3FN.self)
    try checkTable(widen: BFloat16.float(fromBits:), golden: "bf16_to_e5m2.u8", Float8E5M2.fromBFloat16Table, Float8E5M2.self)
    try checkTable(widen: Float16Conversion.float(fromBits:), golden: "f16_to_e4m3fn.u8", Float8E4M3FN.fromFloat16Table, Float8E4M3FN.self)
    try checkTable(widen: Float16Conversion.float(fromBits:), golden: "f16_to_e5m2.u8", Float8E5M2.fromFloat16Table, Float8E5M2.self)
  }

  private func checkTable<F: Float8Format>(
    widen: (UInt16) -> Float, golden name: String, _ table: [UInt8], _: F.Type
  ) throws {
    let golden = try CodecGolden.bytes(name)
    try #require(golden.count == 65536 && table.count == 65536)
    var mismatches = 0
    for pattern in 0..<65536 {
      let value = widen(UInt16(pattern))
      if F.bitsNonSaturating(from: value) != golden[pattern] { mismatches += 1 }
      if table[pattern] != CodecGolden.saturated(golden[pattern], input: value, F.self) { mismatches += 1 }
    }
    #expect(mismatches == 0, "\(name)")
  }

  @Test("BF16 and F16 buffers convert to FP8 through the tables, unaligned")
  func convertSixteenBitBuffers() throws {
    let patterns = (0..<65536).map { UInt16($0) }
    for source in [DType.bfloat16, .float16] {
      for target in [DType.float8E4M3FN, .float8E5M2] {
        var bytes = [UInt8](repeating: 0, count: 1 + 65536 * 2)
        bytes.withUnsafeMutableBytes { raw in
          for (i, p) in patterns.enumerated() { raw.storeBytes(of: p, toByteOffset: 1 + i * 2, as: UInt16.self) }
        }
        var fast = [UInt8](repeating: 0, count: 65536)
        var reference = [UInt8](repeating: 0, count: 65536)
        try bytes.withUnsafeBytes { raw in
          let src = UnsafeRawBufferPointer(rebasing: raw[1...])
          try fast.withUnsafeMutableBytes { dst in
            try ElementCodec.convert(src, from: source, to: target, into: dst)
          }
          try reference.withUnsafeMutableBytes { dst in
            try ElementCodec.convertReference(src, from: source, to: target, into: dst)
          }
        }
        #expect(fast == reference, "\(source) -> \(target)")
      }
    }
  }

  @Test("ties and overflow follow the documented policy")
  func documentedCases() {
    #expect(Float8E4M3FN.bitsNonSaturating(from: 464) == 0x7E)  // tie rounds to the even mantissa 110
    #expect(Float8E4M3FN.bitsNonSaturating(from: 464.01) == 0x7F)
    #expect(Float8E4M3FN.bitsNonSaturating(from: -500) == 0xFF)
    #expect(Float8E4M3FN.bitsSaturating(from: -500) == 0xFE)
    #expect(Float8E4M3FN.bitsSaturating(from: .infinity) == 0x7E)
    #expect(Float8E4M3FN.bitsSaturating(from: -.nan) == 0xFF)
    #expect(Float8E4M3FN.bitsSaturating(from: 0x1p-10) == 0x00)  // tie between 0 and 2^-9
    #expect(Float8E4M3FN.bitsSaturating(from: 0x1.8p-10) == 0x01)
    #expect(Float8E5M2.bitsNonSaturating(from: 61439) == 0x7B)
    #expect(Float8E5M2.bitsNonSaturating(from: 61440) == 0x7C)
    #expect(Float8E5M2.bitsSaturating(from: -.infinity) == 0xFB)
    #expect(Float8E5M2.bitsSaturating(from: .nan) == 0x7E)
  }
}
