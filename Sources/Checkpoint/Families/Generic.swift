extension ModelFamily {
  /// The view of an architecture no family claims: every family's names are recognised (so Llama-, Mixtral- and
  /// DeepSeek-like checkpoints inspect, convert and shard), DeepSeek's quantization and tensor-parallel rules
  /// apply, and the reference forward pass is tried only for MLA configs.
  public static let generic = ModelFamily(
    id: "generic", name: "unknown architecture", releases: "",
    detection: FamilyDetection(architectures: [], modelTypes: []),
    naming: FamilyNaming(
      layerPrefixes: ["model.layers.", "model.language_model.layers.", "language_model.model.layers.", "layers."],
      feedForward: ["mlp", "block_sparse_moe", "ffn"], attention: ["self_attn", "attn", "linear_attn"],
      indexer: ["indexer"], fusedExperts: .transformers, router: ["gate", "router"],
      routerBias: ["e_score_correction_bias", "bias"], sharedExperts: ["shared_experts", "shared_expert"],
      mtpModules: FamilyNaming.deepSeekMTPModules),
    quantization: ReleaseQuantization(
      summary: "unknown release", eightBit: ReleaseQuantization.decoderLinears.union([.indexer]),
      neverQuantized: [Glob("*.indexer.weights_proj.weight")]),
    tensorParallel: .deepSeek,
    forwardPass: .deepSeekV3,
    ggufArchitecture: nil)
}
