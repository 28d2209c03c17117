import Checkpoint
import GGUF

/// Zhipu's GLM-4.5 / 4.6 / 4.7 (and -Air) as llama.cpp's `glm4moe` architecture, in the layout llama.cpp's converter
/// writes (`conversion/glm.py` `Glm4MoeModel`) and its loader reads (`src/models/glm4-moe.cpp`).
///
/// Grouped-query attention with q/k/v biases and optional QK-norm, partial rotary (`rope.dimension_count` =
/// `head_dim · partial_rotary_factor`), leading dense layers (`first_k_dense_replace`), then MoE layers with a
/// sigmoid router and its score-correction bias (`exp_probs_b.bias`), routed experts stacked per projection and
/// shared experts; the NextN (MTP) layer after the trunk is written as `blk.N.nextn.*` with its own attention and
/// MoE, counted in `block_count` (the converter's default; `keepMTP: false` = its `--no-mtp`). The traps:
/// llama.cpp's glm4moe routes with a sigmoid whatever the config says and knows only leading dense layers, so a
/// non-sigmoid `scoring_func` or a dense layer after an MoE one is refused rather than written as a GGUF that
/// computes something else; `post_attention_layernorm` is `post_attention_norm` here, not `ffn_norm`.
public enum Glm4Moe: GGUFArchitectureMapping {
  public static let architecture = "glm4moe"
  /// llama.cpp's pre-tokenizer for the GLM-4.5 BPE vocabulary.
  public static let preTokenizer = "glm4"
  /// `Glm4MoeModel.set_vocab` → `_set_vocab_glm`: `[gMASK]` as BOS, `<|user|>` as end of turn (`<|endoftext|>`
  /// there "causes endless generation"), `<|endoftext|>` as UNK, `<|observation|>` as end of message.
  public static let specialTokens: [(kind: String, content: String)] = [
    ("bos", "[gMASK]"), ("eot", "<|user|>"), ("unk", "<|endoftext|>"), ("eom", "<|observation|>"),
  ]

  /// The dimensions config.json fixes, checked once.
  struct Geometry {
    var hidden: Int
    var layers: Int
    var mtpLayers: Int
    var heads: Int
    var kvHeads: Int
    var headDim: Int
    var vocabulary: Int
    var experts: Int
    var expertIntermediate: Int
    var intermediate: Int
    var sharedExperts: Int
    var denseLayers: Int
    var tiedEmbeddings: Bool

    var blockCount: Int { layers + mtpLayers }

    init(_ config: ModelConfig, options: GGUFMappingOptions) throws(GGUFMappingFailure) {
      try Glm4Moe.requireFamily(config)
      hidden = try Glm4Moe.positive(config.hiddenSize, "hidden_size")
      layers = try Glm4Moe.positive(config.numHiddenLayers, "num_hidden_layers")
      mtpLayers = options.keepMTP ? max(0, config.numNextnPredictLayers ?? 0) : 0
      heads = try Glm4Moe.positive(config.numAttentionHeads, "num_attention_heads")
      kvHeads = try Glm4Moe.positive(config.numKeyValueHeads ?? config.numAttentionHeads, "num_key_value_heads")
      headDim = try Glm4Moe.positive(config.headDim ?? hidden / heads, "head_dim")
      vocabulary = try Glm4Moe.positive(config.vocabSize, "vocab_size")
      experts = try Glm4Moe.positive(config.nRoutedExperts, "n_routed_experts")
      _ = try Glm4Moe.positive(config.numExpertsPerTok, "num_experts_per_tok")
      expertIntermediate = try Glm4Moe.positive(config.moeIntermediateSize, "moe_intermediate_size")
      intermediate = try Glm4Moe.positive(config.intermediateSize, "intermediate_size")
      sharedExperts = max(0, config.nSharedExperts ?? 0)
      tiedEmbeddings = config.tieWordEmbeddings ?? false

      let layout: FeedForwardLayout
      do { layout = try FeedForwardLayout(config: config, path: "config.json") } catch {
        throw .invalidField("first_k_dense_replace", reason: "does not give a layer layout: \(error)")
      }
      denseLayers = layout.kinds.prefix { $0 == .dense }.count
      if let dense = layout.kinds.indices.dropFirst(denseLayers).first(where: { layout.kinds[$0] == .dense }) {
        throw .invalidField(
          config.mlpLayerTypes != nil ? "mlp_layer_types" : "moe_layer_freq",
          reason: "makes layer \(dense) dense after MoE layers; llama.cpp's glm4moe has leading dense layers only")
      }
      if let scoring = config.scoringFunc, scoring != "sigmoid" {
        throw .invalidField("scoring_func", reason: "is '\(scoring)'; llama.cpp's glm4moe routes with a sigmoid")
      }
      if let act = config.hiddenAct, act != "silu" {
        throw .invalidField("hidden_act", reason: "is '\(act)'; llama.cpp's glm4moe computes SiLU experts")
      }
    }
  }

