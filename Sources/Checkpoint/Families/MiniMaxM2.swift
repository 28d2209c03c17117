extension ModelFamily {
  /// MiniMax-M2 (M2.1, M2.5): grouped-query attention with per-layer QK-norm over all heads and partial rotary
  /// (`rotary_dim` 64), 256 Mixtral-named experts (`block_sparse_moe.experts.E.w1/w3/w2`), sigmoid routing
  /// with `block_sparse_moe.e_score_correction_bias`, no shared expert.
  ///
  /// The release quantizes attention and experts to F8_E4M3 with F32 `weight_scale_inv` per 128×128 block
  /// (`fmt: float8_e4m3fn`); `modules_to_not_convert` keeps `gate`, `e_score_correction_bias` and `lm_head`: the
  /// router stays F32. Sources: transformers' `minimax_m2`; ModelCloud/GPTQModel `minimax_m2.py`.
  public static let miniMaxM2 = ModelFamily(
    id: "minimax-m2", name: "MiniMax-M2", releases: "MiniMax-M2, M2.1, M2.5",
    detection: FamilyDetection(architectures: ["MiniMaxM2ForCausalLM"], modelTypes: ["minimax_m2"]),
    naming: FamilyNaming(
      feedForward: ["block_sparse_moe", "mlp"], expertProjections: .mixtral, fusedExperts: .transformers, sharedExperts: []),
    quantization: ReleaseQuantization(
      summary: "F8_E4M3 attention and expert linears with F32 weight_scale_inv 128x128 (fmt float8_e4m3fn); router F32, embeddings/head/norms BF16",
      eightBit: [.attention, .routedExpert],
      keepFullPrecision: [Glob("*.e_score_correction_bias"), Glob("*.block_sparse_moe.gate.weight")]),
    tensorParallel: TensorParallelPlan(
      splitDims: TensorParallelPlan.groupedQueryAttention.splitDims.merging(["q_norm": 0, "k_norm": 0]) { $1 },
      headAligned: TensorParallelPlan.groupedQueryAttention.headAligned.merging(
        ["q_norm": .query(perHead: nil), "k_norm": .keyValue]) { $1 }),
    forwardPass: .miniMaxM2,
    ggufArchitecture: "minimax-m2")
}
