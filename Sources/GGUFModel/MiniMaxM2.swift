import Checkpoint
import GGUF
import JSON

/// MiniMax-M2 (M2, M2.1, M2.5) as llama.cpp's `minimax-m2` architecture, in the layout llama.cpp's converter
/// writes (`conversion/minimax.py` `MiniMaxM2Model`) and its loader reads (`src/models/minimax-m2.cpp`).
///
/// Grouped-query attention with QK-norm over all heads at once (`attn_q_norm {heads·d}`, `attn_k_norm {kv·d}`),
/// partial rotary (`rope.dimension_count = rotary_dim`), every layer MoE with a sigmoid router and its
/// score-correction bias, Mixtral-named experts (`block_sparse_moe.experts.E.w1/w3/w2` = gate/up/down), no shared
/// expert. The traps: llama.cpp's minimax-m2 requires the QK-norms, the router bias and `output.weight`, and always
/// renormalizes the top-k weights, so `use_qk_norm: false`, a `qk_norm_type` other than `per_layer`,
/// `use_routing_bias: false`, a shared expert or tied embeddings are refused rather than written as a GGUF that
/// llama.cpp cannot load or computes differently.
public enum MiniMaxM2: GGUFArchitectureMapping {
  public static let architecture = "minimax-m2"
  /// llama.cpp's pre-tokenizer for the MiniMax-M2 BPE vocabulary.
  public static let preTokenizer = "minimax-m2"

  /// The converter stacks `w1, w2, w3` in that order: gate, down, up.
  static let expertStacks: [(gguf: String, projection: String)] = [
    ("ffn_gate_exps.weight", "w1"), ("ffn_down_exps.weight", "w2"), ("ffn_up_exps.weight", "w3"),
  ]

  /// The dimensions config.json fixes, checked once.
  struct Geometry {
    var attention: AttentionGeometry
    var rotaryDim: Int
    var intermediate: Int

    init(_ config: ModelConfig) throws(GGUFMappingFailure) {
      attention = try AttentionGeometry(
        config, architecture: MiniMaxM2.architecture, experts: config.numLocalExperts ?? config.numExperts,
        expertsField: "num_local_experts")
      rotaryDim = try positive(config.rotaryDim, "rotary_dim")
      intermediate = try positive(config.intermediateSize, "intermediate_size")
      guard rotaryDim <= attention.headDim else {
        throw .invalidField("rotary_dim", reason: "is \(rotaryDim), more than head_dim \(attention.headDim)")
      }
      if config.useQkNorm == false {
        throw .invalidField("use_qk_norm", reason: "is false; llama.cpp's minimax-m2 requires the QK-norm tensors")
      }
      if let type = config.qkNormType, type != "per_layer" {
        throw .invalidField("qk_norm_type", reason: "is '\(type)'; llama.cpp's minimax-m2 normalizes all heads at once (per_layer)")
      }
      if config.useRoutingBias == false {
        throw .invalidField("use_routing_bias", reason: "is false; llama.cpp's minimax-m2 requires the router bias (exp_probs_b)")
      }
      if let shared = config.raw["shared_intermediate_size"]?.intValue, shared > 0 {
        throw .invalidField("shared_intermediate_size", reason: "is \(shared); llama.cpp's minimax-m2 has no shared expert")
      }
      if attention.tiedEmbeddings {
        throw .invalidField("tie_word_embeddings", reason: "is true; llama.cpp's minimax-m2 requires its own output.weight")
      }
    }
  }

  // MARK: metadata

  /// `general.architecture` and the `minimax-m2.*` pairs in convert_hf_to_gguf.py's order
  /// (`TextModel.set_gguf_parameters`, then the expert width and the rope width).
  public static func hyperparameters(
    _ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions(), fileType: LlamaFileType? = nil
  ) throws(GGUFMappingFailure) -> GGUFMetadata {
    let g = try Geometry(config)
    var m = try g.attention.keys(config, architecture: architecture, feedForward: g.intermediate, rmsEpsilon: 1e-6, fileType: fileType)
    m.u32("expert_feed_forward_length", g.intermediate)
    m.u32("rope.dimension_count", g.rotaryDim)
    return m.metadata
  }

  public static func quantizeModel(_ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions())
    throws(GGUFMappingFailure) -> LlamaQuantize.Model
  {
    try Geometry(config).attention.quantizeModel(architecture: architecture)
  }

