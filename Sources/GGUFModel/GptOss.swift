import Checkpoint
import GGUF

/// OpenAI's gpt-oss as llama.cpp's `gpt-oss` architecture (`LLM_ARCH_OPENAI_MOE`), in the layout llama.cpp's
/// converter writes (`conversion/gpt_oss.py` `GptOssModel`) and its loader reads (`src/models/openai-moe.cpp`).
///
/// The fused experts are split: `gate_up_proj` interleaves gate and up rows (gate = rows 0, 2, 4, ...), so
/// `ffn_gate_exps` / `ffn_up_exps` take every other row of it, and `gate_up_proj_bias` every other entry; the
/// MXFP4 blocks move into ggml's MXFP4 unchanged where the chosen type is MXFP4 (the runner's repack; the
/// converter's `repack_mxfp4`). Attention has biases and per-head sinks (`attn_sinks.weight`); the router has
/// a bias. The traps: llama.cpp hard-codes the clamped SwiGLU (alpha 1.702, limit 7) and alternates sliding
/// and full attention from layer 0 (`load_swa_pattern(ml, 2)`), so a config asking for anything else is
/// refused rather than written as a GGUF that computes something else; its `output.weight` is required, so
/// tied embeddings are written twice.
public enum GptOss: GGUFArchitectureMapping {
  public static let architecture = "gpt-oss"
  /// llama.cpp's pre-tokenizer for the o200k_harmony vocabulary gpt-oss ships.
  public static let preTokenizer = "gpt-4o"

  /// The SwiGLU constants llama.cpp's `LLM_FFN_SWIGLU_OAI_MOE` uses (llama-graph.cpp).
  static let swigluAlpha = 1.702
  static let swigluLimit = 7.0

  /// The dimensions config.json fixes, checked once.
  struct Geometry {
    var hidden: Int
    var layers: Int
    var heads: Int
    var kvHeads: Int
    var headDim: Int
    var vocabulary: Int
    var experts: Int
    var expertsUsed: Int
    var intermediate: Int
    var slidingWindow: Int
    var tiedEmbeddings: Bool

    init(_ config: ModelConfig) throws(GGUFMappingFailure) {
      try GptOss.requireFamily(config)
      hidden = try GptOss.positive(config.hiddenSize, "hidden_size")
      layers = try GptOss.positive(config.numHiddenLayers, "num_hidden_layers")
      heads = try GptOss.positive(config.numAttentionHeads, "num_attention_heads")
      kvHeads = try GptOss.positive(config.numKeyValueHeads, "num_key_value_heads")
      headDim = try GptOss.positive(config.headDim ?? hidden / heads, "head_dim")
      vocabulary = try GptOss.positive(config.vocabSize, "vocab_size")
      experts = try GptOss.positive(config.numLocalExperts ?? config.routedExpertCount, "num_local_experts")
      expertsUsed = try GptOss.positive(config.numExpertsPerTok, "num_experts_per_tok")
      intermediate = try GptOss.positive(config.intermediateSize, "intermediate_size")
      slidingWindow = try GptOss.positive(config.slidingWindow, "sliding_window")
      tiedEmbeddings = config.tieWordEmbeddings ?? false
      if let limit = config.swigluLimit, limit != GptOss.swigluLimit {
        throw .invalidField("swiglu_limit", reason: "is \(limit); llama.cpp's gpt-oss computes with \(GptOss.swigluLimit)")
      }
      if let alpha = config.swigluAlpha, alpha != GptOss.swigluAlpha {
        throw .invalidField("swiglu_alpha", reason: "is \(alpha); llama.cpp's gpt-oss computes with \(GptOss.swigluAlpha)")
      }
      if let types = config.layerTypes {
        let alternating = (0..<layers).map { $0 % 2 == 0 ? "sliding_attention" : "full_attention" }
        guard types == alternating else {
          throw .invalidField(
            "layer_types", reason: "is \(types); llama.cpp's gpt-oss alternates sliding_attention and full_attention from layer 0")
        }
      }
    }
  }

  // MARK: metadata

  /// `general.architecture` and the `gpt-oss.*` pairs in convert_hf_to_gguf.py's order
  /// (`TextModel.set_gguf_parameters`, then `GptOssModel`'s sliding window and expert width).
  public static func hyperparameters(
    _ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions(), fileType: LlamaFileType? = nil
  ) throws(GGUFMappingFailure) -> GGUFMetadata {
    let g = try Geometry(config)
    var m = ArchitectureKeys(architecture)
    try m.textModel(
      config, blockCount: g.layers, hidden: g.hidden, feedForward: g.intermediate, heads: g.heads, kvHeads: g.kvHeads,
      experts: g.experts, headDim: g.headDim, rmsEpsilon: 1e-5, fileType: fileType)
    m.u32("attention.sliding_window", g.slidingWindow)
    m.u32("expert_feed_forward_length", g.intermediate)
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
    ("attn_q.weight", "self_attn.q_proj.weight"), ("attn_q.bias", "self_attn.q_proj.bias"),
    ("attn_k.weight", "self_attn.k_proj.weight"), ("attn_k.bias", "self_attn.k_proj.bias"),
    ("attn_v.weight", "self_attn.v_proj.weight"), ("attn_v.bias", "self_attn.v_proj.bias"),
    ("attn_output.weight", "self_attn.o_proj.weight"), ("attn_output.bias", "self_attn.o_proj.bias"),
    ("attn_sinks.weight", "self_attn.sinks"),
    ("post_attention_norm.weight", "post_attention_layernorm.weight"),
    ("ffn_gate_inp.weight", "mlp.router.weight"), ("ffn_gate_inp.bias", "mlp.router.bias"),
  ]
  static let gateUp = "mlp.experts.gate_up_proj"
  static let down = "mlp.experts.down_proj"

