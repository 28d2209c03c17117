import Checkpoint
import GGML
import GGUF
import JSON

/// DeepSeek-V4 (Flash, Pro) as llama.cpp's `deepseek4` architecture, as `conversion/deepseek.py` `DeepseekV4Model`
/// writes it and `src/models/deepseek4.cpp` loads it, from the release's own names (`layers.L.attn.wq_a.weight`,
/// `embed.weight`, `head.weight`):
/// - attention: the query LoRA (`attn_q_a` / `attn_q_a_norm` / `attn_q_b`), one shared key-value head (`attn_kv`,
///   `attn_kv_a_norm`), the grouped output LoRA (`attn_output_a` / `_b`), per-head sinks, and per layer by its
///   compress ratio (`compress_ratios`, or transformers' `layer_types` + `compress_rates`): none (0, sliding
///   only), a compressor (`attn_compressor_*`, 128), or a compressor and the lightning indexer (`indexer.*`,
///   `indexer_compressor_*`, 4);
/// - hyper-connections (`hc_attn_*`, `hc_ffn_*` per block, `output_hc_*` for the head);
/// - the MoE: the first `num_hash_layers` layers route by a token → expert table (`ffn_gate_tid2eid`, the
///   release's I64 written as I32; their unused `gate.bias` is dropped), the others by the router's bias
///   (`exp_probs_b`); routed experts stacked `ffn_{gate,down,up}_exps` (`w1`, `w2`, `w3`), their FP4 E2M1 codes
///   and E8M0 scales moved into ggml's MXFP4 unchanged where that is the type (the converter's
///   `repack_mxfp4_blocks`); one shared expert (`*_shexp`).
///
/// The traps: llama.cpp computes only `sqrtsoftplus` routing, four hyper-connection streams, compress ratios 0, 4
/// and 128 and indexer heads of a multiple of 64, so anything else is refused. Its converter writes one fixed mix
/// whatever `--outtype` — FP8 weights Q8_0, BF16 and F32 sources as they are, experts MXFP4 (`converterType`) —,
/// which is what llama-quantize starts from, so Smelt's presets keep those types where llama-quantize's rules
/// quantize nothing (the router stays BF16). The MTP module (`mtp.0.*`, in its own shards) is left out, as the
/// converter does unless asked for a separate MTP-only GGUF.
public enum DeepSeek4: GGUFArchitectureMapping {
  public static let architecture = "deepseek4"
  /// V4 ships DeepSeek-V3's tokenizer family.
  public static let preTokenizer = DeepSeek2.preTokenizer

  /// The hyper-connection streams llama.cpp's graph implements (`deepseek4.cpp`).
  static let hyperConnectionStreams = 4
  /// The compress ratios llama.cpp's loader implements (`deepseek4.cpp`).
  static let supportedRatios: Set<Int> = [0, 4, 128]

  /// What config.json fixes, checked once.
  struct Geometry {
    var hidden: Int
    var layers: Int
    var heads: Int
    var kvHeads: Int
    var headDim: Int
    var ropeDim: Int
    var vocabulary: Int
    var qLoraRank: Int
    var outputGroups: Int
    var outputLoraRank: Int
    var hyperConnections: Int
    var sinkhornIterations: Int
    var hyperConnectionEpsilon: Double
    var experts: Int
    var expertsUsed: Int
    var sharedExperts: Int
    var expertWidth: Int
    var slidingWindow: Int
    var swigluLimit: Double
    var routedScaling: Double
    var normTopK: Bool
    var indexerHeads: Int
    var indexerHeadDim: Int
    var indexerTopK: Int
    var compressRopeTheta: Double
    /// One per trunk layer, then the release's entries for its MTP modules (a 0 each when derived).
    var compressRatios: [Int]
    var hashLayers: Int

    /// The hyper-connection mixer width: `(2 + hc_mult) · hc_mult`.
    var mixerWidth: Int { (2 + hyperConnections) * hyperConnections }

