/// Every `config.json` field the forward pass needs, for DeepSeek-V3 and the MoE / dense families that share
/// its blocks.
///
/// Field mapping from a Hugging Face `config.json` (DeepSeek-V3 names; the JSON → struct code lives with the
/// checkpoint reader):
///
/// | property | config.json |
/// |---|---|
/// | `vocabularySize` | `vocab_size` |
/// | `hiddenSize` | `hidden_size` |
/// | `intermediateSize` | `intermediate_size` (dense layers) |
/// | `layerCount` | `num_hidden_layers` (the MTP layer at this index is ignored) |
/// | `headCount` | `num_attention_heads` |
/// | `rmsNormEpsilon` | `rms_norm_eps` |
/// | `tieWordEmbeddings` | `tie_word_embeddings` (true: logits use `model.embed_tokens.weight`) |
/// | `hiddenActivation` | `hidden_act` (`silu` only) |
/// | `maxPositionEmbeddings` | `max_position_embeddings` |
/// | `attention` | see `LatentAttentionConfiguration` |
/// | `rope` | see `RopeConfiguration` |
/// | `mixtureOfExperts` | see `MixtureOfExpertsConfiguration`; `nil` for a dense model |
/// | `architecture` | the model family's decoder layer (`model_type`); see `Architecture` |
public struct ModelConfiguration: Sendable, Equatable {
  public var vocabularySize: Int
  public var hiddenSize: Int
  public var intermediateSize: Int
  public var layerCount: Int
  public var headCount: Int
  public var rmsNormEpsilon: Float
  public var tieWordEmbeddings: Bool
  public var hiddenActivation: Activation
  public var maxPositionEmbeddings: Int
  public var attention: LatentAttentionConfiguration
  public var rope: RopeConfiguration
  public var mixtureOfExperts: MixtureOfExpertsConfiguration?
  /// Which decoder layer the model stacks. `attention` (MLA sizes) is read only by `.deepSeekV3`; the
  /// grouped-query architectures carry their attention sizes in their case.
  public var architecture: Architecture

  /// A configuration from its fields (memberwise).
  public init(
    vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int,
    rmsNormEpsilon: Float, tieWordEmbeddings: Bool = false, hiddenActivation: Activation = .silu,
    maxPositionEmbeddings: Int, attention: LatentAttentionConfiguration, rope: RopeConfiguration,
    mixtureOfExperts: MixtureOfExpertsConfiguration?, architecture: Architecture = .deepSeekV3
  ) {
    self.architecture = architecture
    self.vocabularySize = vocabularySize
    self.hiddenSize = hiddenSize
    self.intermediateSize = intermediateSize
    self.layerCount = layerCount
    self.headCount = headCount
    self.rmsNormEpsilon = rmsNormEpsilon
    self.tieWordEmbeddings = tieWordEmbeddings
    self.hiddenActivation = hiddenActivation
    self.maxPositionEmbeddings = maxPositionEmbeddings
    self.attention = attention
    self.rope = rope
    self.mixtureOfExperts = mixtureOfExperts
  }

  /// Whether layer `layer` has a MoE feed-forward block (else the dense SwiGLU MLP).
  ///
  /// DeepSeek's remote code: `layer >= first_k_dense_replace && layer % moe_layer_freq == 0`. transformers'
  /// `DeepseekV3DecoderLayer` ignores `moe_layer_freq`; both agree for V3 (frequency 1).
  public func isMixtureOfExpertsLayer(_ layer: Int) -> Bool {
    guard let moe = mixtureOfExperts else { return false }
    if let sparse = moe.sparseLayers { return sparse.contains(layer) }
    return layer >= moe.firstDenseLayerCount && layer % max(1, moe.layerFrequency) == 0
  }

  /// The largest size any dim may have (2^31): beyond it no checkpoint Smelt can map holds the weight, and
  /// products of sizes could overflow.
  public static let maximumDimension = 1 << 31

