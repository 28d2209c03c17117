import Checkpoint
import GGUF
import JSON

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
    var attention: AttentionGeometry
    var expertIntermediate: Int
    var intermediate: Int?

    init(_ config: ModelConfig) throws(GGUFMappingFailure) {
      attention = try AttentionGeometry(
        config, architecture: Qwen3Moe.architecture, experts: config.routedExpertCount, expertsField: "num_experts")
      expertIntermediate = try positive(config.moeIntermediateSize, "moe_intermediate_size")
      intermediate = config.intermediateSize

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
    }
  }

  // MARK: metadata

  /// `general.architecture` and the `qwen3moe.*` pairs in convert_hf_to_gguf.py's order
  /// (`TextModel.set_gguf_parameters`, then `Qwen2MoeModel`'s expert width).
  public static func hyperparameters(
    _ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions(), fileType: LlamaFileType? = nil
  ) throws(GGUFMappingFailure) -> GGUFMetadata {
    let g = try Geometry(config)
    var m = try g.attention.keys(config, architecture: architecture, feedForward: g.intermediate, rmsEpsilon: 1e-6, fileType: fileType)
    m.u32("expert_feed_forward_length", g.expertIntermediate)
    return m.metadata
  }

  public static func quantizeModel(_ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions())
    throws(GGUFMappingFailure) -> LlamaQuantize.Model
  {
    try Geometry(config).attention.quantizeModel(architecture: architecture)
  }

  // MARK: tensor names

  /// One-to-one tensors of a decoder block (the q/k/v biases of `attention_bias: true` where present).
  static let blockTensors: [BlockTensor] =
    BlockTensor.attention(biases: .whenPresent) + BlockTensor.queryKeyNorms() + [
      BlockTensor("ffn_norm.weight", "post_attention_layernorm.weight"), BlockTensor("ffn_gate_inp.weight", "mlp.gate.weight"),
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
    let a = g.attention
    var b = TensorPlanBuilder(shapes: shapes)
    try b.copy("token_embd.weight", "model.embed_tokens.weight", [a.vocabulary, a.hidden])
    for layer in 0..<a.layers {
      try b.copyBlock(layer, blockTensors, shapes: a.blockShapes)
      try b.stackExperts(
        hf: "model.layers.\(layer).", blk: "blk.\(layer).", experts: a.experts, hidden: a.hidden, intermediate: g.expertIntermediate)
    }
    try b.copy("output_norm.weight", "model.norm.weight", [a.hidden])
    try b.outputHead(tied: a.tiedEmbeddings, vocabulary: a.vocabulary, hidden: a.hidden)
    return try b.finish()
  }

  // MARK: reading a GGUF

  /// The Hugging Face tensors a qwen3moe GGUF holds, in the GGUF's order: every tensor mapped back by name, the
  /// expert stacks split per expert (zero-copy slabs).
  ///
  /// - Throws: `.unknownGGUFTensor` for a name outside the map, `.inconsistentGGUFTensor` for a stack that is not 3-D.
  public static func storedTensors(_ tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> [GGUFStoredTensor] {
    try GGUFStoredTensor.reading(tensors, globals: standardGlobalTensors, block: blockTensors)
  }

  /// The `config.json` of the model a qwen3moe GGUF holds (release schema): the inverse of `hyperparameters`, every
  /// layer MoE, top-k renormalized (what llama.cpp's qwen3moe computes).
  public static func huggingFaceConfig(_ metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> JSONObject {
    let m = try ArchitectureMetadata(metadata, architecture: architecture)
    func integer(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    var c = try m.groupedQueryConfig(architectures: ["Qwen3MoeForCausalLM"], modelType: "qwen3_moe", tensors: tensors)
    if let ff = m.int("feed_forward_length") { c["intermediate_size"] = integer(ff) }
    c["moe_intermediate_size"] = integer(try m.need("expert_feed_forward_length"))
    c["num_experts"] = integer(try m.need("expert_count"))
    c["num_experts_per_tok"] = integer(try m.need("expert_used_count"))
    c["norm_topk_prob"] = true
    c["decoder_sparse_step"] = 1
    c["mlp_only_layers"] = []
    return c
  }

  /// The converter's order: each tensor when it is read, a layer's expert stacks (down, gate, up) once its last
  /// routed expert has been read (`Qwen2MoeModel.modify_tensors`).
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    expertStackingOrder(plan, sourceOrder: sourceOrder)
  }
}