    init(_ config: ModelConfig) throws(GGUFMappingFailure) {
      try requireFamily(config, architecture: DeepSeek4.architecture)
      let raw = config.raw
      func int(_ field: String) throws(GGUFMappingFailure) -> Int {
        guard let value = raw[field] else { throw .missingField(field) }
        guard let number = value.intValue, number > 0 else { throw .invalidField(field, reason: "is \(value), must be a positive integer") }
        return number
      }
      func double(_ field: String) throws(GGUFMappingFailure) -> Double {
        guard let value = raw[field] else { throw .missingField(field) }
        guard let number = value.doubleValue else { throw .invalidField(field, reason: "is \(value), must be a number") }
        return number
      }
      hidden = try positive(config.hiddenSize, "hidden_size")
      layers = try positive(config.numHiddenLayers, "num_hidden_layers")
      heads = try positive(config.numAttentionHeads, "num_attention_heads")
      kvHeads = try positive(config.numKeyValueHeads ?? 1, "num_key_value_heads")
      headDim = try positive(config.headDim, "head_dim")
      vocabulary = try positive(config.vocabSize, "vocab_size")
      qLoraRank = try positive(config.qLoraRank, "q_lora_rank")
      outputGroups = try int("o_groups")
      outputLoraRank = try int("o_lora_rank")
      hyperConnections = try int("hc_mult")
      sinkhornIterations = try int("hc_sinkhorn_iters")
      hyperConnectionEpsilon = try double("hc_eps")
      experts = try positive(config.nRoutedExperts, "n_routed_experts")
      expertsUsed = try positive(config.numExpertsPerTok, "num_experts_per_tok")
      sharedExperts = try positive(config.nSharedExperts, "n_shared_experts")
      expertWidth = try positive(config.moeIntermediateSize, "moe_intermediate_size")
      slidingWindow = try positive(config.slidingWindow, "sliding_window")
      guard let limit = config.swigluLimit else { throw .missingField("swiglu_limit") }
      swigluLimit = limit
      guard let scaling = config.routedScalingFactor else { throw .missingField("routed_scaling_factor") }
      routedScaling = scaling
      guard let norm = config.normTopkProb else { throw .missingField("norm_topk_prob") }
      normTopK = norm
      indexerHeads = try positive(config.indexNHeads, "index_n_heads")
      indexerHeadDim = try positive(config.indexHeadDim, "index_head_dim")
      indexerTopK = try positive(config.indexTopk, "index_topk")
      compressRopeTheta = try double("compress_rope_theta")
      // deepseek4.cpp's hyper-connection mixer is written for four streams (GGML_ASSERT(hc == 4)).
      guard hyperConnections == DeepSeek4.hyperConnectionStreams else {
        throw .invalidField(
          "hc_mult", reason: "is \(hyperConnections); llama.cpp's deepseek4 computes \(DeepSeek4.hyperConnectionStreams) hyper-connection streams only")
      }
      // llama.cpp rotates the indexer's keys by a Hadamard matrix of 64 · 2^k that divides the head (llama-kv-cache.cpp
      // `build_input_k_rot`); a narrower or odd-sized head aborts its graph.
      guard indexerHeadDim % 64 == 0 else {
        throw .invalidField(
          "index_head_dim", reason: "is \(indexerHeadDim); llama.cpp's deepseek4 rotates indexer keys in blocks of 64 (it needs a multiple of 64)")
      }
      guard (heads * headDim) % outputGroups == 0 else {
        throw .invalidField("o_groups", reason: "is \(outputGroups), which does not divide \(heads) heads × \(headDim)")
      }
      guard config.scoringFunc == "sqrtsoftplus" else {
        throw .invalidField(
          "scoring_func", reason: "is \(config.scoringFunc.map { "'\($0)'" } ?? "missing"); llama.cpp's deepseek4 routes with sqrtsoftplus only")
      }
      if let act = config.hiddenAct, act != "silu" {
        throw .invalidField("hidden_act", reason: "is '\(act)'; llama.cpp's deepseek4 computes SiLU experts")
      }
      // The rotary width: the release's qk_rope_head_dim, or transformers' head_dim · partial_rotary_factor.
      let width = headDim
      let derivedRope = config.partialRotaryFactor.map { Int((Double(width) * $0).rounded(.towardZero)) }
      guard let rope = config.qkRopeHeadDim ?? derivedRope, rope > 0, rope <= width else {
        throw .missingField("qk_rope_head_dim")
      }
      if let derivedRope, derivedRope != rope {
        throw .invalidField(
          "qk_rope_head_dim", reason: "is \(rope), but head_dim × partial_rotary_factor is \(derivedRope); remove one of them")
      }
      ropeDim = rope
      if let byKind = config.ropeParametersByKind, let scaled = byKind.first(where: { $0.value.type != "default" }) {
        throw .invalidField(
          "rope_parameters.\(scaled.key).rope_type",
          reason: "is '\(scaled.value.type)'; llama.cpp's converter reads DeepSeek-V4's RoPE scaling from the release schema's rope_scaling")
      }
      compressRatios = try Self.compressRatios(config, layers: layers)
      hashLayers = try Self.hashLayers(config, layers: layers)
    }

