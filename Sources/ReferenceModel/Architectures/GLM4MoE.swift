import Checkpoint

// GLM-4.5 / 4.6 / 4.7 and GLM-4.5-Air (zai-org), as transformers' `glm4_moe` computes it:
//
//   x = input_layernorm(h)
//   q, k, v = q_proj(x) + b_q, k_proj(x) + b_k, v_proj(x) + b_v     biases when attention_bias
//   q, k = q_norm(q), k_norm(k)                          per head, only when use_qk_norm
//   q, k = rope(q), rope(k)                              rotate-half on the first head_dim · partial_rotary_factor
//                                                        channels of each head; the rest passes through
//   h += o_proj(causal_softmax(q·kᵀ / sqrt(head_dim)) · v)     o_proj has no bias
//   x = post_attention_layernorm(h)
//   h += mlp(x)                                          below first_k_dense_replace, else
//   h += routed_scaling_factor · Σ_k w_k · expert_k(x) + shared_experts(x)
//        s = sigmoid(gate(x)); pick with s + e_score_correction_bias inside the best topk_group of n_group groups;
//        w = s of the picked experts, renormalized when norm_topk_prob (DeepSeek-V3's noaux_tc router)
//
// The NextN/MTP layer after the trunk is not part of the forward pass.

extension ReferenceModel {
  /// One GLM-4.5 decoder layer on `hidden`, in place; returns the MoE routing (nil for a dense layer).
  func applyGLM4MoELayer(
    _ layer: Int, attention: GroupedQueryAttentionConfiguration, to hidden: inout HiddenStates
  ) throws -> LayerRouting? {
    try applyGroupedQueryAttention(layer, attention: attention, to: &hidden)
    return try applyFeedForward(layer, names: .deepSeek, to: &hidden)
  }
}

extension GroupedQueryAttentionConfiguration {
  /// GLM-4.5's attention: q/k/v biases (`attention_bias`), per-head QK-norm when `use_qk_norm`, rotary over
  /// `int(head_dim · partial_rotary_factor)` channels.
  init(glm4MoE config: ModelConfig) throws(ReferenceModelError) {
    try refuseSlidingWindow(config)
    let headDimension = try checkedHeadDimension(config)
    let factor = try required(config.partialRotaryFactor, "partial_rotary_factor")
    guard factor.isFinite, factor > 0, factor <= 1 else {
      throw .invalidConfiguration(field: "partial_rotary_factor", value: "\(factor)", reason: "must be in (0, 1]")
    }
    self.init(
      keyValueHeadCount: try required(config.numKeyValueHeads, "num_key_value_heads"), headDimension: headDimension,
      rotaryDimension: Int(Double(headDimension) * factor), queryKeyNorm: config.useQkNorm == true ? .perHead : .none,
      hasQueryKeyValueBias: config.attentionBias ?? false)
  }
}

extension MixtureOfExpertsConfiguration {
  /// GLM-4.5's experts (`nil` without `n_routed_experts`): DeepSeek-V3's sigmoid group-limited router with
  /// `e_score_correction_bias`, shared experts, `routed_scaling_factor`; MoE from `first_k_dense_replace` on.
  ///
  /// transformers' `Glm4MoeDecoderLayer` ignores `moe_layer_freq`, `scoring_func` and `topk_method`, so they are
  /// ignored here too.
  init?(glm4MoE config: ModelConfig) throws(ReferenceModelError) {
    guard let experts = config.routedExpertCount else { return nil }
    self.init(
      routedExpertCount: experts, sharedExpertCount: try required(config.nSharedExperts, "n_shared_experts"),
      expertsPerToken: try required(config.numExpertsPerTok, "num_experts_per_tok"),
      expertIntermediateSize: try required(config.moeIntermediateSize, "moe_intermediate_size"),
      firstDenseLayerCount: try required(config.firstKDenseReplace, "first_k_dense_replace"),
      normalizeTopK: try required(config.normTopkProb, "norm_topk_prob"),
      routedScalingFactor: Float(try required(config.routedScalingFactor, "routed_scaling_factor")),
      router: .sigmoidGroupLimited(
        groupCount: config.nGroup ?? 1, selectedGroupCount: config.topkGroup ?? 1, maskedScore: .negativeInfinity))
  }
}
