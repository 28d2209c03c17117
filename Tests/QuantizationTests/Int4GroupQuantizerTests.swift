import TensorCore
import Testing

@testable import Quantization

@Suite("int4 group quantization (compressed-tensors rule)")
struct Int4GroupQuantizerTests {
  static let goldenCases: [(String, Int4Symmetry, Int)] = ["bf16", "f32", "f16"].flatMap { fixture in
    [32, 128].flatMap { g in
      [("ct-int4-sym-g\(g)-\(fixture)", Int4Symmetry.symmetric, g), ("ct-int4-asym-g\(g)-\(fixture)", .asymmetric, g)]
    }
  }

  @Test("pack-quantized bytes equal compressed-tensors 0.20.0's", arguments: goldenCases)
  func matchesCompressedTensors(name: String, symmetry: Int4Symmetry, groupSize: Int) throws {
    let golden = try Int4GoldenFile(name)
    let result = try golden.withInput { try Int4GroupQuantizer.quantize($0, groupSize: groupSize, symmetry: symmetry) }
    let tensors = Int4PackQuantized.tensors(result)
    for tensor in tensors {
      let problem = golden.mismatch(tensor)
      #expect(problem == nil, "\(problem ?? "")")
    }
    #expect(tensors.count == (symmetry == .asymmetric ? 4 : 3))
  }

  @Test("dequantization equals compressed-tensors' decompressor", arguments: goldenCases)
  func dequantMatchesCompressedTensors(name: String, symmetry: Int4Symmetry, groupSize: Int) throws {
    let golden = try Int4GoldenFile(name)
    let tensors = try ["weight_packed", "weight_scale", "weight_shape", "weight_zero_point"].compactMap {
      key -> PackedTensor? in
      guard golden.entries[key] != nil else { return nil }
      let e = try golden.entry(key)
      return PackedTensor(nameSuffix: key, dtype: e.dtype, shape: e.shape, bytes: e.bytes)
    }
    let matrix = try Int4PackQuantized.dequantize(tensors, groupSize: groupSize)
    let problem = try golden.dequantMismatch(matrix)
    #expect(problem == nil, "\(problem ?? "")")
  }

  @Test(
    "f32 weights with a bf16 weight_scale match compressed-tensors",
    arguments: [
      ("ct-int4-sym-g128-f32-bf16scale", Int4Symmetry.symmetric, 128),
      ("ct-int4-asym-g32-f32-bf16scale", .asymmetric, 32),
    ])
  func bfloat16ScalesForF32Weights(name: String, symmetry: Int4Symmetry, groupSize: Int) throws {
    let golden = try Int4GoldenFile(name)
    let result = try golden.withInput {
      try Int4GroupQuantizer.quantize($0, groupSize: groupSize, symmetry: symmetry, scaleDType: .bfloat16)
    }
    let tensors = Int4PackQuantized.tensors(result)
    for tensor in tensors {
      let problem = golden.mismatch(tensor)
      #expect(problem == nil, "\(problem ?? "")")
    }
    let deq = try Int4PackQuantized.dequantize(tensors, groupSize: groupSize)
    let problem = try golden.dequantMismatch(deq)
    #expect(problem == nil, "\(problem ?? "")")
    let reference = try golden.withInput {
      try Int4GroupQuantizer.quantizeReference($0, groupSize: groupSize, symmetry: symmetry, scaleDType: .bfloat16)
    }
    #expect(reference == result)
  }

  @Test("bf16 weights need the bf16 intermediate: f32 arithmetic changes some codes")
  func bfloat16IntermediateMatters() throws {
    let golden = try Int4GoldenFile("ct-int4-asym-g128-bf16")
    let (cpu, triton) = try golden.withInput { w in
      (
        try Int4GroupQuantizer.quantize(w, groupSize: 128, symmetry: .asymmetric, arithmetic: .weightDType),
        try Int4GroupQuantizer.quantize(w, groupSize: 128, symmetry: .asymmetric, arithmetic: .float32)
      )
    }
    let differing = zip(cpu.codes, triton.codes).filter { $0 != $1 }.count
    #expect(differing > 0)
    #expect(cpu.scales == triton.scales)
  }

  @Test(
    "fast path equals the scalar reference", arguments: Int4Symmetry.allCases, [DType.bfloat16, .float32, .float16])
  func fastEqualsReference(symmetry: Int4Symmetry, dtype: DType) throws {
    let values = Int4TestData.gaussianWithOutliers(rows: 9, columns: 256, seed: 7, dtype: dtype)
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 9, columnCount: 256, dtype: dtype)
      for arithmetic in [CompressedTensorsArithmetic.weightDType, .float32] {
        let fast = try Int4GroupQuantizer.quantize(weight, groupSize: 64, symmetry: symmetry, arithmetic: arithmetic)
        let reference = try Int4GroupQuantizer.quantizeReference(
          weight, groupSize: 64, symmetry: symmetry, arithmetic: arithmetic)
        #expect(fast == reference)
      }
    }
  }

  @Test("a partial trailing group is an error")
  func partialGroup() throws {
    let values = [Float](repeating: 0.5, count: 2 * 96)
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 2, columnCount: 96, dtype: .float32)
      #expect(
        throws: FormatQuantizationError.partialGroup(format: Int4GroupQuantizer.format, columnCount: 96, groupSize: 64)
      ) {
        try Int4GroupQuantizer.quantize(weight, groupSize: 64, symmetry: .symmetric)
      }
    }
  }

  @Test("nan and infinity are rejected with their position")
  func nonFinite() throws {
    var values = [Float](repeating: 0.5, count: 2 * 128)
    values[128 + 77] = .infinity
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 2, columnCount: 128, dtype: .float32)
      #expect(throws: FormatQuantizationError.nonFiniteInput(format: Int4GroupQuantizer.format, row: 1, column: 77)) {
        try Int4GroupQuantizer.quantize(weight, groupSize: 128, symmetry: .asymmetric)
      }
    }
  }

  @Test("round trip keeps about 19-21 dB on gaussian data at g128")
  func roundTripSNR() throws {
    let rows = 32
    let cols = 512
    let values = Int4TestData.gaussian(rows: rows, columns: cols, seed: 3)
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: rows, columnCount: cols, dtype: .float32)
      for symmetry in Int4Symmetry.allCases {
        let result = try Int4GroupQuantizer.quantize(weight, groupSize: 128, symmetry: symmetry)
        let deq = try Int4PackQuantized.dequantize(Int4PackQuantized.tensors(result), groupSize: 128)
        let snr = Int4TestData.snr(values, deq.values)
        #expect(snr > 18.5 && snr < 22, "\(symmetry) snr \(snr)")
      }
    }
  }
}
