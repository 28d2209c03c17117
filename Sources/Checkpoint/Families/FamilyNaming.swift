/// A family's tensor names, as module names the classifier looks for (never whole regular expressions).
///
/// A name is read component by component: an optional layer prefix and index (`model.layers.7.`), then the
/// block (`mlp`, `self_attn`, ...), then what sits in it. Names outside the layers are matched whole
/// (`model.embed_tokens.weight`).
public struct FamilyNaming: Sendable {
  /// Where decoder layers live, each followed by the layer index: `model.layers.` (Hugging Face), `layers.`
  /// (DeepSeek-V4's own names), `language_model.model.layers.` (Kimi K2.5).
  public var layerPrefixes: [String]
  /// Separate lists of MTP modules, numbered after the trunk (DeepSeek-V4 `mtp.0.` is layer `num_hidden_layers`).
  public var mtpPrefixes: [String]
  /// Name prefixes of MTP modules that are not numbered layers (Qwen3.5's `mtp.fc`, `mtp.norm`): MTP, no layer.
  public var mtpRoots: [String]
  /// The feed-forward block of a layer: `mlp`, `block_sparse_moe` (Mixtral / MiniMax), `ffn` (DeepSeek-V4).
  public var feedForward: Set<String>
  /// The attention block of a layer: `self_attn`, `attn`, `linear_attn` (Qwen3.5's Gated DeltaNet layers).
  public var attention: Set<String>
  /// The lightning indexer inside the attention block (DeepSeek-V3.2 / V4).
  public var indexer: Set<String>
  /// The routed-expert container inside the feed-forward block.
  public var experts: String
  /// Per-expert projection names: `experts.E.<name>.weight`.
  public var expertProjections: ExpertProjections
  /// The fused 3-D form, when the family's checkpoints use one.
  public var fusedExperts: FusedExperts?
  /// The router module inside the feed-forward block (`gate`, `router`).
  public var router: Set<String>
  /// Leaves that are the router's selection bias: under the router (`gate.e_score_correction_bias`,
  /// `router.bias`) or directly in the feed-forward block (MiniMax's `block_sparse_moe.e_score_correction_bias`).
  public var routerBias: Set<String>
  /// Shared-expert modules inside the feed-forward block (`shared_experts`, `shared_expert`).
  public var sharedExperts: Set<String>
  /// Full names of the token embeddings.
  public var embeddings: Set<String>
  /// Full names of the output head.
  public var outputHeads: Set<String>
  /// Modules an MTP layer adds around its decoder block (`embed_tokens`, `enorm`, `hnorm`, `eh_proj`, `shared_head`).
  public var mtpModules: Set<String>
  /// Where a multimodal wrapper keeps the language model: (Hugging Face name prefix, this release's prefix), e.g.
  /// Kimi K2.5's `("model.", "language_model.model.")`, so the forward pass finds `model.layers.0...` there.
  public var languageModelPrefixes: [(canonical: String, release: String)]

  public init(
    layerPrefixes: [String] = ["model.layers."], mtpPrefixes: [String] = [], mtpRoots: [String] = [], feedForward: Set<String> = ["mlp"],
    attention: Set<String> = ["self_attn"], indexer: Set<String> = [], experts: String = "experts",
    expertProjections: ExpertProjections = .huggingFace, fusedExperts: FusedExperts? = nil, router: Set<String> = ["gate"],
    routerBias: Set<String> = ["e_score_correction_bias"], sharedExperts: Set<String> = ["shared_experts"],
    embeddings: Set<String> = ["model.embed_tokens.weight"], outputHeads: Set<String> = ["lm_head.weight"],
    mtpModules: Set<String> = [], languageModelPrefixes: [(canonical: String, release: String)] = []
  ) {
    self.layerPrefixes = layerPrefixes
    self.mtpPrefixes = mtpPrefixes
    self.mtpRoots = mtpRoots
    self.feedForward = feedForward
    self.attention = attention
    self.indexer = indexer
    self.experts = experts
    self.expertProjections = expertProjections
    self.fusedExperts = fusedExperts
    self.router = router
    self.routerBias = routerBias
    self.sharedExperts = sharedExperts
    self.embeddings = embeddings
    self.outputHeads = outputHeads
    self.mtpModules = mtpModules
    self.languageModelPrefixes = languageModelPrefixes
  }

  /// The `languageModelPrefixes` a checkpoint with tensors `names` uses: none when it is the family's plain
  /// language model (Kimi K2-Thinking: `model.*`), all of them when it is the wrapper (K2.5: `language_model.*`).
  public func languageModelPrefixes(usedBy names: some Sequence<String>) -> [(canonical: String, release: String)] {
    guard !languageModelPrefixes.isEmpty, names.contains(where: { name in
      languageModelPrefixes.contains { name.hasPrefix($0.release) }
    }) else { return [] }
    return languageModelPrefixes
  }

  /// DeepSeek-V3's MTP extras (also GLM-4.5's NextN layer).
  public static let deepSeekMTPModules: Set<String> = ["embed_tokens", "enorm", "hnorm", "eh_proj", "shared_head"]
}

/// The names of a SwiGLU expert's three projections.
public struct ExpertProjections: Sendable, Equatable {
  public var gate: String
  public var up: String
  public var down: String

  public init(gate: String, up: String, down: String) {
    self.gate = gate
    self.up = up
    self.down = down
  }

  /// `gate_proj` / `up_proj` / `down_proj`.
  public static let huggingFace = ExpertProjections(gate: "gate_proj", up: "up_proj", down: "down_proj")
  /// Mixtral's and DeepSeek's own `w1` (gate) / `w3` (up) / `w2` (down).
  public static let mixtral = ExpertProjections(gate: "w1", up: "w3", down: "w2")
}

/// Routed experts stored as one tensor per projection with the expert index first.
public struct FusedExperts: Sendable, Equatable {
  /// How the two matrix dims of a fused plain tensor are ordered.
  public enum Orientation: Sendable, Equatable {
    /// `[E, out, in]`: transformers ≥ 5's `gate_up_proj [E, 2I, H]`, `down_proj [E, H, I]`.
    case outputMajor
    /// `[E, in, out]`: gpt-oss's BF16 `gate_up_proj [E, H, 2I]`, `down_proj [E, I, H]`.
    case inputMajor
  }

  /// How gate and up share the fused `gate_up` tensor's output rows.
  public enum GateUpOrder: Sendable, Equatable {
    /// Gate rows first, then up rows (`torch.cat`, transformers' `Concatenate(dim=1)`).
    case concatenated
    /// Alternating gate, up, gate, ... (gpt-oss: `gate = gate_up[..., ::2]`).
    case interleaved
  }

  /// The fused gate+up projection's name (`gate_up_proj`).
  public var gateUp: String
  /// The fused down projection's name (`down_proj`).
  public var down: String
  /// Axis order of the plain (unquantized) form.
  public var orientation: Orientation
  public var gateUpOrder: GateUpOrder

  public init(gateUp: String = "gate_up_proj", down: String = "down_proj", orientation: Orientation, gateUpOrder: GateUpOrder) {
    self.gateUp = gateUp
    self.down = down
    self.orientation = orientation
    self.gateUpOrder = gateUpOrder
  }

  /// transformers ≥ 5's fused MoE experts (`[E, 2I, H]` gate then up; `[E, H, I]`).
  public static let transformers = FusedExperts(orientation: .outputMajor, gateUpOrder: .concatenated)
}