  // MARK: tensor names

  /// One-to-one tensors of a decoder block.
  static let blockTensors: [BlockTensor] =
    BlockTensor.attention(biases: .none) + BlockTensor.queryKeyNorms() + [
      BlockTensor("ffn_norm.weight", "post_attention_layernorm.weight"),
      BlockTensor("ffn_gate_inp.weight", "block_sparse_moe.gate.weight"),
      BlockTensor("exp_probs_b.bias", "block_sparse_moe.e_score_correction_bias"),
    ]

  /// Every GGUF tensor, from the checkpoint's logical weight shapes (per-expert `block_sparse_moe.experts.E.w*`, as
  /// the releases store them; FP8 `weight_scale_inv` companions belong to the weight they scale).
  ///
  /// - Throws: `GGUFMappingFailure` for a missing tensor, a shape config.json contradicts, or a tensor with no
  ///   GGUF name.
  public static func tensors(
    _ config: ModelConfig, shapes: [String: [Int]], options: GGUFMappingOptions = GGUFMappingOptions()
  ) throws(GGUFMappingFailure) -> [GGUFTensorPlan] {
    let g = try Geometry(config)
    let a = g.attention
    var b = TensorPlanBuilder(shapes: shapes)
    var expected = a.blockShapes
    // QK-norm over all heads at once (`per_layer`), not per head.
    expected["attn_q_norm.weight"] = [a.queryWidth]
    expected["attn_k_norm.weight"] = [a.keyValueWidth]
    try b.copy("token_embd.weight", "model.embed_tokens.weight", [a.vocabulary, a.hidden])
    for layer in 0..<a.layers {
      try b.copyBlock(layer, blockTensors, shapes: expected)
      try b.stackExperts(
        hf: "model.layers.\(layer).", blk: "blk.\(layer).", experts: a.experts, hidden: a.hidden, intermediate: g.intermediate,
        container: "block_sparse_moe.experts", stacks: expertStacks)
    }
    try b.copy("output_norm.weight", "model.norm.weight", [a.hidden])
    try b.copy("output.weight", "lm_head.weight", [a.vocabulary, a.hidden])
    return try b.finish()
  }

  // MARK: reading a GGUF

  /// The Hugging Face tensors a minimax-m2 GGUF holds, in the GGUF's order: every tensor mapped back by name, the
  /// expert stacks split per expert (`block_sparse_moe.experts.E.w1/w2/w3`, zero-copy slabs).
  ///
  /// - Throws: `.unknownGGUFTensor` for a name outside the map, `.inconsistentGGUFTensor` for a stack that is not 3-D.
  public static func storedTensors(_ tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> [GGUFStoredTensor] {
    try GGUFStoredTensor.reading(
      tensors, globals: standardGlobalTensors, block: blockTensors, stacks: expertStacks, container: "block_sparse_moe.experts")
  }

  /// The `config.json` of the model a minimax-m2 GGUF holds (the release schema): the inverse of `hyperparameters`,
  /// with what llama.cpp's minimax-m2 always computes — QK-norm over all heads, a sigmoid router with its bias,
  /// renormalized top-k, no shared expert.
  public static func huggingFaceConfig(_ metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> JSONObject {
    let m = try ArchitectureMetadata(metadata, architecture: architecture)
    func integer(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    guard m.int("expert_gating_func") == 2 else { throw .missingKey("\(architecture).expert_gating_func (2, sigmoid)") }
    var c = try m.groupedQueryConfig(architectures: ["MiniMaxM2ForCausalLM"], modelType: "minimax_m2", tensors: tensors)
    c["intermediate_size"] = integer(try m.need("expert_feed_forward_length"))
    c["num_local_experts"] = integer(try m.need("expert_count"))
    c["num_experts_per_tok"] = integer(try m.need("expert_used_count"))
    c["rotary_dim"] = integer(try m.need("rope.dimension_count"))
    c["scoring_func"] = "sigmoid"
    c["use_routing_bias"] = true
    c["use_qk_norm"] = true
    c["qk_norm_type"] = "per_layer"
    c["shared_intermediate_size"] = 0
    return c
  }

  /// The converter's order: each tensor when it is read, a layer's expert stacks (gate, down, up) once its last
  /// expert has been read (`MiniMaxM2Model.modify_tensors`).
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    expertStackingOrder(plan, sourceOrder: sourceOrder, stacks: expertStacks)
  }
}
