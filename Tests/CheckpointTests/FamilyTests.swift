import Checkpoint
import JSON
import Testing

@Suite("model families")
struct FamilyDescriptionTests {
  static func config(_ json: String) throws -> ModelConfig { try ModelConfig(json: Array(json.utf8), path: "config.json") }

  @Test(
    "config.json picks the family: model_type first (Kimi's kimi_k2 on DeepseekV3ForCausalLM), then architectures; V3.1 by its ue8m0 scales",
    arguments: [
      (#"{"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3"}"#, "deepseek-v3"),
      (#"{"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "scale_fmt": "ue8m0"}}"#, "deepseek-v3.1"),
      (#"{"architectures": ["DeepseekV3ForCausalLM"], "model_type": "kimi_k2"}"#, "kimi-k2"),
      (#"{"architectures": ["KimiK25ForConditionalGeneration"], "model_type": "kimi_k25", "text_config": {"model_type": "kimi_k2"}}"#, "kimi-k2"),
      (#"{"architectures": ["DeepseekV32ForCausalLM"]}"#, "deepseek-v3.2"),
      (#"{"model_type": "deepseek_v4"}"#, "deepseek-v4"),
      (#"{"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe"}"#, "qwen3-moe"),
      (#"{"architectures": ["Qwen3_5MoeForConditionalGeneration"], "model_type": "qwen3_5_moe"}"#, "qwen3.5-moe"),
      (#"{"architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe"}"#, "glm4-moe"),
      (#"{"architectures": ["MiniMaxM2ForCausalLM"], "model_type": "minimax_m2"}"#, "minimax-m2"),
      (#"{"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss"}"#, "gpt-oss"),
      (#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}"#, "generic"),
    ])
  func detection(_ json: String, _ family: String) throws {
    #expect(ModelFamily.detect(try Self.config(json)).id == family)
  }

  @Test(
    "each family's names classify: routed experts per expert or fused, shared experts, router and its bias, MTP",
    arguments: [
      ("deepseek-v3", "model.layers.3.mlp.experts.17.up_proj.weight_scale_inv", TensorRole.routedExpert, 3, 17, false, false),
      ("deepseek-v3", "model.layers.3.mlp.shared_experts.down_proj.weight", .sharedExpert, 3, nil, false, false),
      ("deepseek-v3", "model.layers.3.mlp.gate.e_score_correction_bias", .routerBias, 3, nil, false, false),
      ("deepseek-v3", "model.layers.3.mlp.gate.weight", .router, 3, nil, false, false),
      ("deepseek-v3", "model.layers.0.mlp.gate_proj.weight", .denseFeedForward, 0, nil, false, false),
      ("deepseek-v3", "model.layers.61.eh_proj.weight", .mtpProjection, 61, nil, false, true),
      ("deepseek-v3", "model.layers.61.self_attn.kv_a_layernorm.weight", .norm, 61, nil, false, true),
      ("deepseek-v3", "model.layers.2.mlp.experts.gate_up_proj", .routedExpert, 2, nil, true, false),
      ("deepseek-v3.2", "model.layers.5.self_attn.indexer.weights_proj.weight", .indexer, 5, nil, false, false),
      ("deepseek-v3.2", "model.layers.5.self_attn.indexer.k_norm.bias", .norm, 5, nil, false, false),
      ("minimax-m2", "model.layers.4.block_sparse_moe.experts.9.w2.weight", .routedExpert, 4, 9, false, false),
      ("minimax-m2", "model.layers.4.block_sparse_moe.e_score_correction_bias", .routerBias, 4, nil, false, false),
      ("minimax-m2", "model.layers.4.block_sparse_moe.gate.weight", .router, 4, nil, false, false),
      ("gpt-oss", "model.layers.1.mlp.experts.gate_up_proj_blocks", .routedExpert, 1, nil, true, false),
      ("gpt-oss", "model.layers.1.mlp.router.bias", .routerBias, 1, nil, false, false),
      ("gpt-oss", "model.layers.1.self_attn.sinks", .attention, 1, nil, false, false),
      ("qwen3.5-moe", "model.language_model.layers.0.linear_attn.in_proj_qkv.weight", .attention, 0, nil, false, false),
      ("qwen3.5-moe", "model.language_model.layers.0.mlp.shared_expert_gate.weight", .router, 0, nil, false, false),
      ("qwen3.5-moe", "mtp.layers.0.mlp.experts.3.up_proj.weight", .routedExpert, 40, 3, false, true),
      ("qwen3.5-moe", "mtp.fc.weight", .mtpProjection, nil, nil, false, true),
      ("deepseek-v4", "layers.7.ffn.experts.11.w3.scale", .routedExpert, 7, 11, false, false),
      ("deepseek-v4", "layers.7.ffn.gate.bias", .routerBias, 7, nil, false, false),
      ("deepseek-v4", "layers.7.attn.indexer.wq_b.weight", .indexer, 7, nil, false, false),
      ("deepseek-v4", "mtp.0.ffn.experts.2.w1.weight", .routedExpert, 40, 2, false, true),
      ("deepseek-v4", "embed.weight", .embedding, nil, nil, false, false),
      ("kimi-k2", "language_model.model.layers.1.mlp.experts.0.down_proj.weight_packed", .routedExpert, 1, 0, false, false),
      ("kimi-k2", "language_model.lm_head.weight", .outputHead, nil, nil, false, false),
    ] as [(String, String, TensorRole, Int?, Int?, Bool, Bool)])
  func classification(
    _ family: String, _ name: String, _ role: TensorRole, _ layer: Int?, _ expert: Int?, _ fused: Bool, _ mtp: Bool
  ) throws {
    let description = try #require(ModelFamily.known.first { $0.id == family })
    let trunk = family == "deepseek-v3" ? 61 : 40
    let place = TensorClassifier(family: description, trunkLayerCount: trunk).classify(name)
    #expect(place.role == role)
    #expect(place.layer == layer)
    #expect(place.expert == expert)
    #expect(place.isFusedExperts == fused)
    #expect(place.isMTP == mtp)
  }

  @Test("what each release quantizes: MiniMax's experts yes, V3.2's weights_proj no, gpt-oss's 4-bit only its experts")
  func releaseQuantization() throws {
    func quantizes(_ family: ModelFamily, _ name: String, _ width: QuantizationWidth, shape: [Int] = [128, 128]) -> Bool {
      family.releaseQuantizes(name, shape: shape, width: width, classifier: TensorClassifier(family: family, trunkLayerCount: 4))
    }
    #expect(quantizes(.miniMaxM2, "model.layers.0.block_sparse_moe.experts.3.w1.weight", .eightBit))
    #expect(!quantizes(.miniMaxM2, "model.layers.0.block_sparse_moe.gate.weight", .eightBit))
    #expect(quantizes(.deepSeekV32, "model.layers.0.self_attn.indexer.wq_b.weight", .eightBit))
    #expect(quantizes(.deepSeekV32, "model.layers.0.self_attn.indexer.wk.weight", .eightBit))
    #expect(!quantizes(.deepSeekV32, "model.layers.0.self_attn.indexer.weights_proj.weight", .eightBit))
    #expect(!quantizes(.gptOss, "model.layers.0.self_attn.q_proj.weight", .fourBit))
    #expect(quantizes(.kimiK2, "model.layers.1.mlp.experts.0.up_proj.weight", .fourBit))
    #expect(!quantizes(.kimiK2, "model.layers.1.self_attn.q_a_proj.weight", .fourBit))
    #expect(quantizes(.kimiK2, "model.layers.1.self_attn.q_a_proj.weight", .eightBit))
    #expect(!quantizes(.deepSeekV3, "model.layers.4.eh_proj.weight", .eightBit))
    #expect(!quantizes(.deepSeekV3, "model.layers.1.mlp.experts.gate_up_proj", .eightBit, shape: [4, 128, 128]))
    #expect(ModelFamily.deepSeekV32.keepsFullPrecision("model.layers.0.self_attn.indexer.k_norm.bias"))
    #expect(ModelFamily.miniMaxM2.keepsFullPrecision("model.layers.0.block_sparse_moe.gate.weight"))
  }

  @Test("configs are read in the release schema, transformers >= 5's and a nested text_config alike")
  func schemas() throws {
    let release = try Self.config("""
      {"model_type": "qwen3_moe", "num_experts": 8, "rope_theta": 1000000, "num_hidden_layers": 4,
       "decoder_sparse_step": 2, "mlp_only_layers": [3], "num_experts_per_tok": 2}
      """)
    let transformers = try Self.config("""
      {"model_type": "qwen3_moe", "num_local_experts": 8, "rope_parameters": {"rope_type": "default", "rope_theta": 1000000},
       "num_hidden_layers": 4, "mlp_layer_types": ["dense", "sparse", "dense", "dense"], "num_experts_per_tok": 2}
      """)
    #expect(release.routedExpertCount == 8 && transformers.routedExpertCount == 8)
    #expect(release.ropeTheta == 1_000_000 && transformers.ropeTheta == 1_000_000)
    let releaseLayout = try FeedForwardLayout(config: release, path: "config.json").kinds
    let transformersLayout = try FeedForwardLayout(config: transformers, path: "config.json").kinds
    #expect(releaseLayout == [.dense, .moe, .dense, .dense])
    #expect(transformersLayout == releaseLayout)

    let nested = try Self.config("""
      {"architectures": ["KimiK25ForConditionalGeneration"], "model_type": "kimi_k25",
       "text_config": {"model_type": "kimi_k2", "hidden_size": 7168, "n_routed_experts": 384, "num_hidden_layers": 61,
         "first_k_dense_replace": 1, "quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized"}}}
      """)
    #expect(nested.hiddenSize == 7168 && nested.routedExpertCount == 384 && nested.textModelType == "kimi_k2")
    #expect(nested.quantizationConfig?.format == "pack-quantized" && nested.quantizationConfig?.nestedInTextConfig == true)
    #expect(try FeedForwardLayout(config: nested, path: "config.json").kinds.filter { $0 == .dense }.count == 1)
  }

  @Test(
    "an unknown value of a field that decides the layout or the weight format is an error naming the field",
    arguments: [
      (#"{"num_hidden_layers": 2, "mlp_layer_types": ["dense", "weird"]}"#, "mlp_layer_types"),
      (#"{"num_hidden_layers": 2, "mlp_layer_types": ["dense"]}"#, "mlp_layer_types"),
      (#"{"num_hidden_layers": 2, "decoder_sparse_step": 0, "num_experts": 4}"#, "decoder_sparse_step"),
      (#"{"quantization_config": {"quant_method": "fp8", "fmt": "e5m2"}}"#, "quantization_config.fmt"),
      (#"{"quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "scale_fmt": "ue4m3"}}"#, "quantization_config.scale_fmt"),
      (#"{"model_type": "deepseek_v4", "quantization_config": {"quant_method": "fp8", "expert_dtype": "fp6"}}"#, "quantization_config.expert_dtype"),
      (#"{"rope_theta": 10000, "rope_parameters": {"rope_type": "default", "rope_theta": 50000}}"#, "rope_parameters.rope_theta"),
      (#"{"rope_theta": 50000, "rope_scaling": {"type": "yarn", "factor": 40, "rope_theta": 10000}}"#, "rope_scaling.rope_theta"),
    ])
  func unknownValues(_ json: String, _ field: String) throws {
    do {
      let config = try Self.config(json)
      try ModelFamily.detect(config).check(config, path: "config.json")
      Issue.record("accepted \(json)")
    } catch let error as CheckpointError {
      guard case .invalidConfig(_, let named, _) = error else {
        Issue.record("\(error)")
        return
      }
      #expect(named == field, "\(error)")
    }
  }
}
