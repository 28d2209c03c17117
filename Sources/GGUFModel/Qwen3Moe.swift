import Checkpoint
import GGUF

/// Qwen3-MoE (Qwen3-30B-A3B, 235B-A22B, Coder-480B-A35B) as llama.cpp's `qwen3moe` architecture, in the layout
/// llama.cpp's converter writes (`conversion/qwen.py` `Qwen3MoeModel` over `Qwen2MoeModel`) and its loader reads
/// (`src/models/qwen3moe.cpp`).
///
/// Grouped-query attention with per-head QK-norm (`attn_q_norm` / `attn_k_norm`), optional q/k/v biases, a
/// softmax router without bias and routed experts stacked per projection (no shared expert). The traps:
/// llama.cpp's qwen3moe has no dense layers (every block builds the MoE branch), always renormalizes the top-k
/// weights, and knows no sliding window — so `mlp_only_layers`, `decoder_sparse_step` > 1,
/// `norm_topk_prob: false` and `use_sliding_window: true` are refused rather than written as a GGUF that
/// computes something else.
public enum Qwen3Moe: GGUFArchitectureMapping {
  public static let architecture = "qwen3moe"
  /// llama.cpp's pre-tokenizer for the Qwen2/Qwen3 BPE vocabulary.
  public static let preTokenizer = "qwen2"

  /// The dimensions config.json fixes, checked once.
  struct Geometry {
    var hidden: Int
    var layers: Int
    var heads: Int
    var kvHeads: Int
    var headDim: Int
    var vocabulary: Int
    var experts: Int
    var expertIntermediate: Int
    var intermediate: Int?
    var tiedEmbeddings: Bool

    init(_ config: ModelConfig) throws(GGUFMappingFailure) {
      try Qwen3Moe.requireFamily(config)
      hidden = try Qwen3Moe.positive(config.hiddenSize, "hidden_size")
      layers = try Qwen3Moe.positive(config.numHiddenLayers, "num_hidden_layers")
      heads = try Qwen3Moe.positive(config.numAttentionHeads, "num_attention_heads")
      kvHeads = try Qwen3Moe.positive(config.numKeyValueHeads ?? config.numAttentionHeads, "num_key_value_heads")
      headDim = try Qwen3Moe.positive(config.headDim ?? hidden / heads, "head_dim")
      vocabulary = try Qwen3Moe.positive(config.vocabSize, "vocab_size")
      experts = try Qwen3Moe.positive(config.routedExpertCount, "num_experts")
      _ = try Qwen3Moe.positive(config.numExpertsPerTok, "num_experts_per_tok")
      expertIntermediate = try Qwen3Moe.positive(config.moeIntermediateSize, "moe_intermediate_size")
      intermediate = config.intermediateSize
      tiedEmbeddings = config.tieWordEmbeddings ?? false

      let layout: FeedForwardLayout
      do { layout = try FeedForwardLayout(config: config, path: "config.json") } catch {
        throw .invalidField("mlp_only_layers", reason: "does not give a layer layout: \(error)")
      }
      if let dense = layout.kinds.firstIndex(of: .dense) {
        let field = config.mlpLayerTypes != nil ? "mlp_layer_types" : (config.mlpOnlyLayers ?? []).isEmpty ? "decoder_sparse_step" : "mlp_only_layers"
        throw .invalidField(field, reason: "makes layer \(dense) dense; llama.cpp's qwen3moe builds every layer as MoE")
      }
      if config.normTopkProb == false {
        throw .invalidField("norm_topk_prob", reason: "is false; llama.cpp's qwen3moe always renormalizes the top-k expert weights")
      }
      if config.useSlidingWindow == true {
        throw .invalidField("use_sliding_window", reason: "is true; llama.cpp's qwen3moe has no sliding-window attention")
      }
      if let shared = config.sharedExpertIntermediateSize, shared > 0 {
        throw .invalidField("shared_expert_intermediate_size", reason: "is \(shared); llama.cpp's qwen3moe has no shared expert")
      }
      if let act = config.hiddenAct, act != "silu" {
        throw .invalidField("hidden_act", reason: "is '\(act)'; llama.cpp's qwen3moe computes SiLU experts")
      }
    }
  }

  // MARK: metadata

