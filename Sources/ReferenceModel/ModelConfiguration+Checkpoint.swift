import Checkpoint

extension ModelConfiguration {
  /// The forward pass's configuration from a parsed `config.json`, with transformers' defaults for the
  /// optional fields (see the tables on `ModelConfiguration` and its parts).
  ///
  /// RoPE comes from `rope_theta` / `rope_scaling` or transformers ≥ 5's `rope_parameters` (`ModelConfig` reads
  /// both and refuses a disagreement).
  ///
  /// - Throws: `ReferenceModelError.architectureNotImplemented` when the config's model family has no forward
  ///   pass here (DeepSeek-V3.2's indexer, Qwen3-MoE, GLM-4.5, MiniMax-M2, gpt-oss, ...; an unknown
  ///   architecture without MLA); `ReferenceModelError.invalidConfiguration` naming the field when a required
  ///   field is missing (`vocab_size`, `hidden_size`, ..., `kv_lora_rank`) or has a value this forward pass does
  ///   not implement (`hidden_act` other than `silu`, a RoPE type other than `yarn`/`default`, a `scoring_func`
  ///   other than `sigmoid`/`softmax`). Also runs `validate()`.
  public init(checkpointConfig config: ModelConfig) throws(ReferenceModelError) {
    let family = ModelFamily.detect(config)
    switch family.forwardPass {
    case .missing(let reason):
      throw .architectureNotImplemented(family: family.name, reason: reason)
    case .deepSeekV3:
      if family.isGeneric && config.kvLoraRank == nil {
        let name = config.architectures.first ?? config.modelType ?? "this architecture"
        throw .architectureNotImplemented(
          family: name, reason: "it implements DeepSeek-V3-style multi-head latent attention (no kv_lora_rank in config.json)")
      }
    }
    func required<T>(_ value: T?, _ field: String) throws(ReferenceModelError) -> T {
      guard let value else {
        throw .invalidConfiguration(field: field, value: "missing", reason: "config.json must set it")
      }
      return value
    }
    if let activation = config.hiddenAct, activation != "silu" {
      throw .invalidConfiguration(
        field: "hidden_act", value: "\"\(activation)\"", reason: "the reference model implements only silu")
    }
    guard config.kvLoraRank != nil else {
      throw .invalidConfiguration(
        field: "kv_lora_rank", value: "missing",
        reason: "the reference model implements multi-head latent attention (DeepSeek-V2/V3) only")
    }

    var yarn: YarnScaling?
    if let scaling = config.ropeScaling {
      switch scaling.type {
      case "yarn":
        yarn = YarnScaling(
          factor: try required(scaling.factor, "rope_scaling.factor"),
          originalMaxPositionEmbeddings: try required(
            scaling.originalMaxPositionEmbeddings ?? config.maxPositionEmbeddings,
            "rope_scaling.original_max_position_embeddings"),
          betaFast: scaling.betaFast ?? 32, betaSlow: scaling.betaSlow ?? 1, mscale: scaling.mscale,
          mscaleAllDimensions: scaling.mscaleAllDim, attentionFactor: scaling.attentionFactor,
          truncate: scaling.truncate ?? true)
      case "default":
        yarn = nil
      default:
        throw .invalidConfiguration(
          field: config.ropeFromParameters ? "rope_parameters.rope_type" : "rope_scaling.type", value: "\"\(scaling.type)\"",
          reason: "only yarn and default are implemented")
      }
    }

    var moe: MixtureOfExpertsConfiguration?
    if let experts = config.routedExpertCount {
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
      moe = MixtureOfExpertsConfiguration(
        routedExpertCount: experts, sharedExpertCount: config.nSharedExperts ?? 0,
        expertsPerToken: try required(config.numExpertsPerTok, "num_experts_per_tok"),
        expertIntermediateSize: try required(config.moeIntermediateSize, "moe_intermediate_size"),
        firstDenseLayerCount: config.firstKDenseReplace ?? 0, layerFrequency: config.moeLayerFreq ?? 1,
        normalizeTopK: config.normTopkProb ?? false, routedScalingFactor: Float(config.routedScalingFactor ?? 1),
        router: router)
    }

    self.init(
      vocabularySize: try required(config.vocabSize, "vocab_size"),
      hiddenSize: try required(config.hiddenSize, "hidden_size"),
      intermediateSize: try required(config.intermediateSize, "intermediate_size"),
      layerCount: try required(config.numHiddenLayers, "num_hidden_layers"),
      headCount: try required(config.numAttentionHeads, "num_attention_heads"),
      rmsNormEpsilon: Float(config.rmsNormEps ?? 1e-6), tieWordEmbeddings: config.tieWordEmbeddings ?? false,
      maxPositionEmbeddings: config.maxPositionEmbeddings ?? 4096,
      attention: LatentAttentionConfiguration(
        queryLoraRank: config.qLoraRank, keyValueLoraRank: try required(config.kvLoraRank, "kv_lora_rank"),
        noPositionHeadDimension: try required(config.qkNopeHeadDim, "qk_nope_head_dim"),
        ropeHeadDimension: try required(config.qkRopeHeadDim, "qk_rope_head_dim"),
        valueHeadDimension: try required(config.vHeadDim, "v_head_dim")),
      rope: RopeConfiguration(theta: config.ropeTheta ?? 10000, interleaved: config.ropeInterleave ?? true, yarn: yarn),
      mixtureOfExperts: moe)
    try validate()
  }
}
