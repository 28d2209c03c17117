import Checkpoint
import GGUF
import JSON
import SafeTensors
import TestSupport
import Testing

@testable import GGUFModel

@Suite("deepseek2 mapping")
struct DeepSeek2MappingTests {
  static func sample(_ name: String = "tiny-deepseek-v3") throws -> Checkpoint { try Checkpoint.open(TestPaths.sample(name)) }

  static func shapes(_ checkpoint: Checkpoint) -> [String: [Int]] {
    Dictionary(uniqueKeysWithValues: checkpoint.entries.map { ($0.name, $0.shape) })
  }

  @Test("hyperparameters: every key llama.cpp's deepseek2 reads, with the traps handled")
  func hyperparameters() throws {
    let config = try #require(try Self.sample().config)
    let m = try DeepSeek2.hyperparameters(config, fileType: .mostlyQ4_K_M)
    #expect(m.keys.first == "general.architecture" && m["general.architecture"] == .string("deepseek2"))
    let expected: [(String, GGUFValue)] = [
      ("deepseek2.block_count", .uint32(5)), ("deepseek2.context_length", .uint32(163_840)),
      ("deepseek2.embedding_length", .uint32(256)), ("deepseek2.feed_forward_length", .uint32(384)),
      ("deepseek2.attention.head_count", .uint32(4)), ("deepseek2.attention.head_count_kv", .uint32(1)),
      ("deepseek2.rope.scaling.type", .string("yarn")), ("deepseek2.rope.scaling.factor", .float32(40)),
      ("deepseek2.rope.scaling.original_context_length", .uint32(4096)),
      ("deepseek2.rope.scaling.yarn_beta_fast", .float32(32)), ("deepseek2.rope.scaling.yarn_beta_slow", .float32(1)),
      ("deepseek2.rope.freq_base", .float32(10000)), ("deepseek2.attention.layer_norm_rms_epsilon", .float32(1e-6)),
      ("deepseek2.expert_count", .uint32(16)), ("deepseek2.expert_used_count", .uint32(4)),
      ("deepseek2.expert_group_count", .uint32(4)), ("deepseek2.expert_group_used_count", .uint32(2)),
      ("deepseek2.expert_gating_func", .uint32(2)),
      // Placed by TextModel (transformers' head_dim = qk_rope_head_dim), set by DeepseekV2Model.
      ("deepseek2.attention.key_length", .uint32(160)), ("deepseek2.attention.value_length", .uint32(128)),
      ("general.file_type", .uint32(15)),
      ("deepseek2.leading_dense_block_count", .uint32(1)), ("deepseek2.vocab_size", .uint32(512)),
      ("deepseek2.attention.q_lora_rank", .uint32(192)), ("deepseek2.attention.kv_lora_rank", .uint32(128)),
      ("deepseek2.attention.key_length_mla", .uint32(96)), ("deepseek2.attention.value_length_mla", .uint32(64)),
      ("deepseek2.expert_feed_forward_length", .uint32(64)), ("deepseek2.expert_shared_count", .uint32(1)),
      ("deepseek2.expert_weights_scale", .float32(2.5)), ("deepseek2.expert_weights_norm", .bool(true)),
      ("deepseek2.rope.dimension_count", .uint32(32)), ("deepseek2.rope.scaling.yarn_log_multiplier", .float32(0.1)),
      ("deepseek2.nextn_predict_layers", .uint32(1)),
    ]
    #expect(Array(m.keys.dropFirst()) == expected.map(\.0), "convert_hf_to_gguf.py's order (expert_count keeps its first place)")
    for (key, value) in expected { #expect(m[key] == value, "\(key)") }

    let trunk = try DeepSeek2.hyperparameters(config, options: DeepSeek2.Options(keepMTP: false))
    #expect(trunk["deepseek2.block_count"] == .uint32(4) && trunk["deepseek2.nextn_predict_layers"] == nil)
    #expect(trunk["general.file_type"] == nil)
  }

  @Test("tensor names, shapes and sources for the BF16 and FP8 samples")
  func tensors() throws {
    for name in ["tiny-deepseek-v3", "tiny-deepseek-v3-fp8"] {
      let checkpoint = try Self.sample(name)
      let config = try #require(checkpoint.config)
      let plan = try DeepSeek2.tensors(config, shapes: Self.shapes(checkpoint))
      let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
      #expect(plan.count == byName.count, "names are unique")
      // 3 global + dense layer 0 (13) + MoE layers 1-3 (18 each) + MTP layer 4 (18 + 6 nextn).
      #expect(plan.count == 3 + 13 + 3 * 18 + 24, "\(name)")
      #expect(byName["token_embd.weight"]?.dimensions == [256, 512])
      #expect(byName["output.weight"]?.source == .tensor("lm_head.weight"))
      #expect(byName["blk.0.ffn_gate.weight"]?.dimensions == [256, 384])
      #expect(byName["blk.0.ffn_gate_inp.weight"] == nil)
      #expect(byName["blk.1.attn_q_b.weight"]?.dimensions == [192, 4 * 96])
      #expect(byName["blk.1.attn_kv_a_mqa.weight"]?.dimensions == [256, 160])
      #expect(byName["blk.1.attn_k_b.weight"]?.dimensions == [64, 128, 4])
      #expect(byName["blk.1.attn_v_b.weight"]?.dimensions == [128, 64, 4])
      #expect(byName["blk.1.attn_k_b.weight"]?.source == .mlaKeyHalf("model.layers.1.self_attn.kv_b_proj.weight", heads: 4, nope: 64, value: 64))
      #expect(byName["blk.2.ffn_down_exps.weight"]?.dimensions == [64, 256, 16])
      #expect(byName["blk.2.ffn_gate_exps.weight"]?.dimensions == [256, 64, 16])
      guard case .stacked(let experts) = byName["blk.2.ffn_up_exps.weight"]?.source else {
        Issue.record("experts are stacked")
        continue
      }
      #expect(experts == (0..<16).map { "model.layers.2.mlp.experts.\($0).up_proj.weight" })
      #expect(byName["blk.3.exp_probs_b.bias"]?.dimensions == [16])
      #expect(byName["blk.3.ffn_down_shexp.weight"]?.dimensions == [64, 256])
      #expect(byName["blk.4.nextn.eh_proj.weight"]?.dimensions == [512, 256])
      #expect(byName["blk.4.nextn.shared_head_head.weight"]?.dimensions == [256, 512])
      #expect(byName["blk.4.ffn_up_exps.weight"] != nil, "the MTP block is a full decoder block")

      let trunk = try DeepSeek2.tensors(config, shapes: Self.shapes(checkpoint), options: DeepSeek2.Options(keepMTP: false))
      #expect(trunk.count == plan.count - 24 && !trunk.contains { $0.name.hasPrefix("blk.4.") })
    }
  }

  @Test("unknown architectures, missing fields and tensors are named")
  func failures() throws {
    let checkpoint = try Self.sample()
    let config = try #require(checkpoint.config)
    var other = config
    other.architectures = ["Qwen3MoeForCausalLM"]
    other.modelType = "qwen3_moe"
    #expect(throws: DeepSeek2.Failure.unsupportedArchitecture(found: ["Qwen3MoeForCausalLM"])) {
      try DeepSeek2.hyperparameters(other)
    }
    var noHidden = config
    noHidden.hiddenSize = nil
    #expect(throws: DeepSeek2.Failure.missingField("hidden_size")) { try DeepSeek2.hyperparameters(noHidden) }
    var shapes = Self.shapes(checkpoint)
    shapes["model.layers.2.mlp.experts.7.down_proj.weight"] = nil
    #expect(throws: DeepSeek2.Failure.missingTensor("model.layers.2.mlp.experts.7.down_proj.weight")) {
      try DeepSeek2.tensors(config, shapes: shapes)
    }
    shapes = Self.shapes(checkpoint)
    shapes["model.layers.1.self_attn.o_proj.weight"] = [256, 200]
    #expect(throws: DeepSeek2.Failure.unexpectedShape(tensor: "model.layers.1.self_attn.o_proj.weight", shape: [256, 200], expected: [256, 256])) {
      try DeepSeek2.tensors(config, shapes: shapes)
    }
    shapes = Self.shapes(checkpoint)
    shapes["model.layers.1.self_attn.rotary_emb.weight"] = [4]
    #expect(throws: DeepSeek2.Failure.unmappedTensor("model.layers.1.self_attn.rotary_emb.weight")) {
      try DeepSeek2.tensors(config, shapes: shapes)
    }
  }

  @Test("llama-quantize's model view: 16 experts, MQA, MTP counted")
  func quantizeModel() throws {
    let config = try #require(try Self.sample().config)
    let model = try DeepSeek2.quantizeModel(config)
    #expect(model == LlamaQuantize.Model(architecture: "deepseek2", expertCount: 16, headCount: 4, headCountKV: 1, blockCount: 5))
  }
}