  /// `general.architecture` and the `qwen3moe.*` pairs in convert_hf_to_gguf.py's order
  /// (`TextModel.set_gguf_parameters`, then `Qwen2MoeModel`'s expert width).
  public static func hyperparameters(
    _ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions(), fileType: LlamaFileType? = nil
  ) throws(GGUFMappingFailure) -> GGUFMetadata {
    let g = try Geometry(config)
    var m = ArchitectureKeys(architecture)
    try m.textModel(
      config, blockCount: g.layers, hidden: g.hidden, feedForward: g.intermediate, heads: g.heads, kvHeads: g.kvHeads,
      experts: g.experts, headDim: config.headDim, rmsEpsilon: 1e-6, fileType: fileType)
    m.u32("expert_feed_forward_length", g.expertIntermediate)
    return m.metadata
  }

  public static func quantizeModel(_ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions())
    throws(GGUFMappingFailure) -> LlamaQuantize.Model
  {
    let g = try Geometry(config)
    return LlamaQuantize.Model(architecture: architecture, expertCount: g.experts, headCount: g.heads, headCountKV: g.kvHeads, blockCount: g.layers)
  }

  // MARK: tensor names

  /// One-to-one tensors of a decoder block: GGUF name under `blk.N.`, Hugging Face name under `model.layers.N.`;
  /// `optional` ones (the q/k/v biases of `attention_bias: true`) are written when the checkpoint has them.
  static let blockNames: [(gguf: String, huggingFace: String, optional: Bool)] = [
    ("attn_norm.weight", "input_layernorm.weight", false),
    ("attn_q.weight", "self_attn.q_proj.weight", false), ("attn_q.bias", "self_attn.q_proj.bias", true),
    ("attn_k.weight", "self_attn.k_proj.weight", false), ("attn_k.bias", "self_attn.k_proj.bias", true),
    ("attn_v.weight", "self_attn.v_proj.weight", false), ("attn_v.bias", "self_attn.v_proj.bias", true),
    ("attn_output.weight", "self_attn.o_proj.weight", false),
    ("attn_q_norm.weight", "self_attn.q_norm.weight", false), ("attn_k_norm.weight", "self_attn.k_norm.weight", false),
    ("ffn_norm.weight", "post_attention_layernorm.weight", false),
    ("ffn_gate_inp.weight", "mlp.gate.weight", false),
  ]

  /// Every GGUF tensor, from the checkpoint's logical weight shapes (per-expert `mlp.experts.E.*_proj`, as the
  /// releases store them; FP8 `weight_scale_inv` companions belong to the weight they scale).
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
      "attn_norm.weight": [g.hidden], "attn_q.weight": [q, g.hidden], "attn_q.bias": [q], "attn_k.weight": [kv, g.hidden],
      "attn_k.bias": [kv], "attn_v.weight": [kv, g.hidden], "attn_v.bias": [kv], "attn_output.weight": [g.hidden, q],
      "attn_q_norm.weight": [g.headDim], "attn_k_norm.weight": [g.headDim], "ffn_norm.weight": [g.hidden],
      "ffn_gate_inp.weight": [g.experts, g.hidden],
    ]
    try b.copy("token_embd.weight", "model.embed_tokens.weight", [g.vocabulary, g.hidden])
    for layer in 0..<g.layers {
      let hf = "model.layers.\(layer)."
      let blk = "blk.\(layer)."
      for (gguf, name, optional) in blockNames where !optional || b.has(hf + name) {
        try b.copy(blk + gguf, hf + name, expected[gguf]!)
      }
      try b.stackExperts(hf: hf, blk: blk, experts: g.experts, hidden: g.hidden, intermediate: g.expertIntermediate)
    }
    try b.copy("output_norm.weight", "model.norm.weight", [g.hidden])
    if g.tiedEmbeddings {
      // qwen3moe.cpp falls back to token_embd.weight when output.weight is absent; the converter writes none.
      b.skip("lm_head.weight")
    } else {
      try b.copy("output.weight", "lm_head.weight", [g.vocabulary, g.hidden])
    }
    return try b.finish()
  }

  /// The converter's order: each tensor when it is read, a layer's expert stacks (down, gate, up) once its last
  /// routed expert has been read (`Qwen2MoeModel.modify_tensors`).
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    expertStackingOrder(plan, sourceOrder: sourceOrder)
  }
}
