import Checkpoint

extension ModelConfiguration {
  /// The forward pass's configuration from a parsed `config.json`, with transformers' defaults for the
  /// optional fields (see the tables on `ModelConfiguration` and its parts).
  ///
  /// RoPE comes from `rope_theta` / `rope_scaling` or transformers ≥ 5's `rope_parameters` (`ModelConfig` reads
  /// both and refuses a disagreement). The fields only one family has are read by that family's file in
  /// `Architectures/`, which refuses any value it does not compute.
  ///
  /// - Throws: `ReferenceModelError.architectureNotImplemented` when the config's model family has no forward
  ///   pass here (Qwen3.5-MoE, DeepSeek-V4; an unknown architecture without MLA);
  ///   `ReferenceModelError.invalidConfiguration` naming the field when a required field is missing
  ///   (`vocab_size`, `hidden_size`, ..., `kv_lora_rank`) or has a value this forward pass does not implement
  ///   (`hidden_act` other than `silu`, a RoPE type other than `yarn`/`default`, a `scoring_func` other than
  ///   `sigmoid`/`softmax`, sliding-window attention, ...). Also runs `validate()`.
  public init(checkpointConfig config: ModelConfig) throws(ReferenceModelError) {
    let family = ModelFamily.detect(config)
    let architecture: Architecture
    switch family.forwardPass {
    case .missing(let reason):
      throw .architectureNotImplemented(family: family.name, reason: reason)
    case .deepSeekV3:
      if family.isGeneric && config.kvLoraRank == nil {
        let name = config.architectures.first ?? config.modelType ?? "this architecture"
        throw .architectureNotImplemented(
          family: name, reason: "it implements DeepSeek-V3-style multi-head latent attention (no kv_lora_rank in config.json)")
      }
      // transformers' DeepseekV3Attention would add biases and rotate a fraction of qk_rope_head_dim: refused.
      if config.attentionBias == true {
        throw .invalidConfiguration(
          field: "attention_bias", value: "true", reason: "biases on DeepSeek-V3's attention projections are not implemented")
      }
      try refusePartialRotary(config)
      try refuseSlidingWindow(config)
      architecture = .deepSeekV3
    case .deepSeekV32:
      architecture = .deepSeekV32(try LightningIndexerConfiguration(deepSeekV32: config))
    case .qwen3MoE:
      architecture = .qwen3MoE(try GroupedQueryAttentionConfiguration(qwen3MoE: config))
    case .glm4MoE:
      architecture = .glm4MoE(try GroupedQueryAttentionConfiguration(glm4MoE: config))
    case .miniMaxM2:
      architecture = .miniMaxM2(try GroupedQueryAttentionConfiguration(miniMaxM2: config))
    case .gptOss:
      architecture = .gptOss(try GroupedQueryAttentionConfiguration(gptOss: config))
    }
    if let activation = config.hiddenAct, activation != "silu" {
      throw .invalidConfiguration(
        field: "hidden_act", value: "\"\(activation)\"", reason: "the reference model implements only silu")
    }
    let latent = architecture.groupedQueryAttention == nil
    if latent {
      guard config.kvLoraRank != nil else {
        throw .invalidConfiguration(
          field: "kv_lora_rank", value: "missing",
          reason: "the reference model implements multi-head latent attention (DeepSeek-V2/V3) only")
      }
    } else if config.ropeInterleave == true {
      // The grouped-query families rotate halves (transformers' `rotate_half`); none has an interleaved variant.
      throw .invalidConfiguration(
        field: "rope_interleave", value: "true", reason: "\(family.name) rotates halves; interleaved pairs are not implemented")
    }
    let yarn = try Self.yarn(config)

    let moe: MixtureOfExpertsConfiguration?
    switch architecture {
    case .deepSeekV3, .deepSeekV32: moe = try MixtureOfExpertsConfiguration(deepSeekV3: config)
    case .qwen3MoE: moe = try MixtureOfExpertsConfiguration(qwen3MoE: config)
    case .glm4MoE: moe = try MixtureOfExpertsConfiguration(glm4MoE: config)
    case .miniMaxM2: moe = try MixtureOfExpertsConfiguration(miniMaxM2: config)
    case .gptOss: moe = try MixtureOfExpertsConfiguration(gptOss: config)
    }

    self.init(
      vocabularySize: try required(config.vocabSize, "vocab_size"),
      hiddenSize: try required(config.hiddenSize, "hidden_size"),
      intermediateSize: try required(config.intermediateSize, "intermediate_size"),
      layerCount: try required(config.numHiddenLayers, "num_hidden_layers"),
      headCount: try required(config.numAttentionHeads, "num_attention_heads"),
      // The grouped-query families' config classes default rms_norm_eps differently (GLM-4.5 and gpt-oss 1e-5,
      // Qwen3-MoE and MiniMax-M2 1e-6): there it is required as written.
      rmsNormEpsilon: Float(latent ? config.rmsNormEps ?? 1e-6 : try required(config.rmsNormEps, "rms_norm_eps")),
      tieWordEmbeddings: config.tieWordEmbeddings ?? false,
      maxPositionEmbeddings: config.maxPositionEmbeddings ?? 4096,
      attention: latent
        ? LatentAttentionConfiguration(
          queryLoraRank: config.qLoraRank, keyValueLoraRank: try required(config.kvLoraRank, "kv_lora_rank"),
          noPositionHeadDimension: try required(config.qkNopeHeadDim, "qk_nope_head_dim"),
          ropeHeadDimension: try required(config.qkRopeHeadDim, "qk_rope_head_dim"),
          valueHeadDimension: try required(config.vHeadDim, "v_head_dim")) : .notLatent,
      // DeepSeek's config class defaults rope_theta to 10000 and rope_interleave to true; the grouped-query
      // families' defaults differ by family, so there rope_theta is required as written.
      rope: latent
        ? RopeConfiguration(theta: config.ropeTheta ?? 10000, interleaved: config.ropeInterleave ?? true, yarn: yarn)
        : RopeConfiguration(
          theta: try required(config.ropeTheta, config.ropeFromParameters ? "rope_parameters.rope_theta" : "rope_theta"),
          interleaved: false, yarn: yarn),
      mixtureOfExperts: moe, architecture: architecture)
    try validate()
  }

