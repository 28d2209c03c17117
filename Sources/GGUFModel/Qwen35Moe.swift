import Checkpoint
import GGUF

/// Qwen3.5 / Qwen3.6 MoE (Qwen3.5-35B-A3B, 122B-A10B, 397B-A17B; Qwen3.6-35B-A3B) as llama.cpp's `qwen35moe`
/// architecture, in the layout llama.cpp's converter writes (`conversion/qwen.py` `Qwen3_5MoeTextModel` over
/// `_LinearAttentionVReorderBase`, `Qwen3NextModel`, `_QwenMtpMixin` and `Qwen2MoeModel`) and its loader reads
/// (`src/models/qwen35moe.cpp`). The vision tower is not written (llama.cpp reads it from an mmproj GGUF).
///
/// Hybrid layers: Gated DeltaNet (`linear_attn`: `attn_qkv`, `attn_gate`, `ssm_*`) and gated full attention
/// (`attn_q` holds the query and its output gate), every layer MoE with a gated shared expert; the MTP block after
/// the trunk is a full-attention layer with the NextN tensors, counted in `block_count`. What the converter
/// changes on the way, and Smelt with it:
/// - every RMSNorm gain but the DeltaNet's own is stored as `1 + w` (Qwen3.5's norms are zero-centred);
/// - `A_log` is stored as `ssm_a = -exp(A_log)`, `dt_bias` as `ssm_dt.bias`, `conv1d` squeezed to `[kernel, channels]`;
/// - with fewer key heads than value heads, the value heads of `in_proj_qkv` (its v rows), `in_proj_z`, `in_proj_a`,
///   `in_proj_b`, `A_log`, `dt_bias`, `conv1d` (its v channels) and `out_proj` (its columns) move from grouped to
///   tiled order (`HeadReorder`), so that ggml's broadcasting repeat matches them to their key heads.
/// llama.cpp sizes both DeltaNet head widths by `ssm.state_size`, so a checkpoint whose key and value head widths
/// differ is refused.
public enum Qwen35Moe: GGUFArchitectureMapping {
  public static let architecture = "qwen35moe"
  /// llama.cpp's pre-tokenizer for the Qwen3.5 BPE vocabulary.
  public static let preTokenizer = "qwen35"

  /// The dimensions config.json fixes, checked once.
  struct Geometry {
    var attention: AttentionGeometry
    var expertIntermediate: Int
    var sharedIntermediate: Int
    var mtpLayers: Int
    /// Per trunk layer: Gated DeltaNet (true) or full attention.
    var recurrent: [Bool]
    var convKernel: Int
    var keyHeads: Int
    var valueHeads: Int
    /// Both DeltaNet head widths (llama.cpp's `ssm.state_size`).
    var headWidth: Int

    var blockCount: Int { attention.layers + mtpLayers }
    var keyWidth: Int { keyHeads * headWidth }
    var valueWidth: Int { valueHeads * headWidth }
    /// `conv1d`'s channels: q, k, v.
    var convChannels: Int { 2 * keyWidth + valueWidth }

    init(_ config: ModelConfig, options: GGUFMappingOptions) throws(GGUFMappingFailure) {
      attention = try AttentionGeometry(config, architecture: Qwen35Moe.architecture, experts: config.numExperts, expertsField: "num_experts")
      expertIntermediate = try positive(config.moeIntermediateSize, "moe_intermediate_size")
      sharedIntermediate = try positive(config.sharedExpertIntermediateSize, "shared_expert_intermediate_size")
      mtpLayers = options.keepMTP ? max(0, config.mtpNumHiddenLayers ?? 0) : 0
      guard let linear = config.linearAttention else { throw .missingField("linear_num_value_heads") }
      convKernel = try positive(linear.convKernel, "linear_conv_kernel_dim")
      keyHeads = try positive(linear.keyHeads, "linear_num_key_heads")
      valueHeads = try positive(linear.valueHeads, "linear_num_value_heads")
      headWidth = try positive(linear.keyHeadDim, "linear_key_head_dim")
      let valueHeadWidth = try positive(linear.valueHeadDim, "linear_value_head_dim")
      guard valueHeadWidth == headWidth else {
        throw .invalidField(
          "linear_value_head_dim", reason: "is \(valueHeadWidth) but linear_key_head_dim is \(headWidth); llama.cpp's qwen35moe sizes both by ssm.state_size")
      }
      guard valueHeads % keyHeads == 0 else {
        throw .invalidField("linear_num_value_heads", reason: "is \(valueHeads), not a multiple of linear_num_key_heads \(keyHeads)")
      }
      if let types = config.layerTypes {
        guard types.count == attention.layers else {
          throw .invalidField("layer_types", reason: "has \(types.count) entries for \(attention.layers) layers")
        }
        if let odd = types.first(where: { $0 != "linear_attention" && $0 != "full_attention" }) {
          throw .invalidField("layer_types", reason: "has '\(odd)'; qwen35moe layers are linear_attention or full_attention")
        }
        recurrent = types.map { $0 == "linear_attention" }
      } else {
        let interval = try positive(config.fullAttentionInterval ?? 4, "full_attention_interval")
        recurrent = (0..<attention.layers).map { ($0 + 1) % interval != 0 }
      }
    }

