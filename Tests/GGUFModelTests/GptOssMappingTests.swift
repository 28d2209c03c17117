import Checkpoint
import GGML
import GGUF
import TestSupport
import Testing

@testable import GGUFModel

@Suite("gpt-oss mapping")
struct GptOssMappingTests {
  static func config() throws -> ModelConfig {
    try #require(try Checkpoint.open(TestPaths.sample("tiny-gpt-oss")).config)
  }

  /// The sample's logical weight shapes (fused experts `[E, out, in]`, as the MXFP4 release decodes).
  static func shapes(layers: Int = 2) -> [String: [Int]] {
    var shapes: [String: [Int]] = [
      "model.embed_tokens.weight": [256, 128], "model.norm.weight": [128], "lm_head.weight": [256, 128],
    ]
    for layer in 0..<layers {
      let p = "model.layers.\(layer)."
      let layerShapes: [String: [Int]] = [
        "input_layernorm.weight": [128], "post_attention_layernorm.weight": [128],
        "self_attn.q_proj.weight": [256, 128], "self_attn.q_proj.bias": [256], "self_attn.k_proj.weight": [128, 128],
        "self_attn.k_proj.bias": [128], "self_attn.v_proj.weight": [128, 128], "self_attn.v_proj.bias": [128],
        "self_attn.o_proj.weight": [128, 256], "self_attn.o_proj.bias": [128], "self_attn.sinks": [4],
        "mlp.router.weight": [4, 128], "mlp.router.bias": [4],
        "mlp.experts.gate_up_proj": [4, 128, 128], "mlp.experts.gate_up_proj_bias": [4, 128],
        "mlp.experts.down_proj": [4, 128, 64], "mlp.experts.down_proj_bias": [4, 128],
      ]
      for (name, shape) in layerShapes { shapes[p + name] = shape }
    }
    return shapes
  }

  @Test("hyperparameters: what llama.cpp's gpt-oss loader reads, in the converter's order")
  func hyperparameters() throws {
    let m = try GptOss.hyperparameters(try Self.config(), fileType: .mostlyMXFP4_MOE)
    let expected: [(String, GGUFValue)] = [
      ("general.architecture", .string("gpt-oss")),
      ("gpt-oss.block_count", .uint32(2)), ("gpt-oss.context_length", .uint32(131_072)),
      ("gpt-oss.embedding_length", .uint32(128)), ("gpt-oss.feed_forward_length", .uint32(64)),
      ("gpt-oss.attention.head_count", .uint32(4)), ("gpt-oss.attention.head_count_kv", .uint32(2)),
      ("gpt-oss.rope.scaling.type", .string("yarn")), ("gpt-oss.rope.scaling.factor", .float32(32)),
      ("gpt-oss.rope.scaling.original_context_length", .uint32(4096)),
      ("gpt-oss.rope.scaling.yarn_beta_fast", .float32(32)), ("gpt-oss.rope.scaling.yarn_beta_slow", .float32(1)),
      ("gpt-oss.rope.freq_base", .float32(150_000)), ("gpt-oss.attention.layer_norm_rms_epsilon", .float32(1e-5)),
      ("gpt-oss.expert_count", .uint32(4)), ("gpt-oss.expert_used_count", .uint32(2)),
      ("gpt-oss.attention.key_length", .uint32(64)), ("gpt-oss.attention.value_length", .uint32(64)),
      ("general.file_type", .uint32(38)), ("gpt-oss.attention.sliding_window", .uint32(128)),
      ("gpt-oss.expert_feed_forward_length", .uint32(64)),
    ]
    #expect(m.keys == expected.map(\.0))
    for (key, value) in expected { #expect(m[key] == value, "\(key)") }
    #expect(try GptOss.quantizeModel(try Self.config())
      == LlamaQuantize.Model(architecture: "gpt-oss", expertCount: 4, headCount: 4, headCountKV: 2, blockCount: 2))
  }

