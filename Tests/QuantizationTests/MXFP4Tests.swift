import TensorCore
import Testing

@testable import Quantization

@Suite("mxfp4")
struct MXFP4Tests {
  static func load(_ golden: Int4GoldenFile, _ keys: [String]) throws -> [PackedTensor] {
    try keys.map { key in
      let e = try golden.entry(key)
      return PackedTensor(nameSuffix: key, dtype: e.dtype, shape: e.shape, bytes: e.bytes)
    }
  }

  @Test("compressed-tensors mxfp4-pack-quantized bytes and dequantization match", arguments: ["bf16", "f32", "f16"])
  func compressedTensors(fixture: String) throws {
    let golden = try Int4GoldenFile("ct-mxfp4-\(fixture)")
    let result = try golden.withInput { try MXFP4.quantize($0, rule: .compressedTensors) }
    for tensor in MXFP4.compressedTensorsTensors(result) {
      let problem = golden.mismatch(tensor)
      #expect(problem == nil, "\(problem ?? "")")
    }
    let deq = try MXFP4.dequantizeCompressedTensors(Self.load(golden, ["weight_packed", "weight_scale"]))
    let problem = try golden.dequantMismatch(deq)
    #expect(problem == nil, "\(problem ?? "")")
  }

  @Test(
    "gpt-oss blocks/scales match triton_kernels' rule and transformers' dequantization",
    arguments: ["bf16", "f32", "f16"])
  func gptOss(fixture: String) throws {
    let golden = try Int4GoldenFile("gptoss-mxfp4-\(fixture)")
    let result = try golden.withInput { try MXFP4.quantize($0, rule: .gptOss) }
    for tensor in MXFP4.gptOssTensors(result) {
      let problem = golden.mismatch(tensor)
      #expect(problem == nil, "\(problem ?? "")")
    }
    let deq = try MXFP4.dequantizeGptOss(Self.load(golden, ["blocks", "scales"]))
    let problem = try golden.dequantMismatch(deq)
    #expect(problem == nil, "\(problem ?? "")")
  }

  @Test(
    "fast path equals the scalar reference", arguments: MXFP4.ScaleRule.allCases, [DType.bfloat16, .float32, .float16])
  func fastEqualsReference(rule: MXFP4.ScaleRule, dtype: DType) throws {
    var values = Int4TestData.gaussianWithOutliers(rows: 5, columns: 128, seed: 5, dtype: dtype)
    for i in 0..<32 { values[i] = 0 }
    values[40] = -0.0
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 5, columnCount: 128, dtype: dtype)
      #expect(try MXFP4.quantize(weight, rule: rule) == MXFP4.quantizeReference(weight, rule: rule))
    }
  }

  @Test("e2m1 rounds to nearest even and saturates at 6")
  func e2m1Codec() {
    let cases: [(Float, UInt8)] = [
      (0, 0), (0.25, 0), (0.26, 1), (0.75, 2), (1.25, 2), (1.3, 3), (1.75, 4), (2.5, 4), (2.6, 5), (3.5, 6),
      (5, 6), (5.01, 7), (100, 7), (-0.1, 8), (-6, 15), (-3.5, 14),
    ]
    for (x, code) in cases { #expect(FP4E2M1.encodeSignIfNegative(x) == code, "\(x)") }
    #expect(FP4E2M1.encodeSignIfNegative(-0.0) == 0)
    #expect(FP4E2M1.encodeSignBit(-0.0) == 8)
    for code in UInt8(0)..<16 where code != 8 { #expect(FP4E2M1.encodeSignBit(FP4E2M1.decode(code)) == code) }
  }

  @Test("e8m0 decodes 2^(byte-127), 0xff is nan")
  func e8m0() {
    #expect(E8M0.decode(127) == 1)
    #expect(E8M0.decode(0) == Float(sign: .plus, exponent: -127, significand: 1))
    #expect(E8M0.decode(254) == Float(sign: .plus, exponent: 127, significand: 1))
    #expect(E8M0.decode(255).isNaN)
  }

  @Test("nibble pairs put the even element in the low nibble")
  func nibblePairs() {
    #expect(Packing.packNibblePairs([1, 2, 15, 0]) == [0x21, 0x0F])
    #expect(Packing.unpackNibblePairs([0x21, 0x0F]) == [1, 2, 15, 0])
  }

  @Test("a partial trailing block is an error")
  func partialBlock() throws {
    let values = [Float](repeating: 0.5, count: 48)
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 1, columnCount: 48, dtype: .float32)
      #expect(throws: FormatQuantizationError.partialGroup(format: MXFP4.format, columnCount: 48, groupSize: 32)) {
        try MXFP4.quantize(weight, rule: .gptOss)
      }
    }
  }
}