  /// Checks the sizes the forward pass relies on (positive, at most `maximumDimension`, divisible) and the domain
  /// of every numeric field (finite, positive where it must be); throws the first problem.
  public func validate() throws(ReferenceModelError) {
    try positiveFinite(rope.theta, "rope_theta")
    try positiveFinite(Double(rmsNormEpsilon), "rms_norm_eps")
    try positive(maxPositionEmbeddings, "max_position_embeddings")
    try positive(vocabularySize, "vocab_size")
    try positive(hiddenSize, "hidden_size")
    try positive(intermediateSize, "intermediate_size")
    try positive(layerCount, "num_hidden_layers")
    try positive(headCount, "num_attention_heads")
    if let grouped = architecture.groupedQueryAttention {
      try validateGroupedQuery(grouped)
    } else {
      try validateLatent()
    }
    if case .deepSeekV32(let indexer) = architecture {
      try positive(indexer.headCount, "index_n_heads")
      try positive(indexer.headDimension, "index_head_dim")
      try positive(indexer.topK, "index_topk")
      guard indexer.headDimension >= attention.ropeHeadDimension else {
        throw .invalidConfiguration(
          field: "index_head_dim", value: "\(indexer.headDimension)",
          reason: "must hold the qk_rope_head_dim (\(attention.ropeHeadDimension)) rotary channels")
      }
    }
    try validateRopeAndExperts()
  }

  /// Throws unless `value` is in `1...maximumDimension`.
  private func positive(_ value: Int, _ field: String) throws(ReferenceModelError) {
    guard value > 0 else { throw .invalidConfiguration(field: field, value: "\(value)", reason: "must be positive") }
    guard value <= Self.maximumDimension else {
      throw .invalidConfiguration(field: field, value: "\(value)", reason: "is larger than any weight Smelt can read (at most 2^31)")
    }
  }

  /// Throws unless `value` is finite and greater than 0.
  private func positiveFinite(_ value: Double, _ field: String) throws(ReferenceModelError) {
    guard value.isFinite, value > 0 else {
      throw .invalidConfiguration(field: field, value: "\(value)", reason: "must be a finite number greater than 0")
    }
  }

  /// Throws when `value` is set and not finite.
  private func finite(_ value: Double?, _ field: String) throws(ReferenceModelError) {
    guard let value, !value.isFinite else { return }
    throw .invalidConfiguration(field: field, value: "\(value)", reason: "must be a finite number")
  }

  /// The grouped-query sizes: heads divisible into key/value groups, an even rotary part inside each head.
  private func validateGroupedQuery(_ a: GroupedQueryAttentionConfiguration) throws(ReferenceModelError) {
    try positive(a.keyValueHeadCount, "num_key_value_heads")
    try positive(a.headDimension, "head_dim")
    guard headCount % a.keyValueHeadCount == 0 else {
      throw .invalidConfiguration(
        field: "num_key_value_heads", value: "\(a.keyValueHeadCount)",
        reason: "must divide num_attention_heads (\(headCount))")
    }
    guard a.rotaryDimension > 0, a.rotaryDimension <= a.headDimension, a.rotaryDimension % 2 == 0 else {
      throw .invalidConfiguration(
        field: a.rotaryDimensionField, value: "\(a.rotaryDimension) rotary channels of \(a.headDimension)",
        reason: "the rotary part must be even and within head_dim")
    }
  }

  /// The MLA sizes of DeepSeek-V3.
  private func validateLatent() throws(ReferenceModelError) {
    try positive(attention.keyValueLoraRank, "kv_lora_rank")
    try positive(attention.ropeHeadDimension, "qk_rope_head_dim")
    try positive(attention.valueHeadDimension, "v_head_dim")
    guard attention.noPositionHeadDimension >= 0, attention.noPositionHeadDimension <= Self.maximumDimension else {
      throw .invalidConfiguration(
        field: "qk_nope_head_dim", value: "\(attention.noPositionHeadDimension)", reason: "must be in 0...2^31")
    }
    if let rank = attention.queryLoraRank { try positive(rank, "q_lora_rank") }
    guard attention.ropeHeadDimension % 2 == 0 else {
      throw .invalidConfiguration(
        field: "qk_rope_head_dim", value: "\(attention.ropeHeadDimension)", reason: "rotary pairs need an even size")
    }
  }

