import Foundation
import TensorCore
import Testing

@testable import Quantization

/// RTN and `--search` SNR for every 4-bit format on one matrix.
enum Int4SNRTable {
  struct Row {
    var format: String
    var rtn: Double
    var search: Double
  }

  static func rows(_ values: [Float], rows: Int, columns: Int, dtype: DType, parallel: Bool = true) throws -> [Row] {
    try values.withUnsafeBufferPointer { buffer in
      let w = try WeightMatrix(values: buffer, rowCount: rows, columnCount: columns, dtype: dtype)
      func snr(_ m: DequantizedMatrix) -> Double { Int4TestData.snr(values, m.values) }
      var out: [Row] = []
      for symmetry in Int4Symmetry.allCases {
        let rtn = try Int4GroupQuantizer.quantize(w, groupSize: 128, symmetry: symmetry)
        let search = try Int4GroupQuantizer.quantizeWithClipSearch(
          w, groupSize: 128, symmetry: symmetry, parallel: parallel)
        out.append(
          Row(
            format: "int4 \(symmetry == .symmetric ? "sym" : "asym") g128 (compressed-tensors)",
            rtn: snr(try Int4PackQuantized.dequantize(Int4PackQuantized.tensors(rtn), groupSize: 128)),
            search: snr(try Int4PackQuantized.dequantize(Int4PackQuantized.tensors(search), groupSize: 128))))
      }
      for (bits, g) in [(4, 64), (4, 128), (8, 64)] {
        let rtn = try MLXAffine.quantize(w, groupSize: g, bits: bits)
        let search = try MLXAffine.quantizeWithClipSearch(w, groupSize: g, bits: bits, parallel: parallel)
        out.append(
          Row(
            format: "mlx affine \(bits)-bit g\(g)",
            rtn: snr(try MLXAffine.dequantize(MLXAffine.tensors(rtn), groupSize: g, bits: bits)),
            search: snr(try MLXAffine.dequantize(MLXAffine.tensors(search), groupSize: g, bits: bits))))
      }
      for rule in MXFP4.ScaleRule.allCases {
        let rtn = try MXFP4.quantize(w, rule: rule)
        let search = try MXFP4.quantizeWithClipSearch(w, rule: rule, parallel: parallel)
        out.append(
          Row(
            format: "mxfp4 (\(rule.rawValue))",
            rtn: snr(try MXFP4.dequantizeCompressedTensors(MXFP4.compressedTensorsTensors(rtn))),
            search: snr(try MXFP4.dequantizeCompressedTensors(MXFP4.compressedTensorsTensors(search)))))
      }
      for producer in NVFP4.Producer.allCases {
        let rtn = try NVFP4.quantize(w, producer: producer)
        let search = try NVFP4.quantizeWithClipSearch(w, producer: producer, parallel: parallel)
        out.append(
          Row(
            format: "nvfp4 (\(producer.rawValue))",
            rtn: snr(try NVFP4.dequantize(NVFP4.tensors(rtn), producer: producer, outputDType: dtype)),
            search: snr(try NVFP4.dequantize(NVFP4.tensors(search), producer: producer, outputDType: dtype))))
      }
      return out
    }
  }
}

@Suite("clip search (--search)")
struct ClipSearchTests {
  @Test("search is never worse than round-to-nearest on gaussian + outlier data")
  func searchBeatsRTN() throws {
    let values = Int4TestData.gaussianWithOutliers(rows: 16, columns: 256, seed: 21, dtype: .bfloat16)
    for row in try Int4SNRTable.rows(values, rows: 16, columns: 256, dtype: .bfloat16) {
      #expect(row.search >= row.rtn, "\(row.format): search \(row.search) < rtn \(row.rtn)")
    }
  }

  @Test("parallel search equals the sequential reference")
  func parallelEqualsSequential() throws {
    let values = Int4TestData.gaussianWithOutliers(rows: 12, columns: 128, seed: 8, dtype: .bfloat16)
    try values.withUnsafeBufferPointer { buffer in
      let w = try WeightMatrix(values: buffer, rowCount: 12, columnCount: 128, dtype: .bfloat16)
      for symmetry in Int4Symmetry.allCases {
        #expect(
          try Int4GroupQuantizer.quantizeWithClipSearch(w, groupSize: 64, symmetry: symmetry)
            == Int4GroupQuantizer.quantizeWithClipSearch(w, groupSize: 64, symmetry: symmetry, parallel: false))
      }
      #expect(
        try MLXAffine.quantizeWithClipSearch(w, groupSize: 64, bits: 4)
          == MLXAffine.quantizeWithClipSearch(w, groupSize: 64, bits: 4, parallel: false))
      for rule in MXFP4.ScaleRule.allCases {
        #expect(
          try MXFP4.quantizeWithClipSearch(w, rule: rule)
            == MXFP4.quantizeWithClipSearch(w, rule: rule, parallel: false))
      }
      for producer in NVFP4.Producer.allCases {
        #expect(
          try NVFP4.quantizeWithClipSearch(w, producer: producer)
            == NVFP4.quantizeWithClipSearch(w, producer: producer, parallel: false))
      }
    }
  }

  @Test("search with only ratio 1.0 winning keeps the round-to-nearest bytes on a uniform grid")
  func uniformGridUnchanged() throws {
    // Values already on the int4 grid of their group reconstruct exactly at ratio 1.0, so nothing may change.
    let values = (0..<2 * 128).map { Float(($0 % 16) - 8) * 0.125 }
    try values.withUnsafeBufferPointer { buffer in
      let w = try WeightMatrix(values: buffer, rowCount: 2, columnCount: 128, dtype: .float32)
      #expect(
        try Int4GroupQuantizer.quantizeWithClipSearch(w, groupSize: 128, symmetry: .asymmetric)
          == Int4GroupQuantizer.quantize(w, groupSize: 128, symmetry: .asymmetric))
    }
  }

  /// Prints the report table for a [256, 1024] Gaussian + outlier BF16 matrix. Slow in debug builds, so it
  /// runs only with SMELT_INT4_SNR_TABLE=1.
  @Test(
    "snr table on a [256, 1024] matrix",
    .enabled(if: ProcessInfo.processInfo.environment["SMELT_INT4_SNR_TABLE"] == "1"))
  func snrTable() throws {
    let outliers = Int4TestData.gaussianWithOutliers(rows: 256, columns: 1024, seed: 42, dtype: .bfloat16)
    let plain = Int4TestData.gaussian(rows: 256, columns: 1024, seed: 42).map { GroupQuantRounding.bfloat16($0) }
    for (title, values) in [("gaussian + 1% outliers x12", outliers), ("gaussian", plain)] {
      var lines = ["\(title)", "| format | RTN dB | search dB | gain dB |", "|---|---|---|---|"]
      for row in try Int4SNRTable.rows(values, rows: 256, columns: 1024, dtype: .bfloat16) {
        lines.append(
          "| \(row.format) | \(String(format: "%.2f", row.rtn)) | \(String(format: "%.2f", row.search)) | "
            + "\(String(format: "%+.2f", row.search - row.rtn)) |")
        #expect(row.search >= row.rtn)
      }
      print(lines.joined(separator: "\n"))
    }
  }
}