  // MARK: metadata

  /// `general.architecture` and the `glm4moe.*` pairs in convert_hf_to_gguf.py's order
  /// (`TextModel.set_gguf_parameters`, then `Glm4MoeModel`'s rope width, experts, gating and NextN count).
  public static func hyperparameters(
    _ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions(), fileType: LlamaFileType? = nil
  ) throws(GGUFMappingFailure) -> GGUFMetadata {
    let g = try Geometry(config, options: options)
    var m = ArchitectureKeys(architecture)
    try m.textModel(
      config, blockCount: g.blockCount, hidden: g.hidden, feedForward: g.intermediate, heads: g.heads, kvHeads: g.kvHeads,
      experts: g.experts, headDim: config.headDim, rmsEpsilon: 1e-5, fileType: fileType)
    m.u32("rope.dimension_count", Int(Double(g.headDim) * (config.partialRotaryFactor ?? 0.5)))
    m.u32("expert_count", g.experts)
    m.u32("expert_feed_forward_length", g.expertIntermediate)
    if let shared = config.nSharedExperts { m.u32("expert_shared_count", shared) }
    if let dense = config.firstKDenseReplace { m.u32("leading_dense_block_count", dense) }
    m.u32("expert_gating_func", 2)  // sigmoid
    if let scale = config.routedScalingFactor { m.f32("expert_weights_scale", scale) }
    if let norm = config.normTopkProb { m.bool("expert_weights_norm", norm) }
    if g.mtpLayers > 0 { m.u32("nextn_predict_layers", g.mtpLayers) }
    return m.metadata
  }

  public static func quantizeModel(_ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions())
    throws(GGUFMappingFailure) -> LlamaQuantize.Model
  {
    let g = try Geometry(config, options: options)
    return LlamaQuantize.Model(
      architecture: architecture, expertCount: g.experts, headCount: g.heads, headCountKV: g.kvHeads, blockCount: g.blockCount)
  }

  // MARK: tensor names

  /// One-to-one tensors of a decoder block: GGUF name under `blk.N.`, Hugging Face name under `model.layers.N.`,
  /// and whether llama.cpp loads it only when present (biases without `attention_bias`, QK-norm without
  /// `use_qk_norm`).
  static let attentionNames: [(gguf: String, huggingFace: String, optional: Bool)] = [
    ("attn_norm.weight", "input_layernorm.weight", false),
    ("attn_q.weight", "self_attn.q_proj.weight", false), ("attn_q.bias", "self_attn.q_proj.bias", true),
    ("attn_k.weight", "self_attn.k_proj.weight", false), ("attn_k.bias", "self_attn.k_proj.bias", true),
    ("attn_v.weight", "self_attn.v_proj.weight", false), ("attn_v.bias", "self_attn.v_proj.bias", true),
    ("attn_output.weight", "self_attn.o_proj.weight", false),
    ("attn_q_norm.weight", "self_attn.q_norm.weight", true), ("attn_k_norm.weight", "self_attn.k_norm.weight", true),
    ("post_attention_norm.weight", "post_attention_layernorm.weight", false),
  ]

