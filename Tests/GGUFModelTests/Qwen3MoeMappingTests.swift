import Checkpoint
import GGUF
import TestSupport
import Testing

@testable import GGUFModel

@Suite("qwen3moe mapping")
struct Qwen3MoeMappingTests {
  static func config(_ sample: String = "tiny-qwen3-moe") throws -> ModelConfig {
    try #require(try Checkpoint.open(TestPaths.sample(sample)).config)
  }

  /// The sample's tensor shapes (per-expert experts, as the releases store them).
  static func shapes(layers: Int = 2, experts: Int = 4) -> [String: [Int]] {
    var shapes: [String: [Int]] = [
      "model.embed_tokens.weight": [256, 128], "model.norm.weight": [128], "lm_head.weight": [256, 128],
    ]
    for layer in 0..<layers {
      let p = "model.layers.\(layer)."
      let layerShapes: [String: [Int]] = [
        "input_layernorm.weight": [128], "post_attention_layernorm.weight": [128],
        "self_attn.q_proj.weight": [256, 128], "self_attn.k_proj.weight": [128, 128], "self_attn.v_proj.weight": [128, 128],
        "self_attn.o_proj.weight": [128, 256], "self_attn.q_norm.weight": [64], "self_attn.k_norm.weight": [64],
        "mlp.gate.weight": [4, 128],
      ]
      for (name, shape) in layerShapes { shapes[p + name] = shape }
      for e in 0..<experts {
        shapes[p + "mlp.experts.\(e).gate_proj.weight"] = [64, 128]
        shapes[p + "mlp.experts.\(e).up_proj.weight"] = [64, 128]
        shapes[p + "mlp.experts.\(e).down_proj.weight"] = [128, 64]
      }
    }
    return shapes
  }

  @Test("hyperparameters: what llama.cpp's qwen3moe loader reads, in the converter's order")
  func hyperparameters() throws {
    let m = try Qwen3Moe.hyperparameters(try Self.config(), fileType: .mostlyQ4_K_M)
    let expected: [(String, GGUFValue)] = [
      ("general.architecture", .string("qwen3moe")),
      ("qwen3moe.block_count", .uint32(2)), ("qwen3moe.context_length", .uint32(4096)),
      ("qwen3moe.embedding_length", .uint32(128)), ("qwen3moe.feed_forward_length", .uint32(128)),
      ("qwen3moe.attention.head_count", .uint32(4)), ("qwen3moe.attention.head_count_kv", .uint32(2)),
      ("qwen3moe.rope.freq_base", .float32(1_000_000)), ("qwen3moe.attention.layer_norm_rms_epsilon", .float32(1e-6)),
      ("qwen3moe.expert_count", .uint32(4)), ("qwen3moe.expert_used_count", .uint32(2)),
      ("qwen3moe.attention.key_length", .uint32(64)), ("qwen3moe.attention.value_length", .uint32(64)),
      ("general.file_type", .uint32(15)), ("qwen3moe.expert_feed_forward_length", .uint32(64)),
    ]
    #expect(m.keys == expected.map(\.0))
    for (key, value) in expected { #expect(m[key] == value, "\(key)") }
    #expect(try Qwen3Moe.quantizeModel(try Self.config())
      == LlamaQuantize.Model(architecture: "qwen3moe", expertCount: 4, headCount: 4, headCountKV: 2, blockCount: 2))
    #expect(try GGUFArchitectures.mapping(for: try Self.config()) == Qwen3Moe.self)
  }