  /// RoPE scaling and the MoE fields.
  private func validateRopeAndExperts() throws(ReferenceModelError) {
    if let yarn = rope.yarn {
      guard yarn.factor.isFinite, yarn.factor > 0, yarn.originalMaxPositionEmbeddings > 0 else {
        throw .invalidConfiguration(
          field: "rope_scaling", value: "factor \(yarn.factor)",
          reason: "factor and original_max_position_embeddings must be positive")
      }
      try finite(yarn.betaFast, "rope_scaling.beta_fast")
      try finite(yarn.betaSlow, "rope_scaling.beta_slow")
      try finite(yarn.mscale, "rope_scaling.mscale")
      try finite(yarn.mscaleAllDimensions, "rope_scaling.mscale_all_dim")
      if let factor = yarn.attentionFactor { try positiveFinite(factor, "rope_scaling.attention_factor") }
    }
    if let moe = mixtureOfExperts {
      try positiveFinite(Double(moe.routedScalingFactor), "routed_scaling_factor")
      try positive(moe.routedExpertCount, "n_routed_experts")
      try positive(moe.expertsPerToken, "num_experts_per_tok")
      try positive(moe.expertIntermediateSize, "moe_intermediate_size")
      guard moe.sharedExpertCount >= 0, moe.sharedExpertCount <= Self.maximumDimension else {
        throw .invalidConfiguration(
          field: "n_shared_experts", value: "\(moe.sharedExpertCount)", reason: "must be in 0...2^31")
      }
      guard moe.expertsPerToken <= moe.routedExpertCount else {
        throw .invalidConfiguration(
          field: "num_experts_per_tok", value: "\(moe.expertsPerToken)",
          reason: "more than n_routed_experts (\(moe.routedExpertCount))")
      }
      if case .sigmoidGroupLimited(let groupCount, let selectedGroupCount, _) = moe.router {
        try positive(groupCount, "n_group")
        guard moe.routedExpertCount % groupCount == 0 else {
          throw .invalidConfiguration(
            field: "n_group", value: "\(groupCount)", reason: "must divide n_routed_experts (\(moe.routedExpertCount))")
        }
        guard moe.routedExpertCount / groupCount >= 2 else {
          throw .invalidConfiguration(
            field: "n_group", value: "\(groupCount)", reason: "each group needs at least 2 experts (top-2 group score)")
        }
        guard selectedGroupCount > 0, selectedGroupCount <= groupCount,
          selectedGroupCount * (moe.routedExpertCount / groupCount) >= moe.expertsPerToken
        else {
          throw .invalidConfiguration(
            field: "topk_group", value: "\(selectedGroupCount)",
            reason: "must be in 1...n_group and leave at least num_experts_per_tok experts")
        }
      }
    }
  }
}

/// The feed-forward activation (`hidden_act`).
public enum Activation: String, Sendable, Equatable {
  /// `silu(x) = x · sigmoid(x)`, the SwiGLU gate of DeepSeek, Llama, Qwen and Mixtral.
  case silu
}

/// Multi-head latent attention (MLA) sizes.
///
/// | property | config.json |
/// |---|---|
/// | `queryLoraRank` | `q_lora_rank` (`null` → a single `q_proj`) |
/// | `keyValueLoraRank` | `kv_lora_rank` |
/// | `noPositionHeadDimension` | `qk_nope_head_dim` |
/// | `ropeHeadDimension` | `qk_rope_head_dim` |
/// | `valueHeadDimension` | `v_head_dim` |
public struct LatentAttentionConfiguration: Sendable, Equatable {
  public var queryLoraRank: Int?
  public var keyValueLoraRank: Int
  public var noPositionHeadDimension: Int
  public var ropeHeadDimension: Int
  public var valueHeadDimension: Int

  public init(
    queryLoraRank: Int?, keyValueLoraRank: Int, noPositionHeadDimension: Int, ropeHeadDimension: Int,
    valueHeadDimension: Int
  ) {
    self.queryLoraRank = queryLoraRank
    self.keyValueLoraRank = keyValueLoraRank
    self.noPositionHeadDimension = noPositionHeadDimension
    self.ropeHeadDimension = ropeHeadDimension
    self.valueHeadDimension = valueHeadDimension
  }

