import Checkpoint

// DeepSeek-V3.2 (Exp, V3.2, Speciale), as transformers' `deepseek_v32` computes it: DeepSeek-V3's layer
// (Architectures/DeepSeekV3.swift) whose MLA attends, for each query t, only to the index_topk keys s ≤ t its
// lightning indexer ranks highest (Blocks/LightningIndexer.swift) — all of 0...t while t < index_topk, where the
// model is exactly V3. The indexer rotates halves where the MLA interleaves; its k_norm is a LayerNorm with a bias.

extension ReferenceModel {
  /// Layer `layer`'s `self_attn.indexer.*` weights.
  func loadLightningIndexer(
    _ layer: Int, _ indexer: LightningIndexerConfiguration
  ) throws -> LightningIndexerWeights {
    let c = configuration, D = c.hiddenSize, di = indexer.headDimension
    guard let Rq = c.attention.queryLoraRank else {
      throw ReferenceModelError.invalidConfiguration(
        field: "q_lora_rank", value: "null", reason: "DeepSeek-V3.2's indexer reads the compressed query")
    }
    func name(_ suffix: String) -> String { WeightNames.layer(layer, "self_attn.indexer.\(suffix)") }
    return LightningIndexerWeights(
      query: try linear(name("wq_b.weight"), indexer.headCount * di, Rq), key: try linear(name("wk.weight"), di, D),
      keyNormWeight: try vector(name("k_norm.weight"), di), keyNormBias: try vector(name("k_norm.bias"), di),
      headWeights: try linear(name("weights_proj.weight"), indexer.headCount, D), headCount: indexer.headCount,
      headDimension: di, topK: indexer.topK)
  }
}

extension LightningIndexerConfiguration {
  /// DeepSeek-V3.2's indexer sizes (`index_n_heads`, `index_head_dim`, `index_topk`, all required). transformers'
  /// `deepseek_v32` always interleaves the MLA RoPE and drops the `q_proj` form, and its MLA expands the latent to
  /// every head: `rope_interleave: false`, `q_lora_rank: null`, `attention_bias: true` or `num_key_value_heads` ≠
  /// `num_attention_heads` are refused.
  init(deepSeekV32 config: ModelConfig) throws(ReferenceModelError) {
    if config.ropeInterleave == false {
      throw .invalidConfiguration(field: "rope_interleave", value: "false", reason: "DeepSeek-V3.2 interleaves its MLA RoPE")
    }
    if config.qLoraRank == nil {
      throw .invalidConfiguration(field: "q_lora_rank", value: "null", reason: "DeepSeek-V3.2's indexer reads the compressed query")
    }
    if config.attentionBias == true {
      throw .invalidConfiguration(
        field: "attention_bias", value: "true", reason: "biases on DeepSeek-V3.2's attention projections are not implemented")
    }
    if let kv = config.numKeyValueHeads, let heads = config.numAttentionHeads, kv != heads {
      throw .invalidConfiguration(
        field: "num_key_value_heads", value: "\(kv)", reason: "must equal num_attention_heads (\(heads)) for MLA")
    }
    try refusePartialRotary(config)
    if let other = config.layerTypes?.first(where: { $0 != "full_attention" && $0 != "indexed_attention" }) {
      throw .invalidConfiguration(
        field: "layer_types", value: "\"\(other)\"", reason: "only indexed (sparse) MLA layers are implemented")
    }
    self.init(
      headCount: try required(config.indexNHeads, "index_n_heads"),
      headDimension: try required(config.indexHeadDim, "index_head_dim"),
      topK: try required(config.indexTopk, "index_topk"))
  }
}