    /// `compress_ratios` as the release writes it (one per trunk layer, then one per MTP module), or derived from
    /// transformers' `layer_types` and `compress_rates` (0 for `sliding_attention`) with a 0 per MTP module, as the
    /// release has; both present must agree.
    static func compressRatios(_ config: ModelConfig, layers: Int) throws(GGUFMappingFailure) -> [Int] {
      var release: [Int]?
      if let value = config.raw["compress_ratios"] {
        guard let list = value.arrayValue?.compactMap(\.intValue), list.count == value.arrayValue?.count, list.count >= layers else {
          throw .invalidField("compress_ratios", reason: "is \(value), must list an integer ratio for each of the \(layers) layers")
        }
        release = list
      }
      var derived: [Int]?
      if let kinds = config.layerTypes {
        guard kinds.count >= layers else {
          throw .invalidField("layer_types", reason: "has \(kinds.count) entries for \(layers) layers")
        }
        let rates = config.raw["compress_rates"]?.objectValue
        let defaults = ["compressed_sparse_attention": 4, "heavily_compressed_attention": 128]
        var ratios: [Int] = []
        for kind in kinds.prefix(layers) {
          if kind == "sliding_attention" {
            ratios.append(0)
          } else if let rate = rates?[kind]?.intValue ?? (rates == nil ? defaults[kind] : nil) {
            ratios.append(rate)
          } else {
            throw .invalidField("layer_types", reason: "has '\(kind)', which compress_rates gives no ratio")
          }
        }
        derived = ratios + Array(repeating: 0, count: max(0, config.numNextnPredictLayers ?? 0))
      }
      if let release, let derived, Array(release.prefix(layers)) != Array(derived.prefix(layers)) {
        throw .invalidField(
          "compress_ratios", reason: "is \(release), but layer_types and compress_rates give \(derived); remove one of them")
      }
      guard let ratios = release ?? derived else { throw .missingField("compress_ratios") }
      if let bad = ratios.first(where: { !supportedRatios.contains($0) }) {
        throw .invalidField("compress_ratios", reason: "has \(bad); llama.cpp's deepseek4 loads compress ratios 0, 4 and 128 only")
      }
      return ratios
    }

    /// `num_hash_layers` (the release), or the leading `hash_moe` entries of transformers' `mlp_layer_types`.
    static func hashLayers(_ config: ModelConfig, layers: Int) throws(GGUFMappingFailure) -> Int {
      var release: Int?
      if let value = config.raw["num_hash_layers"] {
        guard let count = value.intValue, (0...layers).contains(count) else {
          throw .invalidField("num_hash_layers", reason: "is \(value), must be 0 to \(layers)")
        }
        release = count
      }
      var derived: Int?
      if let kinds = config.mlpLayerTypes {
        let count = kinds.prefix(layers).prefix { $0 == "hash_moe" }.count
        if let other = kinds.prefix(layers).dropFirst(count).first(where: { $0 != "moe" }) {
          throw .invalidField(
            "mlp_layer_types", reason: "has '\(other)' after the leading hash_moe layers; llama.cpp's deepseek4 hash-routes the first layers, the rest are moe")
        }
        derived = count
      }
      if let release, let derived, release != derived {
        throw .invalidField("num_hash_layers", reason: "is \(release), but mlp_layer_types has \(derived) leading hash_moe layers")
      }
      guard let count = release ?? derived else { throw .missingField("num_hash_layers") }
      return count
    }
  }

  // MARK: metadata

