import Checkpoint
import GGUF
import TestSupport
import Testing

@testable import GGUFModel

@Suite("glm4moe mapping")
struct Glm4MoeMappingTests {
  static func sample() throws -> MappingSample { try MappingSample("tiny-glm4-moe-fp8") }

  @Test("hyperparameters: the converter's TextModel keys, then rope width (head_dim x partial_rotary_factor), experts, sigmoid gating, scale, norm and NextN count")
  func hyperparameters() throws {
    let config = try Self.sample().config
    let m = try Glm4Moe.hyperparameters(config, fileType: .mostlyQ4_K_M)
    let expected: [(String, GGUFValue)] = [
      ("general.architecture", .string("glm4moe")),
      ("glm4moe.block_count", .uint32(3)), ("glm4moe.context_length", .uint32(4096)),
      ("glm4moe.embedding_length", .uint32(128)), ("glm4moe.feed_forward_length", .uint32(128)),
      ("glm4moe.attention.head_count", .uint32(2)), ("glm4moe.attention.head_count_kv", .uint32(1)),
      ("glm4moe.rope.freq_base", .float32(1_000_000)), ("glm4moe.attention.layer_norm_rms_epsilon", .float32(1e-5)),
      ("glm4moe.expert_count", .uint32(4)), ("glm4moe.expert_used_count", .uint32(2)),
      ("glm4moe.expert_group_count", .uint32(1)), ("glm4moe.expert_group_used_count", .uint32(1)),
      ("glm4moe.attention.key_length", .uint32(64)), ("glm4moe.attention.value_length", .uint32(64)),
      ("general.file_type", .uint32(15)), ("glm4moe.rope.dimension_count", .uint32(32)),
      ("glm4moe.expert_feed_forward_length", .uint32(64)), ("glm4moe.expert_shared_count", .uint32(1)),
      ("glm4moe.leading_dense_block_count", .uint32(1)), ("glm4moe.expert_gating_func", .uint32(2)),
      ("glm4moe.expert_weights_scale", .float32(2.5)), ("glm4moe.expert_weights_norm", .bool(true)),
      ("glm4moe.nextn_predict_layers", .uint32(1)),
    ]
    #expect(m.keys == expected.map(\.0))
    for (key, value) in expected { #expect(m[key] == value, "\(key)") }
    #expect(try Glm4Moe.quantizeModel(config)
      == LlamaQuantize.Model(architecture: "glm4moe", expertCount: 4, headCount: 2, headCountKV: 1, blockCount: 3))
    #expect(try GGUFArchitectures.mapping(for: config) == Glm4Moe.self)
  }

  @Test("tensors: a dense leading layer, MoE with router bias and shared expert, the NextN layer with its own attention and experts; --drop-mtp leaves it out")
  func tensors() throws {
    let config = try Self.sample().config
    let plan = try Glm4Moe.tensors(config, shapes: try Self.sample().shapes)
    #expect(plan.count == 3 + 14 + 19 + 25)
    let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
    #expect(byName["blk.0.ffn_gate.weight"]?.source == .tensor("model.layers.0.mlp.gate_proj.weight"))
    #expect(byName["blk.1.post_attention_norm.weight"]?.source == .tensor("model.layers.1.post_attention_layernorm.weight"))
    #expect(byName["blk.1.exp_probs_b.bias"]?.source == .tensor("model.layers.1.mlp.gate.e_score_correction_bias"))
    #expect(byName["blk.1.attn_q.bias"]?.dimensions == [128] && byName["blk.1.attn_k_norm.weight"]?.dimensions == [64])
    #expect(byName["blk.1.ffn_up_shexp.weight"]?.dimensions == [128, 64])
    #expect(byName["blk.2.ffn_down_exps.weight"]?.dimensions == [64, 128, 4])
    #expect(byName["blk.2.nextn.eh_proj.weight"]?.dimensions == [256, 128])
    #expect(byName["blk.2.nextn.shared_head_head.weight"]?.source == .tensor("model.layers.2.shared_head.head.weight"))
    #expect(byName["blk.0.ffn_norm.weight"] == nil, "GLM's post-attention norm is post_attention_norm")

    let options = GGUFMappingOptions(keepMTP: false)
    let trunk = try Glm4Moe.tensors(config, shapes: try Self.sample().shapes, options: options)
    #expect(trunk.count == 3 + 14 + 19 && !trunk.contains { $0.name.hasPrefix("blk.2.") })
    let metadata = try Glm4Moe.hyperparameters(config, options: options)
    #expect(metadata["glm4moe.block_count"] == .uint32(2) && metadata["glm4moe.nextn_predict_layers"] == nil)
  }

  @Test("what llama.cpp's glm4moe would compute differently is refused: another router function, a dense layer after MoE layers")
  func refusals() throws {
    let config = try Self.sample().config
    var softmax = config
    softmax.scoringFunc = "softmax"
    #expect(throws: GGUFMappingFailure.invalidField("scoring_func", reason: "is 'softmax'; llama.cpp's glm4moe routes with a sigmoid")) {
      try Glm4Moe.hyperparameters(softmax)
    }
    var interleaved = config
    interleaved.firstKDenseReplace = 0
    interleaved.moeLayerFreq = 2
    #expect(throws: GGUFMappingFailure.self) { try Glm4Moe.tensors(interleaved, shapes: try Self.sample().shapes) }
    var shapes = try Self.sample().shapes
    shapes.removeValue(forKey: "model.layers.1.mlp.gate.e_score_correction_bias")
    #expect(throws: GGUFMappingFailure.missingTensor("model.layers.1.mlp.gate.e_score_correction_bias")) {
      try Glm4Moe.tensors(config, shapes: shapes)
    }
  }
}