  /// YaRN from `rope_scaling` / `rope_parameters`; `nil` for the default RoPE; an error for any other type.
  static func yarn(_ config: ModelConfig) throws(ReferenceModelError) -> YarnScaling? {
    guard let scaling = config.ropeScaling else { return nil }
    switch scaling.type {
    case "yarn":
      return YarnScaling(
        factor: try required(scaling.factor, "rope_scaling.factor"),
        originalMaxPositionEmbeddings: try required(
          scaling.originalMaxPositionEmbeddings ?? config.maxPositionEmbeddings,
          "rope_scaling.original_max_position_embeddings"),
        betaFast: scaling.betaFast ?? 32, betaSlow: scaling.betaSlow ?? 1, mscale: scaling.mscale,
        mscaleAllDimensions: scaling.mscaleAllDim, attentionFactor: scaling.attentionFactor,
        truncate: scaling.truncate ?? true)
    case "default":
      return nil
    default:
      throw .invalidConfiguration(
        field: config.ropeFromParameters ? "rope_parameters.rope_type" : "rope_scaling.type", value: "\"\(scaling.type)\"",
        reason: "only yarn and default are implemented")
    }
  }
}

extension MixtureOfExpertsConfiguration {
  /// DeepSeek-V3's MoE fields (`nil` for a dense model): `scoring_func` sigmoid (default) or softmax.
  init?(deepSeekV3 config: ModelConfig) throws(ReferenceModelError) {
    guard let experts = config.routedExpertCount else { return nil }
    let router: RouterKind
    switch config.scoringFunc ?? "sigmoid" {
    case "sigmoid":
      router = .sigmoidGroupLimited(
        groupCount: config.nGroup ?? 1, selectedGroupCount: config.topkGroup ?? 1, maskedScore: .negativeInfinity)
    case "softmax":
      router = .softmaxTopK
    case let other:
      throw .invalidConfiguration(
        field: "scoring_func", value: "\"\(other)\"", reason: "only sigmoid (noaux_tc) and softmax are implemented")
    }
    self.init(
      routedExpertCount: experts, sharedExpertCount: config.nSharedExperts ?? 0,
      expertsPerToken: try required(config.numExpertsPerTok, "num_experts_per_tok"),
      expertIntermediateSize: try required(config.moeIntermediateSize, "moe_intermediate_size"),
      firstDenseLayerCount: config.firstKDenseReplace ?? 0, layerFrequency: config.moeLayerFreq ?? 1,
      normalizeTopK: config.normTopkProb ?? false, routedScalingFactor: Float(config.routedScalingFactor ?? 1),
      router: router)
  }

  /// The MoE layers as the config lists them (`mlp_layer_types`, `mlp_only_layers` + `decoder_sparse_step`,
  /// `first_k_dense_replace`), as transformers' decoder layers choose them.
  static func sparseLayers(_ config: ModelConfig) throws(ReferenceModelError) -> Set<Int> {
    let layout: FeedForwardLayout
    do { layout = try FeedForwardLayout(config: config, path: "config.json") } catch {
      throw .invalidConfiguration(
        field: "mlp_layer_types / decoder_sparse_step / first_k_dense_replace", value: "unusable", reason: "\(error)")
    }
    return Set(layout.kinds.indices.filter { layout.kinds[$0] == .moe })
  }
}

/// `value`, or an error naming `field` as missing.
func required<T>(_ value: T?, _ field: String) throws(ReferenceModelError) -> T {
  guard let value else {
    throw .invalidConfiguration(field: field, value: "missing", reason: "config.json must set it")
  }
  return value
}

/// Refuses sliding-window attention (`use_sliding_window: true`, or a `layer_types` entry other than
/// `full_attention`): the reference attention is full causal.
func refuseSlidingWindow(_ config: ModelConfig) throws(ReferenceModelError) {
  if config.useSlidingWindow == true {
    throw .invalidConfiguration(
      field: "use_sliding_window", value: "true", reason: "sliding-window attention is not implemented")
  }
  if let other = config.layerTypes?.first(where: { $0 != "full_attention" }) {
    throw .invalidConfiguration(
      field: "layer_types", value: "\"\(other)\"", reason: "only full_attention layers are implemented")
  }
}

/// Refuses a `partial_rotary_factor` other than 1 for a family that rotates the whole head.
func refusePartialRotary(_ config: ModelConfig) throws(ReferenceModelError) {
  if let factor = config.partialRotaryFactor, factor != 1 {
    throw .invalidConfiguration(
      field: "partial_rotary_factor", value: "\(factor)", reason: "this family rotates the whole head")
  }
}

/// `head_dim` as written, checked to be in `1...2^31` (so products and rotary fractions of it cannot overflow).
func checkedHeadDimension(_ config: ModelConfig) throws(ReferenceModelError) -> Int {
  let value = try required(config.headDim, "head_dim")
  guard value > 0, value <= ModelConfiguration.maximumDimension else {
    throw .invalidConfiguration(field: "head_dim", value: "\(value)", reason: "must be in 1...2^31")
  }
  return value
}
