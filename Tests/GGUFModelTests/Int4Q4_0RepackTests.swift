import Checkpoint
import GGML
import Quantization
import TestSupport
import Testing
import WeightFormats

/// Kimi K2-Thinking / K2.5's native int4 experts (compressed-tensors `pack-quantized`, symmetric, group 32, BF16
/// scales) into GGUF Q4_0 without re-rounding: `Int4PackQuantized.symmetricGroups` then `GGMLRepack.q4_0`.
@Suite("int4 g32 → Q4_0 repack on the Kimi sample")
struct Int4Q4_0RepackTests {
  @Test("every int4 expert of tiny-kimi-k2.5 repacks to Q4_0 exactly: ggml's dequantization is (q − 8) · scale, and its BF16 rounding is compressed-tensors' decompression")
  func kimiExperts() throws {
    let checkpoint = try Checkpoint.open(TestPaths.sample("tiny-kimi-k2.5"))
    let groups = WeightGrouping.groups(of: checkpoint.entries).filter { $0.storage == .int4PackQuantized }
    #expect(groups.count > 0)
    let kernels = try #require(GGMLKernels.forType(.q4_0))
    for group in groups {
      let geometry = try WeightDecoding.geometry(of: group, in: checkpoint)
      #expect(geometry.groupSize == 32)
      let int4 = try Int4PackQuantized.symmetricGroups(WeightDecoding.packedTensors(of: group, in: checkpoint), groupSize: 32)
      let q4 = GGMLRepack.q4_0(offsetCodes: int4.offsetCodes, scales: int4.scales, rows: int4.rowCount, columns: int4.columnCount)
      #expect(q4.inexactBlocks.isEmpty, "\(group.modulePath)")
      var ggml = [Float](repeating: 0, count: int4.rowCount * int4.columnCount)
      try q4.bytes.withUnsafeBytes { bytes in
        try ggml.withUnsafeMutableBufferPointer { try kernels.dequantize(bytes, rowLength: int4.columnCount, into: $0) }
      }
      let compressedTensors = try WeightDecoding.decode(group: group, in: checkpoint).values
      for i in ggml.indices {
        let exact = Float(Int(int4.offsetCodes[i]) - 8) * int4.scales[i / 32]
        #expect(ggml[i].bitPattern == exact.bitPattern)
        #expect(BFloat16.float(fromBits: BFloat16.bits(from: ggml[i])).bitPattern == compressedTensors[i].bitPattern)
      }
    }
  }

  @Test("gpt-oss's and DeepSeek-V4's MXFP4 / FP4 experts repack to ggml MXFP4 exactly (ggml has no −0: it reads +0)", arguments: ["tiny-gpt-oss", "tiny-deepseek-v4"])
  func mxfp4Experts(_ sample: String) throws {
    let checkpoint = try Checkpoint.open(TestPaths.sample(sample))
    let groups = WeightGrouping.groups(of: checkpoint.entries).filter { $0.format.storesMXFP4Codes }
    #expect(groups.count > 0)
    let kernels = try #require(GGMLKernels.forType(.mxfp4))
    for group in groups {
      let geometry = try WeightDecoding.geometry(of: group, in: checkpoint)
      let codes = try #require(
        try group.format.microscaledCodes(WeightDecoding.packedTensors(of: group, in: checkpoint), geometry: geometry, module: group.modulePath))
      let blocks = GGMLRepack.mxfp4(codes: codes.codes, e8m0Scales: codes.scales, rows: codes.rowCount, columns: codes.columnCount)
      #expect(blocks.inexactBlocks.isEmpty)
      var ggml = [Float](repeating: 0, count: codes.rowCount * codes.columnCount)
      try blocks.bytes.withUnsafeBytes { bytes in
        try ggml.withUnsafeMutableBufferPointer { try kernels.dequantize(bytes, rowLength: codes.columnCount, into: $0) }
      }
      let source = try WeightDecoding.decode(group: group, in: checkpoint).values
      #expect(zip(ggml, source).allSatisfy { $0.bitPattern == ($1 == 0 ? 0 : $1.bitPattern) }, "\(group.modulePath)")
    }
  }
}
