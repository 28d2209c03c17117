extension ModelFamily {
  /// DeepSeek-V3 and R1 (V3-0324, R1-0528): MLA attention, 256 routed + 1 shared expert, sigmoid `noaux_tc`
  /// routing with an F32 `e_score_correction_bias`, MTP layer 61.
  ///
  /// The release stores every linear of the decoder blocks (MTP's block too) as F8_E4M3 with an F32
  /// `weight_scale_inv` per 128×128 block; embeddings, `lm_head`, norms, the router and MTP's `eh_proj`,
  /// `embed_tokens` and `shared_head.head` stay BF16, the router bias F32. Sources: `README_WEIGHTS.md` and
  /// `inference/convert.py` of deepseek-ai/DeepSeek-V3; transformers' `deepseek_v3`.
  public static let deepSeekV3 = ModelFamily(
    id: "deepseek-v3", name: "DeepSeek-V3", releases: "DeepSeek-V3, V3-0324, R1, R1-0528",
    detection: FamilyDetection(architectures: ["DeepseekV3ForCausalLM"], modelTypes: ["deepseek_v3"]),
    naming: .deepSeekV3,
    quantization: ReleaseQuantization(
      summary: "F8_E4M3 linears with an F32 weight_scale_inv per 128x128 block; router bias F32; the rest BF16",
      eightBit: ReleaseQuantization.decoderLinears),
    tensorParallel: .deepSeek,
    forwardPass: .deepSeekV3,
    ggufArchitecture: "deepseek2")
}

extension FamilyNaming {
  /// DeepSeek-V3's Hugging Face names (also Kimi K2, GLM-4.5 and V3.2's trunk): `model.layers.L.{self_attn,mlp}`,
  /// `mlp.experts.E.{gate,up,down}_proj`, `mlp.shared_experts`, router `mlp.gate` with
  /// `gate.e_score_correction_bias`, MTP extras after the trunk; transformers ≥ 5's fused experts are read too.
  public static let deepSeekV3 = FamilyNaming(
    fusedExperts: .transformers, mtpModules: FamilyNaming.deepSeekMTPModules)
}