  /// The placeholder of architectures without MLA (every size 0; `Architecture` holds their attention).
  public static let notLatent = LatentAttentionConfiguration(
    queryLoraRank: nil, keyValueLoraRank: 0, noPositionHeadDimension: 0, ropeHeadDimension: 0, valueHeadDimension: 0)

  /// Query/key size per head: nope + rope (192 for V3).
  public var queryKeyHeadDimension: Int { noPositionHeadDimension + ropeHeadDimension }
}

/// Rotary position embedding.
///
/// | property | config.json |
/// |---|---|
/// | `theta` | `rope_theta` |
/// | `interleaved` | `rope_interleave` (transformers' default for deepseek_v3: `true`) |
/// | `yarn` | `rope_scaling` when its `type`/`rope_type` is `yarn`; `nil` for no scaling |
public struct RopeConfiguration: Sendable, Equatable {
  public var theta: Double
  public var interleaved: Bool
  public var yarn: YarnScaling?

  public init(theta: Double, interleaved: Bool = true, yarn: YarnScaling? = nil) {
    self.theta = theta
    self.interleaved = interleaved
    self.yarn = yarn
  }
}

/// YaRN `rope_scaling` fields.
///
/// | property | rope_scaling key | default when absent |
/// |---|---|---|
/// | `factor` | `factor` | required |
/// | `originalMaxPositionEmbeddings` | `original_max_position_embeddings` | required |
/// | `betaFast` | `beta_fast` | 32 |
/// | `betaSlow` | `beta_slow` | 1 |
/// | `mscale` | `mscale` | nil |
/// | `mscaleAllDimensions` | `mscale_all_dim` | nil |
/// | `attentionFactor` | `attention_factor` | nil (derived, see `RopeTable`) |
/// | `truncate` | `truncate` | true |
public struct YarnScaling: Sendable, Equatable {
  public var factor: Double
  public var originalMaxPositionEmbeddings: Int
  public var betaFast: Double
  public var betaSlow: Double
  public var mscale: Double?
  public var mscaleAllDimensions: Double?
  public var attentionFactor: Double?
  public var truncate: Bool

  public init(
    factor: Double, originalMaxPositionEmbeddings: Int, betaFast: Double = 32, betaSlow: Double = 1,
    mscale: Double? = nil, mscaleAllDimensions: Double? = nil, attentionFactor: Double? = nil, truncate: Bool = true
  ) {
    self.factor = factor
    self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    self.betaFast = betaFast
    self.betaSlow = betaSlow
    self.mscale = mscale
    self.mscaleAllDimensions = mscaleAllDimensions
    self.attentionFactor = attentionFactor
    self.truncate = truncate
  }
}

/// Mixture-of-experts feed-forward fields.
///
/// | property | config.json |
/// |---|---|
/// | `routedExpertCount` | `n_routed_experts` (`num_experts` / `num_local_experts` elsewhere) |
/// | `sharedExpertCount` | `n_shared_experts` (0 when absent) |
/// | `expertsPerToken` | `num_experts_per_tok` |
/// | `expertIntermediateSize` | `moe_intermediate_size` |
/// | `firstDenseLayerCount` | `first_k_dense_replace` (0 when absent) |
/// | `layerFrequency` | `moe_layer_freq` (1 when absent) |
/// | `normalizeTopK` | `norm_topk_prob` |
/// | `routedScalingFactor` | `routed_scaling_factor` (1 when absent) |
/// | `router` | `scoring_func` + `topk_method` + `n_group` + `topk_group` |
/// | `sparseLayers` | the MoE layers when the config lists them (`mlp_only_layers` + `decoder_sparse_step`, `mlp_layer_types`); `nil`: `first_k_dense_replace` / `moe_layer_freq` decide |
public struct MixtureOfExpertsConfiguration: Sendable, Equatable {
  public var routedExpertCount: Int
  public var sharedExpertCount: Int
  public var expertsPerToken: Int
  public var expertIntermediateSize: Int
  public var firstDenseLayerCount: Int
  public var layerFrequency: Int
  public var normalizeTopK: Bool
  public var routedScalingFactor: Float
  public var router: RouterKind
  /// The MoE layers, when the config names them layer by layer; overrides `firstDenseLayerCount` / `layerFrequency`.
  public var sparseLayers: Set<Int>?
  /// How each expert's gate and up combine (`silu`, or gpt-oss's clamped swish with `swiglu_limit`).
  public var expertActivation: GatedActivation = .silu