  @Test("tensors: attention with biases and sinks, router with bias, fused experts split into gate (even rows), up (odd rows) and down")
  func tensors() throws {
    let plan = try GptOss.tensors(try Self.config(), shapes: Self.shapes())
    #expect(plan.count == 3 + 2 * 19)
    let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
    #expect(byName["blk.0.attn_sinks.weight"]?.source == .tensor("model.layers.0.self_attn.sinks"))
    #expect(byName["blk.1.post_attention_norm.weight"]?.source == .tensor("model.layers.1.post_attention_layernorm.weight"))
    #expect(byName["blk.0.ffn_gate_inp.bias"]?.dimensions == [4])
    #expect(byName["blk.0.attn_q.weight"]?.dimensions == [128, 256])
    let gate = try #require(byName["blk.1.ffn_gate_exps.weight"])
    #expect(gate.dimensions == [128, 64, 4])
    #expect(gate.source == .fusedExperts("model.layers.1.mlp.experts.gate_up_proj", stride: 2, offset: 0, inputMajor: false))
    #expect(byName["blk.1.ffn_up_exps.weight"]?.source
      == .fusedExperts("model.layers.1.mlp.experts.gate_up_proj", stride: 2, offset: 1, inputMajor: false))
    #expect(byName["blk.1.ffn_down_exps.weight"]?.dimensions == [64, 128, 4])
    #expect(byName["blk.1.ffn_up_exps.bias"]?.dimensions == [64, 4])
    #expect(byName["blk.1.ffn_down_exps.bias"]?.dimensions == [128, 4])
  }

  @Test("read back: each block's fused experts come from their stacks, input-major; stacks that disagree, are empty or lack a partner are refused naming the tensor")
  func storedTensorsFromStacks() throws {
    let written = try GptOss.tensors(try Self.config(), shapes: Self.shapes()).map {
      GGUFTensorInfo(name: $0.name, dimensions: $0.dimensions, type: .f32)
    }
    let stored = try GptOss.storedTensors(written)
    let byName = Dictionary(uniqueKeysWithValues: stored.map { ($0.name, $0) })
    #expect(byName["model.layers.1.mlp.experts.gate_up_proj"]?.shape == [4, 128, 128])
    #expect(byName["model.layers.1.mlp.experts.gate_up_proj"]?.layout
      == .fusedExperts(["blk.1.ffn_gate_exps.weight", "blk.1.ffn_up_exps.weight"], count: 4))
    #expect(byName["model.layers.0.mlp.experts.down_proj"]?.shape == [4, 64, 128], "[E, in, out]")
    #expect(byName["model.layers.0.mlp.experts.gate_up_proj_bias"]?.shape == [4, 128])
    #expect(byName["model.layers.0.mlp.experts.down_proj_bias"]?.layout == .fusedExperts(["blk.0.ffn_down_exps.bias"], count: 4))
    #expect(byName["model.layers.0.self_attn.sinks"]?.layout == .whole("blk.0.attn_sinks.weight"))

    func refusal(_ edit: (inout [GGUFTensorInfo]) -> Void) -> String {
      var tensors = written
      edit(&tensors)
      do {
        _ = try GptOss.storedTensors(tensors)
        return "accepted"
      } catch { return "\(error)" }
    }
    func setDimensions(_ name: String, _ dimensions: [Int]) -> (inout [GGUFTensorInfo]) -> Void {
      { tensors in
        let i = tensors.firstIndex { $0.name == name }!
        tensors[i] = GGUFTensorInfo(name: name, dimensions: dimensions, type: .f32)
      }
    }
    #expect(refusal(setDimensions("blk.1.ffn_up_exps.weight", [128, 32, 4])).contains("blk.1.ffn_up_exps.weight"))
    #expect(refusal(setDimensions("blk.0.ffn_down_exps.bias", [128, 3])).contains("blk.0.ffn_down_exps.bias"))
    // A zero extent lets the others be anything to the parser: refused before any size is computed from them.
    #expect(refusal(setDimensions("blk.0.ffn_gate_exps.weight", [1, 1 << 62, 0])).contains("blk.0.ffn_gate_exps.weight"))
    #expect(refusal { $0.removeAll { $0.name == "blk.1.ffn_up_exps.bias" } }.contains("blk.1.ffn_up_exps.bias"))
    #expect(refusal { $0.removeAll { $0.name == "blk.1.ffn_gate_exps.weight" } }.contains("blk.1.ffn_gate_exps.weight"))
  }

  @Test("what llama.cpp would compute differently is refused: another SwiGLU limit, a non-alternating attention pattern; unknown tensors are named")
  func refusals() throws {
    let config = try Self.config()
    var limit = config
    limit.swigluLimit = 10
    #expect(throws: GGUFMappingFailure.invalidField("swiglu_limit", reason: "is 10.0; llama.cpp's gpt-oss computes with 7.0")) {
      try GptOss.hyperparameters(limit)
    }
    var pattern = config
    pattern.layerTypes = ["full_attention", "sliding_attention"]
    #expect(throws: GGUFMappingFailure.self) { try GptOss.tensors(pattern, shapes: Self.shapes()) }
    var shapes = Self.shapes()
    shapes["model.layers.0.self_attn.rotary_emb.inv_freq"] = [32]
    #expect(throws: GGUFMappingFailure.unmappedTensor("model.layers.0.self_attn.rotary_emb.inv_freq")) {
      try GptOss.tensors(config, shapes: shapes)
    }
    shapes = Self.shapes()
    shapes["model.layers.1.mlp.experts.down_proj"] = [4, 64, 128]
    #expect(throws: GGUFMappingFailure.unexpectedShape(tensor: "model.layers.1.mlp.experts.down_proj", shape: [4, 64, 128], expected: [4, 128, 64])) {
      try GptOss.tensors(config, shapes: shapes)
    }
  }

  @Test("the registry picks the mapping by the family's llama.cpp architecture; a family without a mapping, or with no architecture, is refused naming what Smelt writes")
  func registry() throws {
    let config = try Self.config()
    #expect(try GGUFArchitectures.mapping(for: config) == GptOss.self)
    var minimax = config
    minimax.architectures = ["MiniMaxM2ForCausalLM"]
    minimax.modelType = "minimax_m2"
    let unwritten = GGUFMappingFailure.unwrittenArchitecture(family: "MiniMax-M2", architecture: "minimax-m2")
    #expect(try GGUFArchitectures.mapping(for: minimax) == MiniMaxM2.self)
    #expect(throws: unwritten) { try GGUFArchitectures.mapping(for: minimax, among: [DeepSeek2.self, GptOss.self]) }
    var unknown = config
    unknown.architectures = ["MysteryForCausalLM"]
    unknown.modelType = "mystery"
    let failure = GGUFMappingFailure.unsupportedArchitecture(found: ["MysteryForCausalLM"])
    #expect(throws: failure) { try GGUFArchitectures.mapping(for: unknown) }
    for message in [unwritten.description, failure.description] {
      #expect(message.contains("Smelt writes the GGUF architectures deepseek2 (DeepSeek-V3.1, DeepSeek-V3, Kimi K2)"), "\(message)")
      #expect(message.contains("gpt-oss (gpt-oss); qwen3moe (Qwen3-MoE); qwen35moe (Qwen3.5-MoE); glm4moe (GLM-4.5); minimax-m2 (MiniMax-M2)"), "\(message)")
    }
  }

}
