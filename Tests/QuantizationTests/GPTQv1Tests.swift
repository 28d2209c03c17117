import TensorCore
import Testing

@testable import Quantization

@Suite("gptq v1 layout")
struct GPTQv1Tests {
  @Test("symmetric codes equal compressed-tensors' f32 codes and qweight is weight_packed transposed")
  func matchesCompressedTensorsGrid() throws {
    let golden = try Int4GoldenFile("ct-int4-sym-g32-f32")
    let packed = try golden.entry("weight_packed")
    // The fixture has 12 rows; GPTQ needs a multiple of 8, so take the first 8.
    let rows = 8
    let words = packed.shape[1]
    let input = Array(try golden.floats("input")[0..<rows * words * 8])
    let result = try input.withUnsafeBufferPointer { buffer in
      try GPTQv1.quantize(
        WeightMatrix(values: buffer, rowCount: rows, columnCount: words * 8, dtype: .float32), groupSize: 32,
        symmetry: .symmetric)
    }
    let tensors = GPTQv1.tensors(result)
    let qweight = try #require(tensors.first { $0.nameSuffix == "qweight" })
    let goldenWords = Array(GroupQuantRounding.decodeWords(packed.bytes)[0..<rows * words])
    let transposed = Packing.transpose(goldenWords, rowCount: rows, columnCount: words)
    // Row 0 group 0 is all zeros: compressed-tensors uses scale eps, GPTQ scale 2/15; both give code 8.
    #expect(GroupQuantRounding.decodeWords(qweight.bytes) == transposed)
    #expect(qweight.shape == [words, rows])
  }

  @Test("symmetric qzeros are 0x77777777 and g_idx is i / g")
  func symmetricZeros() throws {
    let values = Int4TestData.gaussianWithOutliers(rows: 16, columns: 64, seed: 1)
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 16, columnCount: 64, dtype: .float32)
      let tensors = GPTQv1.tensors(try GPTQv1.quantize(weight, groupSize: 32, symmetry: .symmetric))
      let qzeros = try #require(tensors.first { $0.nameSuffix == "qzeros" })
      #expect(qzeros.shape == [2, 2])
      #expect(GroupQuantRounding.decodeWords(qzeros.bytes).allSatisfy { $0 == 0x7777_7777 })
      let gIndex = try #require(tensors.first { $0.nameSuffix == "g_idx" })
      #expect(GroupQuantRounding.decodeWords(gIndex.bytes) == (0..<64).map { UInt32($0 / 32) })
      let scales = try #require(tensors.first { $0.nameSuffix == "scales" })
      #expect(scales.dtype == .float16 && scales.shape == [2, 16])
    }
  }

  @Test("round trip through the v1 reader", arguments: Int4Symmetry.allCases)
  func roundTrip(symmetry: Int4Symmetry) throws {
    let values = Int4TestData.gaussian(rows: 16, columns: 256, seed: 4)
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 16, columnCount: 256, dtype: .float32)
      let result = try GPTQv1.quantize(weight, groupSize: 128, symmetry: symmetry)
      #expect(try result == GPTQv1.quantizeReference(weight, groupSize: 128, symmetry: symmetry))
      let deq = try GPTQv1.dequantize(GPTQv1.tensors(result), groupSize: 128)
      let snr = Int4TestData.snr(values, deq.values)
      #expect(snr > 18.5, "\(symmetry) snr \(snr)")
      // The reader sees exactly the codes and zeros that were written.
      for i in [0, 1, 77, 255] {
        let g = i / 128
        let expected = GroupQuantRounding.float16(result.scales[g] * Float(Int(result.codes[i]) - Int(result.zeros[g])))
        #expect(deq.values[i] == expected)
      }
    }
  }

  @Test("qweight word (r, o) holds input rows 8r...8r+7 of column o, row 8r+k at bits 4k")
  func qweightLayout() throws {
    // One output channel per row; codes chosen so each nibble is its input index mod 16.
    var result = GPTQv1.Result(
      rowCount: 8, columnCount: 16, groupSize: 16, codes: [], scales: [Float](repeating: 1, count: 8),
      zeros: [UInt8](repeating: 8, count: 8))
    result.codes = (0..<8 * 16).map { (i: Int) -> UInt8 in UInt8((i % 16 + i / 16) % 16) }
    let qweight = try #require(GPTQv1.tensors(result).first { $0.nameSuffix == "qweight" })
    let words = GroupQuantRounding.decodeWords(qweight.bytes)
    #expect(qweight.shape == [2, 8])
    for r in 0..<2 {
      for o in 0..<8 {
        for k in 0..<8 {
          let nibble: UInt32 = (words[r * 8 + o] >> UInt32(4 * k)) & 0xF
          let code = UInt32(result.codes[o * 16 + 8 * r + k])
          #expect(nibble == code)
        }
      }
    }
  }
}

@Suite("gptq v1 shape rules")
struct GPTQv1ShapeTests {
  @Test("output channels that are not a multiple of 8 are an error")
  func outputMultiple() throws {
    let values = [Float](repeating: 0.5, count: 12 * 32)
    try values.withUnsafeBufferPointer { buffer in
      let weight = try WeightMatrix(values: buffer, rowCount: 12, columnCount: 32, dtype: .float32)
      #expect(
        throws: FormatQuantizationError.outputChannelsNotMultiple(format: GPTQv1.format, rowCount: 12, multiple: 8)
      ) {
        try GPTQv1.quantize(weight, groupSize: 32, symmetry: .symmetric)
      }
    }
  }
}