  /// `TextModel.set_gguf_parameters`, then `DeepseekV4Model.set_gguf_parameters`'s keys in its order.
  public static func hyperparameters(
    _ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions(), fileType: LlamaFileType? = nil
  ) throws(GGUFMappingFailure) -> GGUFMetadata {
    let g = try Geometry(config)
    var m = ArchitectureKeys(architecture)
    try m.textModel(
      config, blockCount: g.layers, hidden: g.hidden, feedForward: config.intermediateSize, heads: g.heads, kvHeads: g.kvHeads,
      experts: g.experts, headDim: g.headDim, rmsEpsilon: 1e-6, fileType: fileType)
    m.u32("rope.dimension_count", g.ropeDim)
    m.u32("attention.q_lora_rank", g.qLoraRank)
    m.u32("attention.sliding_window", g.slidingWindow)
    m.u32("expert_feed_forward_length", g.expertWidth)
    m.u32("expert_shared_count", g.sharedExperts)
    m.f32("expert_weights_scale", g.routedScaling)
    m.bool("expert_weights_norm", g.normTopK)
    let clamp = GGUFArray.float32(Array(repeating: Float(g.swigluLimit), count: g.layers))
    m.array("swiglu_clamp_exp", clamp)
    m.array("swiglu_clamp_shexp", clamp)
    m.u32("attention.indexer.head_count", g.indexerHeads)
    m.u32("attention.indexer.key_length", g.indexerHeadDim)
    m.u32("attention.indexer.top_k", g.indexerTopK)
    m.u32("attention.output_group_count", g.outputGroups)
    m.u32("attention.output_lora_rank", g.outputLoraRank)
    m.array("attention.compress_ratios", .int32(g.compressRatios.map { Int32(truncatingIfNeeded: $0) }))
    m.f32("attention.compress_rope_freq_base", g.compressRopeTheta)
    m.u32("hyper_connection.count", g.hyperConnections)
    m.u32("hyper_connection.sinkhorn_iterations", g.sinkhornIterations)
    m.f32("hyper_connection.epsilon", g.hyperConnectionEpsilon)
    m.u32("hash_layer_count", g.hashLayers)
    m.u32("embedding_length_out", g.hidden * g.hyperConnections)
    return m.metadata
  }

  public static func quantizeModel(_ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions())
    throws(GGUFMappingFailure) -> LlamaQuantize.Model
  {
    let g = try Geometry(config)
    return LlamaQuantize.Model(architecture: architecture, expertCount: g.experts, headCount: g.heads, headCountKV: g.kvHeads, blockCount: g.layers)
  }

  // MARK: tensor names

  /// Routed-expert stacks in the order the converter writes a layer's (`generate_extra_tensors`: w1, w2, w3).
  static let expertStacks: [(gguf: String, projection: String)] = [
    ("ffn_gate_exps.weight", "w1"), ("ffn_down_exps.weight", "w2"), ("ffn_up_exps.weight", "w3"),
  ]

