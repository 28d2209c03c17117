extension ModelFamily {
  /// Qwen3-MoE (Qwen3-30B-A3B, 235B-A22B, Coder-480B-A35B, their FP8 twins): grouped-query attention with
  /// QK-norm and no biases, softmax top-k routing, no shared expert and no router bias; dense layers chosen by
  /// `mlp_only_layers` / `decoder_sparse_step`.
  ///
  /// The FP8 releases store attention and expert linears as F8_E4M3 with F32 `weight_scale_inv` per 128×128
  /// block; the router `mlp.gate`, embeddings, `lm_head` and norms stay BF16. Sources: transformers' `qwen3_moe`;
  /// the Qwen3-*-FP8 model cards.
  public static let qwen3MoE = ModelFamily(
    id: "qwen3-moe", name: "Qwen3-MoE", releases: "Qwen3-30B-A3B, Qwen3-235B-A22B, Qwen3-Coder-480B-A35B (and -FP8)",
    detection: FamilyDetection(architectures: ["Qwen3MoeForCausalLM"], modelTypes: ["qwen3_moe"]),
    naming: FamilyNaming(fusedExperts: .transformers, sharedExperts: []),
    quantization: ReleaseQuantization(
      summary: "FP8 releases: F8_E4M3 attention and expert linears with F32 weight_scale_inv 128x128; router, embeddings, head, norms BF16",
      eightBit: [.attention, .denseFeedForward, .routedExpert]),
    tensorParallel: .groupedQueryAttention,
    forwardPass: .qwen3MoE,
    ggufArchitecture: "qwen3moe", activeParameters: .everything)
}
