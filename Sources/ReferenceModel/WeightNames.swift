/// Hugging Face tensor names the forward pass reads (the per-layer names of each architecture are listed by
/// `ModelConfiguration.forEachExpectedWeight`).
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

  /// Every tensor name of `layer` the forward pass may read, given `configuration` (routed experts included),
  /// in the order `ModelConfiguration.forEachExpectedWeight` lists them.
  public static func layerTensorNames(_ layer: Int, configuration: ModelConfiguration) -> [String] {
    let prefix = Self.layer(layer, "")
    var names: [String] = []
    try? configuration.forEachExpectedWeight { name, _ in
      if name.hasPrefix(prefix) { names.append(name) }
    }
    return names
  }
}

/// The projections of one SwiGLU MLP inside its module.
public struct SwiGLUProjectionNames: Sendable, Equatable {
  public var gate: String
  public var up: String
  public var down: String

  /// `gate_proj`, `up_proj`, `down_proj` (Llama, DeepSeek, Qwen, GLM).
  public static let llama = SwiGLUProjectionNames(gate: "gate_proj", up: "up_proj", down: "down_proj")
  /// Mixtral's `w1` (gate), `w3` (up), `w2` (down) (MiniMax-M2's experts).
  public static let mixtral = SwiGLUProjectionNames(gate: "w1", up: "w3", down: "w2")
}

/// Where a MoE block's tensors live inside a layer (`model.layers.L.` + these).
public struct FeedForwardNames: Sendable, Equatable {
  /// The MoE module (`mlp`, MiniMax-M2's `block_sparse_moe`).
  public var module: String
  /// The router weight `[E, D]` and its selection bias `[E]`.
  public var router: String
  public var routerBias: String
  /// The shared experts' SwiGLU module.
  public var sharedExperts: String
  /// How the routed experts name their projections.
  public var expertProjections: SwiGLUProjectionNames

  /// Routed expert `e`'s module.
  public func expert(_ e: Int) -> String { "\(module).experts.\(e)" }

  /// DeepSeek-V3, Qwen3-MoE, GLM-4.5: `mlp.gate.weight`, `mlp.gate.e_score_correction_bias`, `mlp.shared_experts`,
  /// `mlp.experts.E.{gate,up,down}_proj`.
  public static let deepSeek = FeedForwardNames(
    module: "mlp", router: "mlp.gate.weight", routerBias: "mlp.gate.e_score_correction_bias",
    sharedExperts: "mlp.shared_experts", expertProjections: .llama)
  /// gpt-oss: `mlp.router.weight` and its logit bias `mlp.router.bias`; the experts are fused
  /// (`mlp.experts.gate_up_proj`, `down_proj` and their `_bias`), see `Architectures/GptOss.swift`.
  public static let gptOss = FeedForwardNames(
    module: "mlp", router: "mlp.router.weight", routerBias: "mlp.router.bias", sharedExperts: "mlp.shared_experts",
    expertProjections: .llama)
  /// MiniMax-M2: `block_sparse_moe.gate.weight`, `block_sparse_moe.e_score_correction_bias`,
  /// `block_sparse_moe.experts.E.{w1,w3,w2}`.
  public static let miniMax = FeedForwardNames(
    module: "block_sparse_moe", router: "block_sparse_moe.gate.weight",
    routerBias: "block_sparse_moe.e_score_correction_bias", sharedExperts: "block_sparse_moe.shared_experts",
    expertProjections: .mixtral)
}

extension Architecture {
  /// Where this architecture's MoE tensors live.
  public var feedForwardNames: FeedForwardNames {
    switch self {
    case .deepSeekV3, .deepSeekV32, .qwen3MoE, .glm4MoE: .deepSeek
    case .miniMaxM2: .miniMax
    case .gptOss: .gptOss
    }
  }
}
