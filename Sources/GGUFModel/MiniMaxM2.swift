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
    var hidden: Int
    var layers: Int
    var heads: Int
    var kvHeads: Int
    var headDim: Int
    var rotaryDim: Int
    var vocabulary: Int
    var experts: Int
    var intermediate: Int

    init(_ config: ModelConfig) throws(GGUFMappingFailure) {
      try MiniMaxM2.requireFamily(config)
      hidden = try MiniMaxM2.positive(config.hiddenSize, "hidden_size")
      layers = try MiniMaxM2.positive(config.numHiddenLayers, "num_hidden_layers")
      heads = try MiniMaxM2.positive(config.numAttentionHeads, "num_attention_heads")
      kvHeads = try MiniMaxM2.positive(config.numKeyValueHeads ?? config.numAttentionHeads, "num_key_value_heads")
      headDim = try MiniMaxM2.positive(config.headDim ?? hidden / heads, "head_dim")
      rotaryDim = try MiniMaxM2.positive(config.rotaryDim, "rotary_dim")
      vocabulary = try MiniMaxM2.positive(config.vocabSize, "vocab_size")
      experts = try MiniMaxM2.positive(config.numLocalExperts ?? config.numExperts, "num_local_experts")
      _ = try MiniMaxM2.positive(config.numExpertsPerTok, "num_experts_per_tok")
      intermediate = try MiniMaxM2.positive(config.intermediateSize, "intermediate_size")
      guard rotaryDim <= headDim else {
        throw .invalidField("rotary_dim", reason: "is \(rotaryDim), more than head_dim \(headDim)")
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
      if config.tieWordEmbeddings == true {
        throw .invalidField("tie_word_embeddings", reason: "is true; llama.cpp's minimax-m2 requires its own output.weight")
      }
      if let act = config.hiddenAct, act != "silu" {
        throw .invalidField("hidden_act", reason: "is '\(act)'; llama.cpp's minimax-m2 computes SiLU experts")
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
    var m = ArchitectureKeys(architecture)
    try m.textModel(
      config, blockCount: g.layers, hidden: g.hidden, feedForward: g.intermediate, heads: g.heads, kvHeads: g.kvHeads,
      experts: g.experts, headDim: config.headDim, rmsEpsilon: 1e-6, fileType: fileType)
    m.u32("expert_feed_forward_length", g.intermediate)
    m.u32("rope.dimension_count", g.rotaryDim)
    return m.metadata
  }

  public static func quantizeModel(_ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions())
    throws(GGUFMappingFailure) -> LlamaQuantize.Model
  {
    let g = try Geometry(config)
    return LlamaQuantize.Model(architecture: architecture, expertCount: g.experts, headCount: g.heads, headCountKV: g.kvHeads, blockCount: g.layers)
  }

  // MARK: tensor names

  /// One-to-one tensors of a decoder block: GGUF name under `blk.N.`, Hugging Face name under `model.layers.N.`.
  static let blockNames: [(gguf: String, huggingFace: String)] = [
    ("attn_norm.weight", "input_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"), ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_v.weight", "self_attn.v_proj.weight"), ("attn_output.weight", "self_attn.o_proj.weight"),
    ("attn_q_norm.weight", "self_attn.q_norm.weight"), ("attn_k_norm.weight", "self_attn.k_norm.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("ffn_gate_inp.weight", "block_sparse_moe.gate.weight"), ("exp_probs_b.bias", "block_sparse_moe.e_score_correction_bias"),
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
    var b = TensorPlanBuilder(shapes: shapes)
    let q = g.heads * g.headDim, kv = g.kvHeads * g.headDim
    let expected: [String: [Int]] = [
      "attn_norm.weight": [g.hidden], "attn_q.weight": [q, g.hidden], "attn_k.weight": [kv, g.hidden],
      "attn_v.weight": [kv, g.hidden], "attn_output.weight": [g.hidden, q], "attn_q_norm.weight": [q],
      "attn_k_norm.weight": [kv], "ffn_norm.weight": [g.hidden], "ffn_gate_inp.weight": [g.experts, g.hidden],
      "exp_probs_b.bias": [g.experts],
    ]
    try b.copy("token_embd.weight", "model.embed_tokens.weight", [g.vocabulary, g.hidden])
    for layer in 0..<g.layers {
      let hf = "model.layers.\(layer)."
      let blk = "blk.\(layer)."
      for (gguf, name) in blockNames { try b.copy(blk + gguf, hf + name, expected[gguf]!) }
      try b.stackExperts(
        hf: hf, blk: blk, experts: g.experts, hidden: g.hidden, intermediate: g.intermediate,
        container: "block_sparse_moe.experts", stacks: expertStacks)
    }
    try b.copy("output_norm.weight", "model.norm.weight", [g.hidden])
    try b.copy("output.weight", "lm_head.weight", [g.vocabulary, g.hidden])
    return try b.finish()
  }

  /// The converter's order: each tensor when it is read, a layer's expert stacks (gate, down, up) once its last
  /// expert has been read (`MiniMaxM2Model.modify_tensors`).
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    expertStackingOrder(plan, sourceOrder: sourceOrder, stacks: expertStacks)
  }
}
