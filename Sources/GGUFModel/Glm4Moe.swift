import Checkpoint
import GGUF
import JSON

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
    var attention: AttentionGeometry
    var mtpLayers: Int
    var expertIntermediate: Int
    var intermediate: Int
    var sharedExperts: Int
    var denseLayers: Int

    var blockCount: Int { attention.layers + mtpLayers }

    init(_ config: ModelConfig, options: GGUFMappingOptions) throws(GGUFMappingFailure) {
      attention = try AttentionGeometry(
        config, architecture: Glm4Moe.architecture, experts: config.nRoutedExperts, expertsField: "n_routed_experts")
      mtpLayers = options.keepMTP ? max(0, config.numNextnPredictLayers ?? 0) : 0
      expertIntermediate = try positive(config.moeIntermediateSize, "moe_intermediate_size")
      intermediate = try positive(config.intermediateSize, "intermediate_size")
      sharedExperts = max(0, config.nSharedExperts ?? 0)

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
    }
  }

  // MARK: metadata

  /// `general.architecture` and the `glm4moe.*` pairs in convert_hf_to_gguf.py's order
  /// (`TextModel.set_gguf_parameters`, then `Glm4MoeModel`'s rope width, experts, gating and NextN count).
  public static func hyperparameters(
    _ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions(), fileType: LlamaFileType? = nil
  ) throws(GGUFMappingFailure) -> GGUFMetadata {
    let g = try Geometry(config, options: options)
    var m = try g.attention.keys(
      config, architecture: architecture, blockCount: g.blockCount, feedForward: g.intermediate, rmsEpsilon: 1e-5, fileType: fileType)
    m.u32("rope.dimension_count", Int(Double(g.attention.headDim) * (config.partialRotaryFactor ?? 0.5)))
    m.u32("expert_count", g.attention.experts)
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
    return g.attention.quantizeModel(architecture: architecture, blockCount: g.blockCount)
  }

  // MARK: tensor names

  /// The attention tensors of every block; q/k/v biases (`attention_bias`) and QK-norms (`use_qk_norm`) where present.
  static let attentionTensors: [BlockTensor] =
    BlockTensor.attention(biases: .whenPresent) + BlockTensor.queryKeyNorms(optional: true) + [
      BlockTensor("post_attention_norm.weight", "post_attention_layernorm.weight"),
    ]
  /// A leading dense layer's MLP.
  static let denseTensors: [BlockTensor] = [
    BlockTensor("ffn_gate.weight", "mlp.gate_proj.weight"), BlockTensor("ffn_up.weight", "mlp.up_proj.weight"),
    BlockTensor("ffn_down.weight", "mlp.down_proj.weight"),
  ]
  /// An MoE layer's router and its bias (the routed experts are stacked).
  static let routerTensors: [BlockTensor] = [
    BlockTensor("ffn_gate_inp.weight", "mlp.gate.weight"), BlockTensor("exp_probs_b.bias", "mlp.gate.e_score_correction_bias"),
  ]
  /// The shared experts of an MoE layer (`n_shared_experts` > 0: llama.cpp then requires them).
  static let sharedExpertTensors: [BlockTensor] = [
    BlockTensor("ffn_gate_shexp.weight", "mlp.shared_experts.gate_proj.weight"),
    BlockTensor("ffn_up_shexp.weight", "mlp.shared_experts.up_proj.weight"),
    BlockTensor("ffn_down_shexp.weight", "mlp.shared_experts.down_proj.weight"),
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
    let a = g.attention
    var b = TensorPlanBuilder(shapes: shapes)
    let ff = g.intermediate, shared = g.expertIntermediate * g.sharedExperts
    var expected = a.blockShapes
    for (leaf, shape) in [
      "ffn_gate.weight": [ff, a.hidden], "ffn_up.weight": [ff, a.hidden], "ffn_down.weight": [a.hidden, ff],
      "ffn_gate_shexp.weight": [shared, a.hidden], "ffn_up_shexp.weight": [shared, a.hidden],
      "ffn_down_shexp.weight": [a.hidden, shared],
    ] { expected[leaf] = shape }
    try b.copy("token_embd.weight", "model.embed_tokens.weight", [a.vocabulary, a.hidden])
    for layer in 0..<g.blockCount {
      try b.copyBlock(layer, attentionTensors, shapes: expected)
      if layer < g.denseLayers {
        try b.copyBlock(layer, denseTensors, shapes: expected)
      } else {
        try b.copyBlock(layer, routerTensors, shapes: expected)
        try b.stackExperts(
          hf: "model.layers.\(layer).", blk: "blk.\(layer).", experts: a.experts, hidden: a.hidden, intermediate: g.expertIntermediate)
        if g.sharedExperts > 0 { try b.copyBlock(layer, sharedExpertTensors, shapes: expected) }
      }
      if layer >= a.layers { try b.nextn(layer: layer, hidden: a.hidden, vocabulary: a.vocabulary) }
    }
    try b.copy("output_norm.weight", "model.norm.weight", [a.hidden])
    try b.outputHead(tied: a.tiedEmbeddings, vocabulary: a.vocabulary, hidden: a.hidden)
    // The NextN layer(s), when dropped (`--drop-mtp`, the converter's --no-mtp), are left out.
    return try b.finish { name in g.mtpLayers == 0 && (TensorPlanBuilder.layer(of: name).map { $0 >= a.layers } ?? false) }
  }

  /// The converter's order: each tensor when it is read, a layer's expert stacks (down, gate, up) once its last
  /// routed expert has been read (`Glm4MoeModel.modify_tensors`).
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    expertStackingOrder(plan, sourceOrder: sourceOrder)
  }

  // MARK: reading a GGUF

  /// The Hugging Face tensors a glm4moe GGUF holds, in the GGUF's order: every tensor mapped back by name (the NextN
  /// block's under its layer), the expert stacks split per expert (zero-copy slabs).
  ///
  /// - Throws: `.unknownGGUFTensor` for a name outside the map, `.inconsistentGGUFTensor` for a stack that is not 3-D.
  public static func storedTensors(_ tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> [GGUFStoredTensor] {
    let nextn = nextnBlockNames.map { BlockTensor($0.gguf, $0.huggingFace) }
    return try GGUFStoredTensor.reading(
      tensors, globals: standardGlobalTensors, block: attentionTensors + denseTensors + routerTensors + sharedExpertTensors + nextn)
  }

  /// The `config.json` of the model a glm4moe GGUF holds (the release schema): the inverse of `hyperparameters`,
  /// biases and QK-norms as the tensors show, the sigmoid group-limited router llama.cpp's glm4moe computes.
  public static func huggingFaceConfig(_ metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> JSONObject {
    let m = try ArchitectureMetadata(metadata, architecture: architecture)
    let names = Set(tensors.map(\.name))
    func integer(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    let blocks = try m.need("block_count"), nextn = m.int("nextn_predict_layers") ?? 0
    // NextN layers whose tensors are present (a --drop-mtp GGUF announces none).
    let mtpPresent = (0..<blocks).filter { names.contains("blk.\($0).nextn.eh_proj.weight") }.count
    guard blocks > nextn else { throw .missingKey("\(architecture).nextn_predict_layers") }
    var c = try m.groupedQueryConfig(
      architectures: ["Glm4MoeForCausalLM"], modelType: "glm4_moe", tensors: tensors, layers: blocks - nextn)
    let headDim = c["head_dim"]?.intValue ?? 1
    c["intermediate_size"] = integer(try m.need("feed_forward_length"))
    c["moe_intermediate_size"] = integer(try m.need("expert_feed_forward_length"))
    c["num_nextn_predict_layers"] = integer(min(nextn, mtpPresent))
    c["partial_rotary_factor"] = .number(JSONNumber(Double(try m.need("rope.dimension_count")) / Double(headDim))!)
    c["n_routed_experts"] = integer(try m.need("expert_count"))
    c["n_shared_experts"] = integer(m.int("expert_shared_count") ?? 0)
    c["num_experts_per_tok"] = integer(try m.need("expert_used_count"))
    c["first_k_dense_replace"] = integer(m.int("leading_dense_block_count") ?? 0)
    c["n_group"] = integer(m.int("expert_group_count") ?? 1)
    c["topk_group"] = integer(m.int("expert_group_used_count") ?? 1)
    c["routed_scaling_factor"] = try m.number("expert_weights_scale", default: 1)
    c["norm_topk_prob"] = .bool(m.bool("expert_weights_norm") ?? false)
    c["attention_bias"] = .bool(names.contains("blk.0.attn_q.bias"))
    c["use_qk_norm"] = .bool(names.contains("blk.0.attn_q_norm.weight"))
    return c
  }
}
