/// Hugging Face tensor names the forward pass reads (DeepSeek-V3 layout; Qwen3-MoE and Llama share the
/// attention-independent names).
public enum WeightNames {
  /// `[V, D]` token embeddings.
  public static let embedding = "model.embed_tokens.weight"
  /// `[D]` final RMSNorm.
  public static let finalNorm = "model.norm.weight"
  /// `[V, D]` output projection (the embedding when `tie_word_embeddings`).
  public static let lmHead = "lm_head.weight"

  /// `model.layers.{layer}.{suffix}`.
  public static func layer(_ layer: Int, _ suffix: String) -> String { "model.layers.\(layer).\(suffix)" }

  /// Routed expert `expert`'s projection `projection` (`gate_proj`, `up_proj`, `down_proj`) in `layer`.
  public static func expert(_ layer: Int, _ expert: Int, _ projection: String) -> String {
    "model.layers.\(layer).mlp.experts.\(expert).\(projection).weight"
  }

  /// Every tensor name of `layer` the forward pass may read, given `configuration` (routed experts included).
  public static func layerTensorNames(_ layer: Int, configuration: ModelConfiguration) -> [String] {
    var names = ["input_layernorm.weight", "post_attention_layernorm.weight"]
    if configuration.attention.queryLoraRank != nil {
      names += ["self_attn.q_a_proj.weight", "self_attn.q_a_layernorm.weight", "self_attn.q_b_proj.weight"]
    } else {
      names += ["self_attn.q_proj.weight"]
    }
    names += [
      "self_attn.kv_a_proj_with_mqa.weight", "self_attn.kv_a_layernorm.weight", "self_attn.kv_b_proj.weight",
      "self_attn.o_proj.weight",
    ]
    if let moe = configuration.mixtureOfExperts, configuration.isMixtureOfExpertsLayer(layer) {
      names += ["mlp.gate.weight"]
      if case .sigmoidGroupLimited = moe.router { names += ["mlp.gate.e_score_correction_bias"] }
      for e in 0..<moe.routedExpertCount {
        names += ["gate_proj", "up_proj", "down_proj"].map { "mlp.experts.\(e).\($0).weight" }
      }
      if moe.sharedExpertCount > 0 {
        names += ["gate_proj", "up_proj", "down_proj"].map { "mlp.shared_experts.\($0).weight" }
      }
    } else {
      names += ["mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"]
    }
    return names.map { Self.layer(layer, $0) }
  }
}
