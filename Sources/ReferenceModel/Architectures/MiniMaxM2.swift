import Checkpoint

// MiniMax-M2 (M2.1, M2.5), as transformers' `minimax_m2` computes it:
//
//   x = input_layernorm(h)
//   q, k, v = q_proj(x), k_proj(x), v_proj(x)           no biases
//   q, k = q_norm(q), k_norm(k)                          RMSNorm over all heads of a token (qk_norm_type per_layer)
//   q, k = rope(q), rope(k)                              rotate-half on the first rotary_dim channels of each head
//   h += o_proj(causal_softmax(q·kᵀ / sqrt(head_dim)) · v)
//   x = post_attention_layernorm(h)
//   h += Σ_k w_k · expert_k(x)      block_sparse_moe: s = sigmoid(gate(x)); pick the top num_experts_per_tok of
//                                   s + e_score_correction_bias; w = s of the picked experts / their sum
//
// Experts are Mixtral-named (w1 gate, w3 up, w2 down); every layer is MoE; no shared expert.

extension ReferenceModel {
  /// One MiniMax-M2 decoder layer on `hidden`, in place; returns the MoE routing.
  func applyMiniMaxM2Layer(
    _ layer: Int, attention: GroupedQueryAttentionConfiguration, to hidden: inout HiddenStates
  ) throws -> LayerRouting? {
    try applyGroupedQueryAttention(layer, attention: attention, to: &hidden)
    return try applyFeedForward(layer, names: .miniMax, to: &hidden)
  }
}

extension GroupedQueryAttentionConfiguration {
  /// MiniMax-M2's attention: QK-norm over all heads (`qk_norm_type: per_layer`), rotary over `rotary_dim` channels,
  /// no biases.
  init(miniMaxM2 config: ModelConfig) throws(ReferenceModelError) {
    try refuseSlidingWindow(config)
    if config.attentionBias == true {
      throw .invalidConfiguration(field: "attention_bias", value: "true", reason: "MiniMax-M2's attention has no biases")
    }
    // transformers' MiniMaxM2Attention always normalizes q and k over all heads; the release's own code reads
    // use_qk_norm / qk_norm_type: any other setting would make the two disagree, so it is refused.
    if config.useQkNorm == false {
      throw .invalidConfiguration(
        field: "use_qk_norm", value: "false", reason: "transformers' MiniMax-M2 always applies QK-norm; refusing rather than guessing")
    }
    if let type = config.qkNormType, type != "per_layer" {
      throw .invalidConfiguration(field: "qk_norm_type", value: "\"\(type)\"", reason: "only per_layer is implemented")
    }
    let headDimension = try checkedHeadDimension(config)
    let rotaryDimension = try required(config.rotaryDim, "rotary_dim")
    // transformers turns rotary_dim into partial_rotary_factor unless the config already sets that.
    if let factor = config.partialRotaryFactor,
      !(factor > 0 && factor <= 1) || Int(Double(headDimension) * factor) != rotaryDimension
    {
      throw .invalidConfiguration(
        field: "partial_rotary_factor", value: "\(factor)",
        reason: "disagrees with rotary_dim \(rotaryDimension) of head_dim \(headDimension); remove one of them")
    }
    self.init(
      keyValueHeadCount: try required(config.numKeyValueHeads, "num_key_value_heads"), headDimension: headDimension,
      rotaryDimension: rotaryDimension, queryKeyNorm: .perLayer,
      hasQueryKeyValueBias: false, rotaryDimensionField: "rotary_dim")
  }
}

extension MixtureOfExpertsConfiguration {
  /// MiniMax-M2's experts (`nil` without `num_local_experts`): sigmoid scores, selection biased by
  /// `e_score_correction_bias`, weights renormalized; every layer MoE. Other scoring functions, routing without
  /// the bias and a shared expert (`shared_intermediate_size` > 0) are refused.
  init?(miniMaxM2 config: ModelConfig) throws(ReferenceModelError) {
    guard let experts = config.routedExpertCount else { return nil }
    if let scoring = config.scoringFunc, scoring != "sigmoid" {
      throw .invalidConfiguration(field: "scoring_func", value: "\"\(scoring)\"", reason: "only sigmoid is implemented")
    }
    if config.useRoutingBias == false {
      throw .invalidConfiguration(
        field: "use_routing_bias", value: "false", reason: "only routing with e_score_correction_bias is implemented")
    }
    if let shared = config.sharedExpertIntermediateSize, shared > 0 {
      throw .invalidConfiguration(
        field: "shared_intermediate_size", value: "\(shared)", reason: "a shared expert is not implemented")
    }
    self.init(
      routedExpertCount: experts, sharedExpertCount: 0,
      expertsPerToken: try required(config.numExpertsPerTok, "num_experts_per_tok"),
      expertIntermediateSize: try required(config.intermediateSize, "intermediate_size"),
      firstDenseLayerCount: 0, normalizeTopK: true, routedScalingFactor: 1,
      router: .sigmoidGroupLimited(groupCount: 1, selectedGroupCount: 1, maskedScore: .negativeInfinity))
  }
}
