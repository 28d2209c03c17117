import Checkpoint
import ReferenceModel
import Testing
import TensorCore
import WeightFormats
import WeightSources

@Suite("checkpoint weight provider")
struct CheckpointWeightProviderTests {
  @Test("the FP8 sample dequantized by the provider reproduces transformers' golden logits")
  func fp8SampleMatchesGolden() throws {
    let golden = try CheckpointWeightProvider(path: Fixtures.goldenDirectory + "/tiny-deepseek-v3-fp8-dequant.golden.safetensors")
    let ids = try golden.weight("input_ids")
    let length = ids.shape[1]
    let tokens = (0..<ids.shape[0]).map { b in (0..<length).map { Int(ids.values[b * length + $0]) } }

    let weights = try CheckpointWeightProvider(path: Fixtures.fp8Sample)
    #expect(weights.storage(of: "model.layers.1.self_attn.kv_a_proj_with_mqa.weight") == .fp8Block)
    let model = try ReferenceModel(configuration: try weights.modelConfiguration(), weights: weights)
    let logits = try model.forward(tokens, options: ForwardOptions(recordRouting: false)).logits

    let expected = try golden.weight("logits")
    #expect(logits.shape == expected.shape)
    let maxLogit = expected.values.map(abs).max() ?? 0
    let maxError = zip(logits.values, expected.values).map { abs($0 - $1) }.max() ?? .infinity
    #expect(maxError <= 1e-4 * maxLogit, "max |Δlogit| \(maxError) vs max |logit| \(maxLogit)")
  }

  @Test(
    "linear weights stay FP8-block / BF16 encoded, and the matmul dequantizing them per tile equals the F32 product bit for bit",
    arguments: [
      (Fixtures.fp8Sample, "model.layers.1.self_attn.kv_a_proj_with_mqa.weight"),
      (Fixtures.fp8Sample, "model.layers.3.mlp.experts.7.down_proj.weight"),
      (Fixtures.bf16Sample, "model.layers.1.self_attn.q_b_proj.weight"),
    ])
  func encodedLinearWeightsMatchF32(path: String, name: String) throws {
    let weights = try CheckpointWeightProvider(path: path)
    let encoded = try weights.linearWeight(name)
    let whole = try weights.weight(name)
    switch encoded.storage {
    case .float8Block: #expect(weights.storage(of: name) == .fp8Block)
    case .bfloat16: #expect(weights.storedDType(of: name) == .bfloat16)
    case .float32: Issue.record("\(name) came back as F32")
    }
    #expect(encoded.dequantized() == whole.values)
    var generator = SplitMix64(seed: 5)
    let rows = 7
    let x = (0..<(rows * encoded.inputCount)).map { _ in generator.nextUnitFloat() - 0.5 }
    #expect(matmul(x, encoded, rowCount: rows) == matmul(x, try LinearWeight(whole), rowCount: rows))
  }

  @Test("row slices of an FP8 block weight equal the rows of the whole dequantized weight (edge blocks cropped)")
  func fp8RowsMatchWhole() throws {
    let weights = try CheckpointWeightProvider(path: Fixtures.fp8Sample)
    // [160, 256] with a [2, 2] scale grid in the other file: the last row block has 32 rows.
    let name = "model.layers.1.self_attn.kv_a_proj_with_mqa.weight"
    let whole = try weights.weight(name)
    #expect(whole.shape == [160, 256])
    for rows in [0..<1, 100..<150, 127..<129, 130..<160] {
      let slice = try weights.weightRows(name, rows: rows)
      #expect(slice.shape == [rows.count, 256])
      #expect(slice.values == Array(whole.values[(rows.lowerBound * 256)..<(rows.upperBound * 256)]), "rows \(rows)")
    }
    #expect(throws: WeightSourceError.self) { try weights.weightRows(name, rows: 150..<161) }
  }

  @Test("plain BF16 rows are read without the rest of the tensor and match the full decode")
  func plainRows() throws {
    let weights = try CheckpointWeightProvider(path: Fixtures.bf16Sample)
    let embedding = try weights.weight(WeightNames.embedding)
    let row = try weights.weightRows(WeightNames.embedding, rows: 7..<9)
    #expect(row.values == Array(embedding.values[(7 * 256)..<(9 * 256)]))
    #expect(weights.contains("model.layers.1.mlp.gate.e_score_correction_bias"))
    #expect(!weights.contains("model.layers.1.mlp.gate.weight_scale_inv"))
    #expect(throws: WeightSourceError.self) { try weights.weight("model.layers.9.mlp.gate.weight") }
  }

  @Test("compressed-tensors FP8 with channel, tensor and configured block scales")
  func compressedTensorsScales() throws {
    // E4M3 codes: 0x38 = 1, 0x40 = 2, 0xB8 = -1, 0x30 = 0.5.
    let codes: [UInt8] = [0x38, 0x40, 0xB8, 0x30, 0x38, 0x38, 0x40, 0x40, 0x30, 0x30, 0xB8, 0x38]  // [3, 4]
    let decoded: [Float] = [1, 2, -1, 0.5, 1, 1, 2, 2, 0.5, 0.5, -1, 1]
    let channel: [Float] = [0.5, 2, 4]
    let blocks: [Float] = [1, 10, 100, 1000]  // 2x2 blocks over [3, 4] → grid [2, 2]
    let config = """
      {"quantization_config": {"quant_method": "compressed-tensors", "format": "float-quantized",
        "config_groups": {"group_0": {"weights": {"strategy": "block", "block_structure": [2, 2]}}}}}
      """
    let directory = try Fixtures.writeCheckpoint(
      [
        ("c.weight", .float8E4M3FN, [3, 4], codes), ("c.weight_scale", .float32, [3, 1], Fixtures.bytes(channel)),
        ("t.weight", .float8E4M3FN, [3, 4], codes), ("t.weight_scale", .float32, [1], Fixtures.bytes([0.25])),
        ("b.weight", .float8E4M3FN, [3, 4], codes), ("b.weight_scale", .float32, [2, 2], Fixtures.bytes(blocks)),
      ], config: config)
    let weights = try CheckpointWeightProvider(path: directory)
    #expect(weights.storage(of: "c.weight") == .fp8CompressedTensors)
    #expect(try weights.weight("c.weight").values == decoded.enumerated().map { $1 * channel[$0 / 4] })
    #expect(try weights.weight("t.weight").values == decoded.map { $0 * 0.25 })
    let expectedBlocks = decoded.enumerated().map { i, v in v * blocks[(i / 4) / 2 * 2 + (i % 4) / 2] }
    #expect(try weights.weight("b.weight").values == expectedBlocks)
    #expect(try weights.weightRows("b.weight", rows: 1..<3).values == Array(expectedBlocks[4...]))
  }

  @Test("a NaN scale and a scale grid that does not fit are errors naming the tensor")
  func badScales() throws {
    let codes = [UInt8](repeating: 0x38, count: 12)
    let directory = try Fixtures.writeCheckpoint([
      ("n.weight", .float8E4M3FN, [3, 4], codes), ("n.weight_scale_inv", .float32, [1, 1], Fixtures.bytes([.nan])),
      ("g.weight", .float8E4M3FN, [3, 4], codes), ("g.weight_scale_inv", .float32, [5, 7], Fixtures.bytes([Float](repeating: 1, count: 35))),
    ])
    let weights = try CheckpointWeightProvider(path: directory)
    #expect(throws: WeightSourceError.nonFiniteScale(tensor: "n.weight_scale_inv", index: 0)) { try weights.weight("n.weight") }
    #expect(throws: WeightSourceError.self) { try weights.weight("g.weight") }
  }
}