  @Test("tensors: QK-norm, router, per-expert projections stacked in expert order; q/k/v biases only where the checkpoint has them")
  func tensors() throws {
    let plan = try Qwen3Moe.tensors(try Self.config(), shapes: Self.shapes())
    #expect(plan.count == 3 + 2 * 12)
    let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
    #expect(byName["blk.0.attn_q_norm.weight"]?.source == .tensor("model.layers.0.self_attn.q_norm.weight"))
    #expect(byName["blk.1.ffn_norm.weight"]?.source == .tensor("model.layers.1.post_attention_layernorm.weight"))
    #expect(byName["blk.0.ffn_gate_inp.weight"]?.dimensions == [128, 4])
    #expect(byName["blk.0.attn_output.weight"]?.dimensions == [256, 128])
    let down = try #require(byName["blk.1.ffn_down_exps.weight"])
    #expect(down.dimensions == [64, 128, 4])
    #expect(down.source == .stacked((0..<4).map { "model.layers.1.mlp.experts.\($0).down_proj.weight" }))
    #expect(byName["blk.1.ffn_gate_exps.weight"]?.dimensions == [128, 64, 4])
    #expect(byName["output.weight"]?.source == .tensor("lm_head.weight"))
    #expect(byName["blk.0.attn_q.bias"] == nil)

    var withBias = Self.shapes()
    for layer in 0..<2 {
      withBias["model.layers.\(layer).self_attn.q_proj.bias"] = [256]
      withBias["model.layers.\(layer).self_attn.k_proj.bias"] = [128]
      withBias["model.layers.\(layer).self_attn.v_proj.bias"] = [128]
    }
    let biased = try Qwen3Moe.tensors(try Self.config(), shapes: withBias)
    #expect(biased.count == plan.count + 6)
    #expect(biased.first { $0.name == "blk.1.attn_k.bias" }?.dimensions == [128])
  }

  @Test("the converter's order: tensors as read, a layer's expert stacks (down, gate, up) after its last expert")
  func converterOrder() throws {
    let plan = try Qwen3Moe.tensors(try Self.config(), shapes: Self.shapes(layers: 2))
    let order = Qwen3Moe.converterOrder(plan, sourceOrder: Self.shapes(layers: 2).keys.sorted())
    let names = order.map(\.name)
    let last1 = try #require(names.firstIndex(of: "blk.1.ffn_down_exps.weight"))
    #expect(Array(names[last1..<(last1 + 3)]) == ["blk.1.ffn_down_exps.weight", "blk.1.ffn_gate_exps.weight", "blk.1.ffn_up_exps.weight"])
    // `mlp.experts.*` sorts before `mlp.gate.weight`: the stacks come before the router, as the converter writes them.
    #expect(last1 < (try #require(names.firstIndex(of: "blk.1.ffn_gate_inp.weight"))))
    #expect(Set(names) == Set(plan.map(\.name)) && names.count == plan.count)
  }

  @Test("what llama.cpp's qwen3moe would compute differently is refused: a dense layer, un-normalized top-k, sliding windows")
  func refusals() throws {
    // The FP8 sample's layer 0 is dense (mlp_only_layers [0]).
    #expect(throws: GGUFMappingFailure.invalidField("mlp_only_layers", reason: "makes layer 0 dense; llama.cpp's qwen3moe builds every layer as MoE")) {
      try Qwen3Moe.hyperparameters(try Self.config("tiny-qwen3-moe-fp8"))
    }
    var step = try Self.config()
    step.decoderSparseStep = 2
    #expect(throws: GGUFMappingFailure.invalidField("decoder_sparse_step", reason: "makes layer 0 dense; llama.cpp's qwen3moe builds every layer as MoE")) {
      try Qwen3Moe.tensors(step, shapes: Self.shapes())
    }
    var unnormalized = try Self.config()
    unnormalized.normTopkProb = false
    #expect(throws: GGUFMappingFailure.self) { try Qwen3Moe.quantizeModel(unnormalized) }
    var sliding = try Self.config()
    sliding.useSlidingWindow = true
    #expect(throws: GGUFMappingFailure.self) { try Qwen3Moe.hyperparameters(sliding) }
    var shapes = Self.shapes()
    shapes["model.layers.0.mlp.shared_expert.up_proj.weight"] = [64, 128]
    #expect(throws: GGUFMappingFailure.unmappedTensor("model.layers.0.mlp.shared_expert.up_proj.weight")) {
      try Qwen3Moe.tensors(try Self.config(), shapes: shapes)
    }
    shapes = Self.shapes()
    shapes.removeValue(forKey: "model.layers.1.mlp.experts.3.up_proj.weight")
    #expect(throws: GGUFMappingFailure.missingTensor("model.layers.1.mlp.experts.3.up_proj.weight")) {
      try Qwen3Moe.tensors(try Self.config(), shapes: shapes)
    }
  }
}
