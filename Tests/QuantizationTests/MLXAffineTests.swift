import TensorCore
import Testing

@testable import Quantization

@Suite("mlx affine quantization")
struct MLXAffineTests {
  static let goldenCases: [(String, Int, Int)] = ["bf16", "f32", "f16"].flatMap { fixture in
    [4, 8].flatMap { bits in [32, 64, 128].map { g in ("mlx-affine-b\(bits)-g\(g)-\(fixture)", bits, g) } }
  }

  @Test("weight, scales and biases equal mlx.core.quantize's", arguments: goldenCases)
  func matchesMLX(name: String, bits: Int, groupSize: Int) throws {
    let golden = try Int4GoldenFile(name)
    let result = try golden.withInput { try MLXAffine.quantize($0, groupSize: groupSize, bits: bits) }
    for tensor in MLXAffine.tensors(result) {
      let problem = golden.mismatch(tensor)
      #expect(problem == nil, "\(problem ?? "")")
    }
  }

  @Test("dequantization equals mlx.core.dequantize", arguments: goldenCases)
  func dequantMatchesMLX(name: String, bits: Int, groupSize: Int) throws {
    let golden = try Int4GoldenFile(name)
    let tensors = try ["weight", "scales", "biases"].map { key in
      let e = try golden.entry(key)
      return PackedTensor(nameSuffix: key, dtype: e.dtype, shape: e.shape, bytes: e.bytes)
    }
    let matrix = try MLXAffine.dequantize(tensors, groupSize: groupSize, bits: bits)
    let problem = try golden.dequantMismatch(matrix)
    #expect(problem == nil, "\(problem ?? "")")
  }

  @Test("fast path equals the scalar reference", arguments: [4, 8], [DType.bfloat16, .float32])
  func fastEqualsReference(bits: Int, dtype: DType) throws {
    let values = Int4TestData.gaussianWithOutliers(rows: 7, columns: 256, seed: 11, dtype: dtype)
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 7, columnCount: 256, dtype: dtype)
      #expect(
        try MLXAffine.quantize(weight, groupSize: 64, bits: bits)
          == MLXAffine.quantizeReference(weight, groupSize: 64, bits: bits))
    }
  }

  @Test("8-bit packs four codes per word, element k at bits 8k")
  func eightBitPacking() {
    let words = Packing.packRowsIntoWords([1, 2, 3, 255], rowCount: 1, columnCount: 4, bits: 8)
    #expect(words == [0xFF03_0201])
  }

  @Test("rejects unsupported bit widths and group sizes")
  func rejectsUnsupported() throws {
    let values = [Float](repeating: 1, count: 64)
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 1, columnCount: 64, dtype: .float32)
      #expect(throws: FormatQuantizationError.self) { try MLXAffine.quantize(weight, groupSize: 64, bits: 3) }
      #expect(throws: FormatQuantizationError.self) { try MLXAffine.quantize(weight, groupSize: 16, bits: 4) }
    }
  }
}