  /// Every GGUF tensor, from the checkpoint's logical weight shapes (per-expert `mlp.experts.E.*_proj`, as the
  /// releases store them; FP8 `weight_scale_inv` companions belong to the weight they scale).
  ///
  /// - Throws: `GGUFMappingFailure` for a missing tensor, a shape config.json contradicts, or a tensor with no
  ///   GGUF name.
  public static func tensors(
    _ config: ModelConfig, shapes: [String: [Int]], options: GGUFMappingOptions = GGUFMappingOptions()
  ) throws(GGUFMappingFailure) -> [GGUFTensorPlan] {
    let g = try Geometry(config, options: options)
    var b = TensorPlanBuilder(shapes: shapes)
    let q = g.heads * g.headDim, kv = g.kvHeads * g.headDim, ff = g.intermediate
    let expected: [String: [Int]] = [
      "attn_norm.weight": [g.hidden], "attn_q.weight": [q, g.hidden], "attn_q.bias": [q], "attn_k.weight": [kv, g.hidden],
      "attn_k.bias": [kv], "attn_v.weight": [kv, g.hidden], "attn_v.bias": [kv], "attn_output.weight": [g.hidden, q],
      "attn_q_norm.weight": [g.headDim], "attn_k_norm.weight": [g.headDim], "post_attention_norm.weight": [g.hidden],
    ]
    try b.copy("token_embd.weight", "model.embed_tokens.weight", [g.vocabulary, g.hidden])
    for layer in 0..<g.blockCount {
      let hf = "model.layers.\(layer)."
      let blk = "blk.\(layer)."
      for (gguf, name, optional) in attentionNames where !optional || b.has(hf + name) {
        try b.copy(blk + gguf, hf + name, expected[gguf]!)
      }
      if layer < g.denseLayers {
        try b.copy(blk + "ffn_gate.weight", hf + "mlp.gate_proj.weight", [ff, g.hidden])
        try b.copy(blk + "ffn_up.weight", hf + "mlp.up_proj.weight", [ff, g.hidden])
        try b.copy(blk + "ffn_down.weight", hf + "mlp.down_proj.weight", [g.hidden, ff])
      } else {
        try b.copy(blk + "ffn_gate_inp.weight", hf + "mlp.gate.weight", [g.experts, g.hidden])
        try b.copy(blk + "exp_probs_b.bias", hf + "mlp.gate.e_score_correction_bias", [g.experts])
        try b.stackExperts(hf: hf, blk: blk, experts: g.experts, hidden: g.hidden, intermediate: g.expertIntermediate)
        if g.sharedExperts > 0 {
          let shared = g.expertIntermediate * g.sharedExperts
          try b.copy(blk + "ffn_gate_shexp.weight", hf + "mlp.shared_experts.gate_proj.weight", [shared, g.hidden])
          try b.copy(blk + "ffn_up_shexp.weight", hf + "mlp.shared_experts.up_proj.weight", [shared, g.hidden])
          try b.copy(blk + "ffn_down_shexp.weight", hf + "mlp.shared_experts.down_proj.weight", [g.hidden, shared])
        }
      }
      if layer >= g.layers { try b.nextn(layer: layer, hidden: g.hidden, vocabulary: g.vocabulary) }
    }
    try b.copy("output_norm.weight", "model.norm.weight", [g.hidden])
    if g.tiedEmbeddings {
      // glm4-moe.cpp falls back to token_embd.weight when output.weight is absent.
      b.skip("lm_head.weight")
    } else {
      try b.copy("output.weight", "lm_head.weight", [g.vocabulary, g.hidden])
    }
    // The NextN layer(s), when dropped (`--drop-mtp`, the converter's --no-mtp), are left out.
    return try b.finish { name in g.mtpLayers == 0 && (TensorPlanBuilder.layer(of: name).map { $0 >= g.layers } ?? false) }
  }

  /// The converter's order: each tensor when it is read, a layer's expert stacks (down, gate, up) once its last
  /// routed expert has been read (`Glm4MoeModel.modify_tensors`).
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    expertStackingOrder(plan, sourceOrder: sourceOrder)
  }
}
