import Checkpoint
import GGML
import GGUF
import JSON
import TestSupport
import Testing
import WeightFormats

@testable import GGUFModel

@Suite("deepseek4 mapping")
struct DeepSeek4MappingTests {
  /// The V4 sample as the GGUF conversion reads it: its config and every weight's logical shape (an FP4 expert's
  /// `[out, in]`, not its packed bytes; `.scale` companions inside their weight).
  static func sample() throws -> (config: ModelConfig, shapes: [String: [Int]]) {
    let checkpoint = try Checkpoint.open(TestPaths.sample("tiny-deepseek-v4"))
    var shapes: [String: [Int]] = [:]
    for group in WeightGrouping.groups(of: checkpoint.entries) {
      shapes[WeightDecoding.logicalName(of: group)] = try WeightDecoding.geometry(of: group, in: checkpoint).shape
    }
    return (try #require(checkpoint.config), shapes)
  }

  /// `config` with `field` set to the JSON `value` in its raw document (the V4-only fields the mapping reads from
  /// there).
  static func with(_ config: ModelConfig, _ field: String, _ value: String) throws -> ModelConfig {
    var raw = config.raw
    raw[field] = try JSONParser.parse(value)
    return try ModelConfig(object: raw, path: "config.json")
  }

  @Test("hyperparameters: TextModel's, then DeepseekV4Model's in its order (what llama.cpp's converter writes for the sample)")
  func hyperparameters() throws {
    let config = try Self.sample().config
    let m = try DeepSeek4.hyperparameters(config, fileType: .mostlyMXFP4_MOE)
    let expected: [(String, GGUFValue)] = [
      ("general.architecture", .string("deepseek4")),
      ("deepseek4.block_count", .uint32(2)), ("deepseek4.context_length", .uint32(1_048_576)),
      ("deepseek4.embedding_length", .uint32(128)), ("deepseek4.attention.head_count", .uint32(2)),
      ("deepseek4.attention.head_count_kv", .uint32(1)), ("deepseek4.rope.freq_base", .float32(10_000)),
      ("deepseek4.attention.layer_norm_rms_epsilon", .float32(1e-6)), ("deepseek4.expert_count", .uint32(4)),
      ("deepseek4.expert_used_count", .uint32(2)), ("deepseek4.expert_gating_func", .uint32(4)),
      ("deepseek4.attention.key_length", .uint32(64)), ("deepseek4.attention.value_length", .uint32(64)),
      ("general.file_type", .uint32(38)), ("deepseek4.rope.dimension_count", .uint32(8)),
      ("deepseek4.attention.q_lora_rank", .uint32(64)), ("deepseek4.attention.sliding_window", .uint32(8)),
      ("deepseek4.expert_feed_forward_length", .uint32(64)), ("deepseek4.expert_shared_count", .uint32(1)),
      ("deepseek4.expert_weights_scale", .float32(1.5)), ("deepseek4.expert_weights_norm", .bool(true)),
      ("deepseek4.swiglu_clamp_exp", .array(.float32([10, 10]))), ("deepseek4.swiglu_clamp_shexp", .array(.float32([10, 10]))),
      ("deepseek4.attention.indexer.head_count", .uint32(2)), ("deepseek4.attention.indexer.key_length", .uint32(64)),
      ("deepseek4.attention.indexer.top_k", .uint32(4)), ("deepseek4.attention.output_group_count", .uint32(2)),
      ("deepseek4.attention.output_lora_rank", .uint32(64)),
      // One ratio per layer (HCA 128, CSA 4), then the MTP module's 0, as the release's compress_ratios lists them.
      ("deepseek4.attention.compress_ratios", .array(.int32([128, 4, 0]))),
      ("deepseek4.attention.compress_rope_freq_base", .float32(160_000)), ("deepseek4.hyper_connection.count", .uint32(4)),
      ("deepseek4.hyper_connection.sinkhorn_iterations", .uint32(20)), ("deepseek4.hyper_connection.epsilon", .float32(1e-6)),
      ("deepseek4.hash_layer_count", .uint32(1)), ("deepseek4.embedding_length_out", .uint32(512)),
    ]
    #expect(m.keys == expected.map(\.0))
    for (key, value) in expected { #expect(m[key] == value, "\(key)") }
    #expect(try GGUFArchitectures.mapping(for: config) == DeepSeek4.self)

    // The release schema's keys give the same file.
    let release = try Self.with(Self.with(config, "compress_ratios", "[128, 4, 0]"), "num_hash_layers", "1")
    #expect(try DeepSeek4.hyperparameters(release, fileType: .mostlyMXFP4_MOE) == m)
  }

  @Test("tensors: the trunk per compress ratio, hash table or router bias, expert stacks w1/w2/w3, no MTP; the converter's order")
  func tensors() throws {
    let (config, shapes) = try Self.sample()
    let plan = try DeepSeek4.tensors(config, shapes: shapes)
    #expect(plan.count == 68)
    #expect(!plan.contains { $0.source.tensorNames.contains { $0.hasPrefix("mtp.") } })
    let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
    func tensor(_ name: String) throws -> GGUFTensorPlan { try #require(byName[name], "\(name)") }

    #expect(try tensor("blk.0.ffn_gate_tid2eid.weight").dimensions == [2, 256])
    #expect(byName["blk.0.exp_probs_b.bias"] == nil && byName["blk.1.ffn_gate_tid2eid.weight"] == nil)
    #expect(try tensor("blk.1.exp_probs_b.bias").source == .tensor("layers.1.ffn.gate.bias"))
    // Layer 0 compresses by 128 (compressor, no indexer), layer 1 by 4 (a double-width compressor and the indexer).
    #expect(try tensor("blk.0.attn_compressor_ape.weight").dimensions == [64, 128])
    #expect(try tensor("blk.1.attn_compressor_kv.weight").dimensions == [128, 128])
    #expect(byName["blk.0.indexer.proj.weight"] == nil)
    #expect(try tensor("blk.1.indexer_compressor_ape.weight").dimensions == [128, 4])
    #expect(try tensor("blk.1.attn_output_a.weight").dimensions == [64, 128])
    #expect(try tensor("output_hc_fn.weight").dimensions == [512, 4])
    #expect(try tensor("blk.0.hc_attn_fn.weight").dimensions == [512, 24])
    #expect(try tensor("blk.1.ffn_down_exps.weight").source == .stacked((0..<4).map { "layers.1.ffn.experts.\($0).w2.weight" }))
    #expect(try tensor("blk.1.ffn_gate_exps.weight").dimensions == [128, 64, 4])

    let sourceOrder = shapes.keys.sorted()
    let ordered = DeepSeek4.converterOrder(plan, sourceOrder: sourceOrder).map(\.name)
    #expect(Array(ordered.prefix(8)) == [
      "blk.0.ffn_gate_tid2eid.weight", "blk.0.ffn_gate_exps.weight", "blk.0.ffn_down_exps.weight", "blk.0.ffn_up_exps.weight",
      "blk.1.ffn_gate_exps.weight", "blk.1.ffn_down_exps.weight", "blk.1.ffn_up_exps.weight", "token_embd.weight",
    ])
    #expect(ordered.last == "output_norm.weight")
  }

  @Test("the converter's types: FP8 sources Q8_0, F32 and BF16 kept, the experts MXFP4, the hash table I32")
  func converterTypes() throws {
    let plan = GGUFTensorPlan(name: "blk.0.attn_q_a.weight", dimensions: [128, 64], source: .tensor("layers.0.attn.wq_a.weight"))
    #expect(DeepSeek4.converterType(of: plan, sources: [.quantized]) == .q8_0)
    #expect(DeepSeek4.converterType(of: plan, sources: [.bf16]) == .bf16)
    #expect(DeepSeek4.converterType(of: plan, sources: [.f32]) == .f32)
    #expect(DeepSeek4.converterType(of: plan, sources: [.integer]) == .i32)
    let vector = GGUFTensorPlan(name: "blk.0.attn_norm.weight", dimensions: [128], source: .tensor("layers.0.attn_norm.weight"))
    #expect(DeepSeek4.converterType(of: vector, sources: [.bf16]) == nil)
    let stack = GGUFTensorPlan(name: "blk.0.ffn_up_exps.weight", dimensions: [128, 64, 2], source: .stacked(["a", "b"]))
    #expect(DeepSeek4.converterType(of: stack, sources: [.quantized, .quantized]) == .mxfp4)
    #expect(DeepSeek4.converterType(of: stack, sources: [.bf16, .bf16]) == nil)
    // Every other architecture's converter writes its outtype.
    #expect(DeepSeek2.converterType(of: plan, sources: [.quantized]) == nil)
  }

  @Test("what llama.cpp's deepseek4 cannot compute is refused with the field named")
  func refusals() throws {
    let (config, shapes) = try Self.sample()
    #expect(throws: GGUFMappingFailure.invalidField(
      "hc_mult", reason: "is 2; llama.cpp's deepseek4 computes 4 hyper-connection streams only")) {
      try DeepSeek4.hyperparameters(try Self.with(config, "hc_mult", "2"))
    }
    #expect(throws: GGUFMappingFailure.invalidField(
      "index_head_dim", reason: "is 32; llama.cpp's deepseek4 rotates indexer keys in blocks of 64 (it needs a multiple of 64)")) {
      try DeepSeek4.hyperparameters(try Self.with(config, "index_head_dim", "32"))
    }
    let rates = #"{"compressed_sparse_attention": 4, "heavily_compressed_attention": 8}"#
    #expect(throws: GGUFMappingFailure.invalidField(
      "compress_ratios", reason: "has 8; llama.cpp's deepseek4 loads compress ratios 0, 4 and 128 only")) {
      try DeepSeek4.tensors(try Self.with(config, "compress_rates", rates), shapes: shapes)
    }
    #expect(throws: GGUFMappingFailure.invalidField(
      "compress_ratios", reason: "is [4, 4, 0], but layer_types and compress_rates give [128, 4, 0]; remove one of them")) {
      try DeepSeek4.hyperparameters(try Self.with(config, "compress_ratios", "[4, 4, 0]"))
    }
    #expect(throws: GGUFMappingFailure.invalidField("num_hash_layers", reason: "is 2, but mlp_layer_types has 1 leading hash_moe layers")) {
      try DeepSeek4.hyperparameters(try Self.with(config, "num_hash_layers", "2"))
    }
    #expect(throws: GGUFMappingFailure.invalidField(
      "scoring_func", reason: "is 'softmax'; llama.cpp's deepseek4 routes with sqrtsoftplus only")) {
      try DeepSeek4.hyperparameters(try Self.with(config, "scoring_func", #""softmax""#))
    }
    var missing = shapes
    missing.removeValue(forKey: "layers.1.attn.indexer.wq_b.weight")
    #expect(throws: GGUFMappingFailure.missingTensor("layers.1.attn.indexer.wq_b.weight")) { try DeepSeek4.tensors(config, shapes: missing) }
  }
}
