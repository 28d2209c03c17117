import TensorCore
import Testing

@testable import Quantization

@Suite("nvfp4")
struct NVFP4Tests {
  static let cases: [(String, NVFP4.Producer)] = ["bf16", "f32", "f16"].flatMap { fixture in
    [("modelopt-nvfp4-\(fixture)", NVFP4.Producer.modelOpt), ("ct-nvfp4-\(fixture)", .compressedTensors)]
  }

  @Test("bytes and dequantization equal the producer's own", arguments: cases)
  func matchesProducer(name: String, producer: NVFP4.Producer) throws {
    let golden = try Int4GoldenFile(name)
    let result = try golden.withInput { try NVFP4.quantize($0, producer: producer) }
    let tensors = NVFP4.tensors(result)
    for tensor in tensors {
      let problem = golden.mismatch(tensor)
      #expect(problem == nil, "\(problem ?? "")")
    }
    let goldenTensors = try tensors.map { t in
      let e = try golden.entry(t.nameSuffix)
      return PackedTensor(nameSuffix: t.nameSuffix, dtype: e.dtype, shape: e.shape, bytes: e.bytes)
    }
    let deq = try NVFP4.dequantize(goldenTensors, producer: producer, outputDType: golden.entry("input").dtype)
    let problem = try golden.dequantMismatch(deq)
    #expect(problem == nil, "\(problem ?? "")")
  }

  @Test(
    "fast path equals the scalar reference", arguments: NVFP4.Producer.allCases, [DType.bfloat16, .float32, .float16])
  func fastEqualsReference(producer: NVFP4.Producer, dtype: DType) throws {
    var values = Int4TestData.gaussianWithOutliers(rows: 6, columns: 64, seed: 9, dtype: dtype)
    for i in 0..<16 { values[i] = 0 }
    values[20] = -0.0
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 6, columnCount: 64, dtype: dtype)
      #expect(try NVFP4.quantize(weight, producer: producer) == NVFP4.quantizeReference(weight, producer: producer))
    }
  }

  @Test("an all-zero tensor gives zero codes and finite scales")
  func allZero() throws {
    let values = [Float](repeating: 0, count: 32)
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 1, columnCount: 32, dtype: .bfloat16)
      for producer in NVFP4.Producer.allCases {
        let result = try NVFP4.quantize(weight, producer: producer)
        #expect(result.codes.allSatisfy { $0 == 0 })
        let deq = try NVFP4.dequantize(NVFP4.tensors(result), producer: producer)
        #expect(deq.values.allSatisfy { $0 == 0 })
      }
    }
  }

  @Test("block scales use the shared e4m3 codec, rounding to nearest even")
  func e4m3() {
    #expect(Float8E4M3FN.bitsSaturating(from: 448) == 0x7E)
    #expect(Float8E4M3FN.bitsSaturating(from: 1) == 0x38)
    #expect(Float8E4M3FN.bitsSaturating(from: 0.125) == 0x20)
    #expect(Float8E4M3FN.bitsSaturating(from: 0.001953125) == 0x01)
    #expect(Float8E4M3FN.bitsSaturating(from: 1.0625) == 0x38)  // tie between 1 and 1.125 goes to even
    #expect(Float8E4M3FN.bitsSaturating(from: 1.1875) == 0x3A)  // tie between 1.125 and 1.25 goes to even
    for byte in UInt8(0)..<0x7F {
      #expect(Float8E4M3FN.bitsSaturating(from: Float8E4M3FN.float(fromBits: byte)) == byte)
    }
  }
}