    /// The value-head reorder of `axis`, after `leading` indices, heads `width` wide.
    func reorder(_ axis: HeadReorder.Axis, leading: Int = 0, width: Int) -> HeadReorder {
      HeadReorder(axis: axis, leading: leading, keyHeads: keyHeads, valuesPerKey: valueHeads / keyHeads, width: width)
    }
  }

  // MARK: metadata

  /// `general.architecture` and the `qwen35moe.*` pairs in convert_hf_to_gguf.py's order: `TextModel`'s (with the
  /// M-RoPE sections), `Qwen2MoeModel`'s expert widths, `_QwenMtpMixin`'s NextN count, `Qwen3NextModel`'s DeltaNet
  /// sizes, layer kinds and rotary width, and `_Qwen35MRopeMixin`'s default sections when the config has none.
  public static func hyperparameters(
    _ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions(), fileType: LlamaFileType? = nil
  ) throws(GGUFMappingFailure) -> GGUFMetadata {
    let g = try Geometry(config, options: options)
    var m = try g.attention.keys(
      config, architecture: architecture, blockCount: g.blockCount, feedForward: config.intermediateSize, rmsEpsilon: 1e-6,
      fileType: fileType)
    m.u32("expert_feed_forward_length", g.expertIntermediate)
    m.u32("expert_shared_feed_forward_length", g.sharedIntermediate)
    if g.mtpLayers > 0 { m.u32("nextn_predict_layers", g.mtpLayers) }
    m.u32("ssm.conv_kernel", g.convKernel)
    m.u32("ssm.state_size", g.headWidth)
    m.u32("ssm.group_count", g.keyHeads)
    m.u32("ssm.time_step_rank", g.valueHeads)
    m.u32("ssm.inner_size", g.valueWidth)
    if config.layerTypes != nil {
      // The MTP block is full attention.
      m.array("attention.recurrent_layers", .bool(g.recurrent + Array(repeating: false, count: g.mtpLayers)))
    }
    m.u32("full_attention_interval", config.fullAttentionInterval ?? 4)
    m.u32("rope.dimension_count", Int(Double(g.attention.headDim) * (config.partialRotaryFactor ?? 0.25)))
    if config.mropeSection == nil { m.array("rope.dimension_sections", .int32([11, 11, 10, 0])) }
    return m.metadata
  }

  public static func quantizeModel(_ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions())
    throws(GGUFMappingFailure) -> LlamaQuantize.Model
  {
    let g = try Geometry(config, options: options)
    return g.attention.quantizeModel(architecture: architecture, blockCount: g.blockCount)
  }

  // MARK: tensor names

  /// Both layer kinds' norms, router and shared expert; every RMSNorm gain is stored `1 + w`.
  static let commonTensors: [BlockTensor] = [
    BlockTensor("attn_norm.weight", "input_layernorm.weight", transform: .plusOne),
    BlockTensor("post_attention_norm.weight", "post_attention_layernorm.weight", transform: .plusOne),
    BlockTensor("ffn_gate_inp.weight", "mlp.gate.weight"),
    BlockTensor("ffn_gate_shexp.weight", "mlp.shared_expert.gate_proj.weight"),
    BlockTensor("ffn_up_shexp.weight", "mlp.shared_expert.up_proj.weight"),
    BlockTensor("ffn_down_shexp.weight", "mlp.shared_expert.down_proj.weight"),
    BlockTensor("ffn_gate_inp_shexp.weight", "mlp.shared_expert_gate.weight"),
  ]
  /// A full-attention layer (also the MTP block's): q (with its gate), k, v, o and the QK-norms.
  static let fullAttentionTensors: [BlockTensor] =
    Array(BlockTensor.attention(biases: .none).dropFirst())
    + BlockTensor.queryKeyNorms().map { BlockTensor($0.gguf, $0.huggingFace, transform: .plusOne) }
  /// The NextN tensors: GGUF leaf, Qwen3.5's name under `mtp.` (all four written).
  static let nextnTensors: [(gguf: String, huggingFace: String)] = [
    ("nextn.eh_proj.weight", "fc.weight"), ("nextn.enorm.weight", "pre_fc_norm_embedding.weight"),
    ("nextn.hnorm.weight", "pre_fc_norm_hidden.weight"), ("nextn.shared_head_norm.weight", "norm.weight"),
  ]