  public init(
    routedExpertCount: Int, sharedExpertCount: Int, expertsPerToken: Int, expertIntermediateSize: Int,
    firstDenseLayerCount: Int, layerFrequency: Int = 1, normalizeTopK: Bool, routedScalingFactor: Float,
    router: RouterKind, sparseLayers: Set<Int>? = nil
  ) {
    self.sparseLayers = sparseLayers
    self.routedExpertCount = routedExpertCount
    self.sharedExpertCount = sharedExpertCount
    self.expertsPerToken = expertsPerToken
    self.expertIntermediateSize = expertIntermediateSize
    self.firstDenseLayerCount = firstDenseLayerCount
    self.layerFrequency = layerFrequency
    self.normalizeTopK = normalizeTopK
    self.routedScalingFactor = routedScalingFactor
    self.router = router
  }
}

/// How a MoE layer picks its experts.
public enum RouterKind: Sendable, Equatable {
  /// DeepSeek-V3 `noaux_tc` (`scoring_func: sigmoid`): sigmoid scores, selection on score +
  /// `e_score_correction_bias`, restricted to the best `selectedGroupCount` (`topk_group`) of `groupCount`
  /// (`n_group`) groups, a group scoring the sum of its top-2; weights are the unbiased scores.
  /// `maskedScore` is what the experts of dropped groups score during the final top-k.
  case sigmoidGroupLimited(groupCount: Int, selectedGroupCount: Int, maskedScore: GroupMask)
  /// Qwen-MoE / Mixtral (`scoring_func: softmax`, `topk_method: greedy`): softmax over all router logits,
  /// then the top-k probabilities (renormalized when `normalizeTopK`).
  case softmaxTopK
  /// gpt-oss: the top-k router logits (router bias included), then a softmax over those k.
  case softmaxOverTopK
}

/// The score given to the experts of groups that lose the group selection.
///
/// transformers up to the 4.5x releases (and mlx-lm) use `masked_fill(…, 0.0)`; transformers' current
/// `route_tokens_to_experts`, DeepSeek's `model.py` since Feb 2025 and vLLM use `-inf`. They agree whenever
/// every biased score is positive (true for V3, whose smallest bias is +2.02).
public enum GroupMask: Sendable, Equatable {
  case zero
  case negativeInfinity
}

/// The decoder layer a model stacks: one file per architecture under `Architectures/`, over the shared blocks.
public enum Architecture: Sendable, Equatable {
  /// DeepSeek-V3 / V3.1 / Kimi K2: multi-head latent attention (`ModelConfiguration.attention`) + DeepSeek MoE.
  case deepSeekV3
  /// DeepSeek-V3.2: DeepSeek-V3 plus a lightning indexer per layer that picks the `index_topk` keys each query
  /// attends to (DeepSeek Sparse Attention).
  case deepSeekV32(LightningIndexerConfiguration)
  /// Qwen3-MoE: grouped-query attention with per-head QK-norm, softmax top-k routing.
  case qwen3MoE(GroupedQueryAttentionConfiguration)
  /// GLM-4.5: grouped-query attention with q/k/v biases, optional per-head QK-norm, partial rotary; DeepSeek-style
  /// sigmoid routing with a shared expert.
  case glm4MoE(GroupedQueryAttentionConfiguration)
  /// MiniMax-M2: grouped-query attention with QK-norm over all heads, partial rotary; sigmoid routing with a bias,
  /// Mixtral-named experts.
  case miniMaxM2(GroupedQueryAttentionConfiguration)
  /// gpt-oss: grouped-query attention with q/k/v/o biases, learned sinks and alternating sliding-window layers;
  /// fused experts with biases and a clamped SwiGLU, softmax over the top-k router logits.
  case gptOss(GroupedQueryAttentionConfiguration)