  /// Every GGUF tensor, from the checkpoint's logical weight shapes. Fused experts are read `[E, out, in]`
  /// (`gate_up_proj [E, 2I, H]`, `down_proj [E, H, I]`; the caller flags a source decoded input-major).
  ///
  /// - Throws: `GGUFMappingFailure` for a missing tensor, a shape config.json contradicts, or a tensor with no
  ///   GGUF name.
  public static func tensors(
    _ config: ModelConfig, shapes: [String: [Int]], options: GGUFMappingOptions = GGUFMappingOptions()
  ) throws(GGUFMappingFailure) -> [GGUFTensorPlan] {
    let g = try Geometry(config)
    var b = TensorPlanBuilder(shapes: shapes)
    /// `ne = [C, M / stride, E]` from every `stride`-th row (or bias entry) of each expert.
    func experts(_ gguf: String, _ hf: String, rows: Int, columns: Int?, stride: Int, offset: Int) {
      let dimensions = (columns.map { [$0] } ?? []) + [rows / stride, g.experts]
      b.append(GGUFTensorPlan(name: gguf, dimensions: dimensions, source: .fusedExperts(hf, stride: stride, offset: offset, inputMajor: false)))
    }

    let q = g.heads * g.headDim, kv = g.kvHeads * g.headDim, ff = g.intermediate
    try b.copy("token_embd.weight", "model.embed_tokens.weight", [g.vocabulary, g.hidden])
    for layer in 0..<g.layers {
      let hf = "model.layers.\(layer)."
      let blk = "blk.\(layer)."
      let expected: [String: [Int]] = [
        "attn_norm.weight": [g.hidden], "attn_q.weight": [q, g.hidden], "attn_q.bias": [q], "attn_k.weight": [kv, g.hidden],
        "attn_k.bias": [kv], "attn_v.weight": [kv, g.hidden], "attn_v.bias": [kv], "attn_output.weight": [g.hidden, q],
        "attn_output.bias": [g.hidden], "attn_sinks.weight": [g.heads], "post_attention_norm.weight": [g.hidden],
        "ffn_gate_inp.weight": [g.experts, g.hidden], "ffn_gate_inp.bias": [g.experts],
      ]
      for (gguf, name) in blockNames { try b.copy(blk + gguf, hf + name, expected[gguf]!) }
      // GptOssModel.generate_extra_tensors / modify_tensors: gate = even rows, up = odd rows.
      try b.check(hf + gateUp, [g.experts, 2 * ff, g.hidden])
      try b.check(hf + gateUp + "_bias", [g.experts, 2 * ff])
      try b.check(hf + down, [g.experts, g.hidden, ff])
      try b.check(hf + down + "_bias", [g.experts, g.hidden])
      experts(blk + "ffn_gate_exps.weight", hf + gateUp, rows: 2 * ff, columns: g.hidden, stride: 2, offset: 0)
      experts(blk + "ffn_up_exps.weight", hf + gateUp, rows: 2 * ff, columns: g.hidden, stride: 2, offset: 1)
      experts(blk + "ffn_down_exps.weight", hf + down, rows: g.hidden, columns: ff, stride: 1, offset: 0)
      experts(blk + "ffn_gate_exps.bias", hf + gateUp + "_bias", rows: 2 * ff, columns: nil, stride: 2, offset: 0)
      experts(blk + "ffn_up_exps.bias", hf + gateUp + "_bias", rows: 2 * ff, columns: nil, stride: 2, offset: 1)
      experts(blk + "ffn_down_exps.bias", hf + down + "_bias", rows: g.hidden, columns: nil, stride: 1, offset: 0)
    }
    try b.copy("output_norm.weight", "model.norm.weight", [g.hidden])
    if g.tiedEmbeddings, !b.has("lm_head.weight") {
      // openai-moe.cpp requires output.weight: the tied head is the embedding.
      b.append(GGUFTensorPlan(name: "output.weight", dimensions: [g.hidden, g.vocabulary], source: .tensor("model.embed_tokens.weight")))
    } else {
      try b.copy("output.weight", "lm_head.weight", [g.vocabulary, g.hidden])
    }
    return try b.finish()
  }

  /// The checkpoint's order: the converter writes each tensor when it reads it, the halves of a fused expert
  /// tensor where it is (its MXFP4 experts are written first, from `generate_extra_tensors`; the order of a
  /// GGUF's tensors does not change what llama.cpp loads).
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    sourceOrdered(plan, sourceOrder: sourceOrder)
  }
}
