extension ModelFamily {
  /// OpenAI gpt-oss (20b, 120b): grouped-query attention with biases and learned sinks, alternating sliding and
  /// full layers, fused experts with biases and an interleaved gate/up (`gate = gate_up[..., ::2]`), router
  /// `mlp.router` with a bias.
  ///
  /// The release stores only the experts in MXFP4: `mlp.experts.gate_up_proj_blocks` (U8 `[E, 2I, H/32, 16]`,
  /// low nibble first) with U8 E8M0 `_scales` `[E, 2I, H/32]` and BF16 `_bias`; attention, router, embeddings
  /// and head are BF16 (`modules_to_not_convert`). Dequantized, transformers holds the experts input-major:
  /// `gate_up_proj [E, H, 2I]`, `down_proj [E, I, H]`. Sources: transformers' `gpt_oss` and `integrations/mxfp4.py`.
  public static let gptOss = ModelFamily(
    id: "gpt-oss", name: "gpt-oss", releases: "gpt-oss-20b, gpt-oss-120b",
    detection: FamilyDetection(architectures: ["GptOssForCausalLM"], modelTypes: ["gpt_oss"]),
    naming: FamilyNaming(
      fusedExperts: FusedExperts(orientation: .inputMajor, gateUpOrder: .interleaved), router: ["router"],
      routerBias: ["bias"], sharedExperts: []),
    quantization: ReleaseQuantization(
      summary: "routed experts MXFP4 (U8 blocks, U8 E8M0 scales per 32, BF16 biases); attention, router, embeddings, head BF16",
      eightBit: ReleaseQuantization.decoderLinears, fourBit: [.routedExpert], keepFullPrecision: []),
    tensorParallel: TensorParallelPlan(
      splitDims: TensorParallelPlan.groupedQueryAttention.splitDims.merging(["self_attn": 0]) { $1 },
      headAligned: TensorParallelPlan.groupedQueryAttention.headAligned.merging(["self_attn": .query(perHead: 1)]) { $1 }),
    forwardPass: .gptOss,
    ggufArchitecture: "gpt-oss")
}
