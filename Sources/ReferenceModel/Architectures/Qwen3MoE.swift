import Checkpoint

// Qwen3-MoE (Qwen3-30B-A3B, 235B-A22B, Coder-480B-A35B), as transformers' `qwen3_moe` computes it:
//
//   x = input_layernorm(h)
//   q, k, v = q_proj(x), k_proj(x), v_proj(x)          H query heads, KV key/value heads of head_dim
//   q, k = q_norm(q), k_norm(k)                         RMSNorm over each head (rms_norm_eps)
//   q, k = rope(q), rope(k)                             rotate-half over the whole head
//   h += o_proj(causal_softmax(q·kᵀ / sqrt(head_dim)) · v)    each KV head serves H / KV query heads
//   x = post_attention_layernorm(h)
//   h += mlp(x)            on the mlp_only_layers (and when (layer + 1) % decoder_sparse_step != 0), else
//   h += Σ_k p_k · expert_k(x)    p = softmax(gate(x)), top num_experts_per_tok, renormalized when norm_topk_prob
//
// No shared expert, no router bias, no routed_scaling_factor.

extension ReferenceModel {
  /// One Qwen3-MoE decoder layer on `hidden`, in place; returns the MoE routing (nil for a dense layer).
  func applyQwen3MoELayer(
    _ layer: Int, attention: GroupedQueryAttentionConfiguration, to hidden: inout HiddenStates
  ) throws -> LayerRouting? {
    try applyGroupedQueryAttention(layer, attention: attention, to: &hidden)
    return try applyFeedForward(layer, names: .deepSeek, to: &hidden)
  }
}

extension GroupedQueryAttentionConfiguration {
  /// Qwen3-MoE's attention: per-head QK-norm, full rotary, `attention_bias` on q/k/v; sliding-window attention
  /// (`use_sliding_window`, `sliding_attention` layers) is refused.
  init(qwen3MoE config: ModelConfig) throws(ReferenceModelError) {
    try refuseSlidingWindow(config)
    try refusePartialRotary(config)
    let headDimension = try checkedHeadDimension(config)
    self.init(
      keyValueHeadCount: try required(config.numKeyValueHeads, "num_key_value_heads"), headDimension: headDimension,
      rotaryDimension: headDimension, queryKeyNorm: .perHead, hasQueryKeyValueBias: config.attentionBias ?? false,
      rotaryDimensionField: "head_dim")
  }
}

extension MixtureOfExpertsConfiguration {
  /// Qwen3-MoE's experts (`nil` without `num_experts`): softmax top-k, MoE layers from `mlp_only_layers` /
  /// `decoder_sparse_step`. A shared expert (Qwen2-MoE's `shared_expert_intermediate_size`) is refused.
  init?(qwen3MoE config: ModelConfig) throws(ReferenceModelError) {
    guard let experts = config.routedExpertCount else { return nil }
    if let shared = config.sharedExpertIntermediateSize, shared > 0 {
      throw .invalidConfiguration(
        field: "shared_expert_intermediate_size", value: "\(shared)",
        reason: "Qwen3-MoE has no shared expert; Qwen2-MoE's shared expert is not implemented")
    }
    self.init(
      routedExpertCount: experts, sharedExpertCount: 0,
      expertsPerToken: try required(config.numExpertsPerTok, "num_experts_per_tok"),
      expertIntermediateSize: try required(config.moeIntermediateSize, "moe_intermediate_size"),
      firstDenseLayerCount: 0, normalizeTopK: try required(config.normTopkProb, "norm_topk_prob"),
      routedScalingFactor: 1, router: .softmaxTopK, sparseLayers: try Self.sparseLayers(config))
  }
}