  /// The attention sizes of a grouped-query architecture (`nil` for MLA).
  public var groupedQueryAttention: GroupedQueryAttentionConfiguration? {
    switch self {
    case .deepSeekV3, .deepSeekV32: nil
    case .qwen3MoE(let a), .glm4MoE(let a), .miniMaxM2(let a), .gptOss(let a): a
    }
  }
}

/// DeepSeek-V3.2's lightning indexer sizes.
///
/// | property | config.json |
/// |---|---|
/// | `headCount` | `index_n_heads` |
/// | `headDimension` | `index_head_dim` (its first `qk_rope_head_dim` channels rotate) |
/// | `topK` | `index_topk` |
public struct LightningIndexerConfiguration: Sendable, Equatable {
  public var headCount: Int
  public var headDimension: Int
  public var topK: Int

  public init(headCount: Int, headDimension: Int, topK: Int) {
    self.headCount = headCount
    self.headDimension = headDimension
    self.topK = topK
  }
}

/// Grouped-query attention sizes and options.
///
/// | property | config.json |
/// |---|---|
/// | `keyValueHeadCount` | `num_key_value_heads` |
/// | `headDimension` | `head_dim` (`hidden_size / num_attention_heads` when absent) |
/// | `rotaryDimension` | `head_dim · partial_rotary_factor`, or MiniMax-M2's `rotary_dim`; the first channels of each head rotate |
/// | `queryKeyNorm` | Qwen3: always per head; GLM-4.5: `use_qk_norm`; MiniMax-M2: `use_qk_norm` + `qk_norm_type` |
/// | `hasQueryKeyValueBias` | `attention_bias` |
/// | `hasOutputBias` | gpt-oss: `attention_bias` (its `o_proj` has one too) |
/// | `hasSinks` | gpt-oss: `self_attn.sinks[H]` join every softmax |
/// | `slidingWindow`, `slidingWindowLayers` | gpt-oss: `sliding_window` on the `layer_types` entries `sliding_attention` |
public struct GroupedQueryAttentionConfiguration: Sendable, Equatable {
  public var keyValueHeadCount: Int
  public var headDimension: Int
  public var rotaryDimension: Int
  public var queryKeyNorm: QueryKeyNorm
  public var hasQueryKeyValueBias: Bool
  public var hasOutputBias: Bool = false
  public var hasSinks: Bool = false
  /// Keys a query of a sliding layer sees (itself included); `nil`: every layer is full causal.
  public var slidingWindow: Int? = nil
  public var slidingWindowLayers: Set<Int> = []
  /// The config field the rotary size came from, for error messages.
  public var rotaryDimensionField: String

  public init(
    keyValueHeadCount: Int, headDimension: Int, rotaryDimension: Int, queryKeyNorm: QueryKeyNorm,
    hasQueryKeyValueBias: Bool, rotaryDimensionField: String = "partial_rotary_factor"
  ) {
    self.keyValueHeadCount = keyValueHeadCount
    self.headDimension = headDimension
    self.rotaryDimension = rotaryDimension
    self.queryKeyNorm = queryKeyNorm
    self.hasQueryKeyValueBias = hasQueryKeyValueBias
    self.rotaryDimensionField = rotaryDimensionField
  }
}

/// Where RMSNorm is applied to queries and keys before RoPE.
public enum QueryKeyNorm: Sendable, Equatable {
  /// No normalization.
  case none
  /// `q_norm[head_dim]` / `k_norm[head_dim]` over each head (Qwen3, GLM-4.5 with `use_qk_norm`).
  case perHead
  /// `q_norm[H · head_dim]` / `k_norm[KV · head_dim]` over all heads of a token at once (MiniMax-M2 `per_layer`).
  case perLayer
}

/// The gated activation between an MLP's up and down projections.
public enum GatedActivation: Sendable, Equatable {
  /// `silu(gate) · up` (DeepSeek, Qwen, GLM, MiniMax).
  case silu
  /// gpt-oss: `gate = min(gate, limit)`, `up = clamp(up, −limit, limit)`, `(up + 1) · gate · sigmoid(alpha · gate)`.
  case clampedSwish(alpha: Float, limit: Float)
}
