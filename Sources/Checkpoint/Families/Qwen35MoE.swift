extension ModelFamily {
  /// Qwen3.5 / 3.6 MoE (e.g. Qwen3.6-35B-A3B): a vision-language wrapper (`Qwen3_5MoeForConditionalGeneration`,
  /// config in `text_config`) around hybrid layers — Gated DeltaNet `linear_attn` and gated full attention —
  /// with 256 routed experts and one gated shared expert, plus MTP modules under `mtp.`.
  ///
  /// The BF16 release stores routed experts fused (`mlp.experts.gate_up_proj [E, 2I, H]`, `down_proj [E, H, I]`)
  /// while its MTP layer is per-expert; the FP8 release is per-expert with **BF16** `weight_scale_inv` per
  /// 128×128 block and keeps `lm_head`, embeddings, norms, routers, the shared-expert gate and the linear-attention
  /// state (`A_log`, `dt_bias`, `conv1d`) in BF16 (`modules_to_not_convert`). Sources: transformers' `qwen3_5_moe`;
  /// vllm-project/llm-compressor #3037.
  public static let qwen35MoE = ModelFamily(
    id: "qwen3.5-moe", name: "Qwen3.5-MoE", releases: "Qwen3.5 / Qwen3.6 MoE (e.g. Qwen3.6-35B-A3B, and -FP8)",
    detection: FamilyDetection(
      architectures: ["Qwen3_5MoeForConditionalGeneration", "Qwen3_5MoeForCausalLM"],
      modelTypes: ["qwen3_5_moe", "qwen3_5_moe_text"]),
    naming: FamilyNaming(
      layerPrefixes: ["model.language_model.layers.", "model.layers."], mtpPrefixes: ["mtp.layers."], mtpRoots: ["mtp."],
      attention: ["self_attn", "linear_attn"], fusedExperts: .transformers, sharedExperts: ["shared_expert"],
      embeddings: ["model.language_model.embed_tokens.weight", "model.embed_tokens.weight"],
      // The wrapper's language model; `model.visual.*` is the vision tower.
      languageModelPrefixes: [("model.", "model.language_model."), ("lm_head.", "lm_head."), ("mtp.", "mtp.")]),
    quantization: ReleaseQuantization(
      summary: "BF16 release: fused 3-D experts; FP8 release: per-expert F8_E4M3 with BF16 weight_scale_inv 128x128, modules_to_not_convert in BF16",
      eightBit: [.attention, .routedExpert, .sharedExpert]),
    tensorParallel: TensorParallelPlan(
      splitDims: [:], refusal: "Qwen3.5's linear-attention projections pack q/k/v/z per head group; tensor parallelism is not planned for them"),
    forwardPass: .missing("no Qwen3.5-MoE forward pass (Gated DeltaNet linear attention)"),
    ggufArchitecture: "qwen35moe")
}