  /// Every GGUF tensor of the trunk, from the checkpoint's logical weight shapes (release names).
  ///
  /// - Throws: `GGUFMappingFailure` for a missing tensor, a shape config.json contradicts, or a tensor with no
  ///   GGUF name (the MTP modules `mtp.*` are left out on purpose).
  public static func tensors(
    _ config: ModelConfig, shapes: [String: [Int]], options: GGUFMappingOptions = GGUFMappingOptions()
  ) throws(GGUFMappingFailure) -> [GGUFTensorPlan] {
    let g = try Geometry(config)
    var b = TensorPlanBuilder(shapes: shapes)
    let h = g.hidden, d = g.headDim, hc = g.hyperConnections * g.hidden
    try b.copy("token_embd.weight", "embed.weight", [g.vocabulary, h])
    try b.copy("output_hc_fn.weight", "hc_head_fn", [g.hyperConnections, hc])
    try b.copy("output_hc_base.weight", "hc_head_base", [g.hyperConnections])
    try b.copy("output_hc_scale.weight", "hc_head_scale", [1])
    try b.copy("output.weight", "head.weight", [g.vocabulary, h])
    try b.copy("output_norm.weight", "norm.weight", [h])
    let sharedWidth = g.expertWidth * g.sharedExperts
    for layer in 0..<g.layers {
      let hf = "layers.\(layer).", blk = "blk.\(layer)."
      var tensors: [(String, String, [Int])] = [
        ("attn_norm.weight", "attn_norm.weight", [h]),
        ("attn_sinks.weight", "attn.attn_sink", [g.heads]),
        ("attn_q_a.weight", "attn.wq_a.weight", [g.qLoraRank, h]),
        ("attn_q_a_norm.weight", "attn.q_norm.weight", [g.qLoraRank]),
        ("attn_q_b.weight", "attn.wq_b.weight", [g.heads * d, g.qLoraRank]),
        ("attn_kv.weight", "attn.wkv.weight", [d, h]),
        ("attn_kv_a_norm.weight", "attn.kv_norm.weight", [d]),
        ("attn_output_a.weight", "attn.wo_a.weight", [g.outputGroups * g.outputLoraRank, g.heads * d / g.outputGroups]),
        ("attn_output_b.weight", "attn.wo_b.weight", [h, g.outputGroups * g.outputLoraRank]),
      ]
      for site in ["attn", "ffn"] {
        tensors += [
          ("hc_\(site)_fn.weight", "hc_\(site)_fn", [g.mixerWidth, hc]), ("hc_\(site)_base.weight", "hc_\(site)_base", [g.mixerWidth]),
          ("hc_\(site)_scale.weight", "hc_\(site)_scale", [3]),
        ]
      }
      let ratio = g.compressRatios[layer]
      if ratio != 0 {
        let width = (ratio == 4 ? 2 : 1) * d
        tensors += [
          ("attn_compressor_kv.weight", "attn.compressor.wkv.weight", [width, h]),
          ("attn_compressor_gate.weight", "attn.compressor.wgate.weight", [width, h]),
          ("attn_compressor_ape.weight", "attn.compressor.ape", [ratio, width]),
          ("attn_compressor_norm.weight", "attn.compressor.norm.weight", [d]),
        ]
      }
      if ratio == 4 {
        let id = g.indexerHeadDim
        tensors += [
          ("indexer.proj.weight", "attn.indexer.weights_proj.weight", [g.indexerHeads, h]),
          ("indexer.attn_q_b.weight", "attn.indexer.wq_b.weight", [g.indexerHeads * id, g.qLoraRank]),
          ("indexer_compressor_kv.weight", "attn.indexer.compressor.wkv.weight", [2 * id, h]),
          ("indexer_compressor_gate.weight", "attn.indexer.compressor.wgate.weight", [2 * id, h]),
          ("indexer_compressor_ape.weight", "attn.indexer.compressor.ape", [ratio, 2 * id]),
          ("indexer_compressor_norm.weight", "attn.indexer.compressor.norm.weight", [id]),
        ]
      }
      tensors += [
        ("ffn_gate_inp.weight", "ffn.gate.weight", [g.experts, h]),
        ("ffn_norm.weight", "ffn_norm.weight", [h]),
        ("ffn_gate_shexp.weight", "ffn.shared_experts.w1.weight", [sharedWidth, h]),
        ("ffn_down_shexp.weight", "ffn.shared_experts.w2.weight", [h, sharedWidth]),
        ("ffn_up_shexp.weight", "ffn.shared_experts.w3.weight", [sharedWidth, h]),
      ]
      if layer < g.hashLayers {
        // Hash layers route text by the table; their router bias is unused (`modify_tensors` drops it).
        tensors.append(("ffn_gate_tid2eid.weight", "ffn.gate.tid2eid", [g.vocabulary, g.expertsUsed]))
        b.skip(hf + "ffn.gate.bias")
      } else {
        tensors.append(("exp_probs_b.bias", "ffn.gate.bias", [g.experts]))
      }
      for (gguf, source, shape) in tensors { try b.copy(blk + gguf, hf + source, shape) }
      // The vision variant's routing bias for image tokens (optional in llama.cpp).
      if b.has(hf + "ffn.gate.bias_vl") { try b.copy(blk + "exp_probs_b_vl.bias", hf + "ffn.gate.bias_vl", [g.experts]) }
      try b.stackExperts(
        hf: hf, blk: blk, experts: g.experts, hidden: h, intermediate: g.expertWidth, container: "ffn.experts", stacks: expertStacks)
    }
    return try b.finish(ignoring: { $0.hasPrefix("mtp.") })
  }

  /// The converter's order: its `generate_extra_tensors` first — every hash layer's table, then each layer's
  /// three expert stacks (w1, w2, w3) —, then every other tensor where it reads it.
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    let isTable = { (t: GGUFTensorPlan) in t.name.hasSuffix(".ffn_gate_tid2eid.weight") }
    let isStack = { (t: GGUFTensorPlan) -> Bool in if case .stacked = t.source { return true } else { return false } }
    return plan.filter(isTable) + plan.filter(isStack) + sourceOrdered(plan.filter { !isTable($0) && !isStack($0) }, sourceOrder: sourceOrder)
  }

  /// `tensor_force_quant` and the tensors the converter writes itself: FP8 (any quantized) sources of two or
  /// more dimensions Q8_0, F32 sources F32, BF16 ones of two or more dimensions BF16, the expert stacks MXFP4,
  /// the hash table I32.
  public static func converterType(of tensor: GGUFTensorPlan, sources: [GGUFSourcePrecision]) -> GGMLType? {
    if case .stacked = tensor.source { return sources.allSatisfy { $0 == .quantized } ? .mxfp4 : nil }
    guard sources.count == 1 else { return nil }
    switch sources[0] {
    case .integer: return .i32
    case .quantized: return tensor.dimensions.count >= 2 ? .q8_0 : nil
    case .f32: return .f32
    case .bf16: return tensor.dimensions.count >= 2 ? .bf16 : nil
    case .f16: return nil
    }
  }
}
