// DeepSeek-V3 / V3.1 / Kimi K2: multi-head latent attention + DeepSeek MoE (transformers' `deepseek_v3`), and
// DeepSeek-V3.2 (`deepseek_v32`), whose MLA attends only to the keys its lightning indexer picks.
//
//   h += MLA(input_layernorm(h))                       Blocks/LatentAttention.swift, YaRN in Blocks/Rope.swift
//                                                      V3.2: keys from Blocks/LightningIndexer.swift (index_topk
//                                                      per query, all of them while t < index_topk)
//   h += FFN(post_attention_layernorm(h))              dense SwiGLU below first_k_dense_replace, else
//                                                      sigmoid group-limited routing (noaux_tc) + shared experts

extension ReferenceModel {
  /// One DeepSeek-V3 decoder layer on `hidden`, in place (with V3.2's `indexer` when given); returns the MoE
  /// routing (nil for a dense layer).
  func applyDeepSeekV3Layer(
    _ layer: Int, indexer: LightningIndexerConfiguration? = nil, to hidden: inout HiddenStates
  ) throws -> LayerRouting? {
    let c = configuration
    let D = c.hiddenSize, N = hidden.batchSize * hidden.sequenceLength
    let rope = RopeTable(
      configuration: c.rope, dimension: c.attention.ropeHeadDimension, positionCount: hidden.sequenceLength)

    // Attention block (its weights live only inside this scope).
    do {
      let norm = try vector(WeightNames.layer(layer, "input_layernorm.weight"), D)
      var attentionWeights = try loadLatentAttention(layer)
      var indexerRope: RopeTable?
      if let indexer {
        attentionWeights.indexer = try loadLightningIndexer(layer, indexer)
        // The indexer rotates halves (transformers' `apply_rotary_pos_emb`) with the same frequencies.
        var halves = c.rope
        halves.interleaved = false
        indexerRope = RopeTable(
          configuration: halves, dimension: c.attention.ropeHeadDimension, positionCount: hidden.sequenceLength)
      }
      let normed = rmsNorm(hidden.values, weight: norm, rowCount: N, width: D, epsilon: c.rmsNormEpsilon)
      let attended = latentAttention(
        normed, weights: attentionWeights, configuration: c, rope: rope, batchSize: hidden.batchSize,
        sequenceLength: hidden.sequenceLength, indexerRope: indexerRope)
      hidden.values = add(hidden.values, attended)
    }

    return try applyFeedForward(layer, names: .deepSeek, to: &hidden)
  }

  private func loadLatentAttention(_ layer: Int) throws -> LatentAttentionWeights {
    let c = configuration, a = c.attention
    let D = c.hiddenSize, H = c.headCount
    let dq = a.queryKeyHeadDimension, dv = a.valueHeadDimension, Rkv = a.keyValueLoraRank
    func name(_ suffix: String) -> String { WeightNames.layer(layer, "self_attn.\(suffix)") }
    let query: LatentAttentionWeights.Query
    if let Rq = a.queryLoraRank {
      query = .lowRank(
        down: try linear(name("q_a_proj.weight"), Rq, D), norm: try vector(name("q_a_layernorm.weight"), Rq),
        up: try linear(name("q_b_proj.weight"), H * dq, Rq))
    } else {
      query = .direct(try linear(name("q_proj.weight"), H * dq, D))
    }
    return LatentAttentionWeights(
      query: query,
      keyValueDown: try linear(name("kv_a_proj_with_mqa.weight"), Rkv + a.ropeHeadDimension, D),
      keyValueNorm: try vector(name("kv_a_layernorm.weight"), Rkv),
      keyValueUp: try linear(name("kv_b_proj.weight"), H * (a.noPositionHeadDimension + dv), Rkv),
      output: try linear(name("o_proj.weight"), D, H * dv))
  }
}