  /// Every GGUF tensor, from the checkpoint's logical weight shapes (language-model names: the wrapper's
  /// `model.language_model.` read as `model.`; routed experts per expert or fused; FP8 `weight_scale_inv`
  /// companions belong to the weight they scale).
  ///
  /// - Throws: `GGUFMappingFailure` for a missing tensor, a shape config.json contradicts, or a tensor with no
  ///   GGUF name.
  public static func tensors(
    _ config: ModelConfig, shapes: [String: [Int]], options: GGUFMappingOptions = GGUFMappingOptions()
  ) throws(GGUFMappingFailure) -> [GGUFTensorPlan] {
    let g = try Geometry(config, options: options)
    let a = g.attention
    var b = TensorPlanBuilder(shapes: shapes)
    var expected = a.blockShapes
    let shared = g.sharedIntermediate
    for (leaf, shape) in [
      "attn_q.weight": [2 * a.queryWidth, a.hidden], "ffn_gate_shexp.weight": [shared, a.hidden],
      "ffn_up_shexp.weight": [shared, a.hidden], "ffn_down_shexp.weight": [a.hidden, shared], "ffn_gate_inp_shexp.weight": [1, a.hidden],
    ] { expected[leaf] = shape }

    try b.copy("token_embd.weight", "model.embed_tokens.weight", [a.vocabulary, a.hidden])
    for layer in 0..<g.blockCount {
      let mtp = layer >= a.layers
      let hf = mtp ? "mtp.layers.\(layer - a.layers)." : "model.layers.\(layer).", blk = "blk.\(layer)."
      try b.copyBlock(layer, commonTensors, shapes: expected, from: hf)
      if !mtp && g.recurrent[layer] {
        try linearAttention(&b, g, hf: hf + "linear_attn.", blk: blk)
      } else {
        try b.copyBlock(layer, fullAttentionTensors, shapes: expected, from: hf)
      }
      try b.stackExperts(hf: hf, blk: blk, experts: a.experts, hidden: a.hidden, intermediate: g.expertIntermediate)
      if mtp {
        try b.nextn(
          layer: layer, hidden: a.hidden, vocabulary: a.vocabulary, names: nextnTensors, from: "mtp.",
          alsoRequired: ["nextn.shared_head_norm.weight"], normTransform: .plusOne)
      }
    }
    try b.copy("output_norm.weight", "model.norm.weight", [a.hidden], transform: .plusOne)
    try b.outputHead(tied: a.tiedEmbeddings, vocabulary: a.vocabulary, hidden: a.hidden)
    // The MTP module, when dropped (`--drop-mtp`, the converter's --no-mtp), is left out.
    return try b.finish { name in g.mtpLayers == 0 && name.hasPrefix("mtp.") }
  }

  /// A Gated DeltaNet layer's tensors (`hf` = `model.layers.N.linear_attn.`), value heads tiled.
  private static func linearAttention(_ b: inout TensorPlanBuilder, _ g: Geometry, hf: String, blk: String) throws(GGUFMappingFailure) {
    let hidden = g.attention.hidden, width = g.headWidth
    try b.copy(blk + "attn_qkv.weight", hf + "in_proj_qkv.weight", [g.convChannels, hidden], reorder: g.reorder(.rows, leading: 2 * g.keyWidth, width: width))
    try b.copy(blk + "attn_gate.weight", hf + "in_proj_z.weight", [g.valueWidth, hidden], reorder: g.reorder(.rows, width: width))
    try b.copy(
      blk + "ssm_conv1d.weight", hf + "conv1d.weight", [g.convChannels, 1, g.convKernel],
      reorder: g.reorder(.rows, leading: 2 * g.keyWidth, width: width), dimensions: [g.convKernel, g.convChannels])
    try b.copy(blk + "ssm_dt.bias", hf + "dt_bias", [g.valueHeads], reorder: g.reorder(.columns, width: 1))
    try b.copy(blk + "ssm_a", hf + "A_log", [g.valueHeads], reorder: g.reorder(.columns, width: 1), transform: .negatedExponential)
    try b.copy(blk + "ssm_alpha.weight", hf + "in_proj_a.weight", [g.valueHeads, hidden], reorder: g.reorder(.rows, width: 1))
    try b.copy(blk + "ssm_beta.weight", hf + "in_proj_b.weight", [g.valueHeads, hidden], reorder: g.reorder(.rows, width: 1))
    try b.copy(blk + "ssm_norm.weight", hf + "norm.weight", [width])
    try b.copy(blk + "ssm_out.weight", hf + "out_proj.weight", [hidden, g.valueWidth], reorder: g.reorder(.columns, width: width))
  }

  /// The converter's order: each tensor when it is read (the MTP module's `mtp.*` after the trunk's files, as
  /// names sort), a layer's per-expert stacks (down, gate, up) once its last routed expert has been read.
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    expertStackingOrder(plan, sourceOrder: sourceOrder)
  }
}
