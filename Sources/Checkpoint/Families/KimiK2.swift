extension ModelFamily {
  /// Moonshot's Kimi K2 (Instruct, Base), K2-Thinking and K2.5: DeepSeek-V3's architecture with 384 routed
  /// experts, 64 heads, one dense layer (`model_type: kimi_k2`, architecture `DeepseekV3ForCausalLM`).
  ///
  /// K2-Instruct ships DeepSeek's FP8 blocks. K2-Thinking and K2.5 quantize only the routed experts, natively, to
  /// compressed-tensors int4 `pack-quantized` with BF16 scales per group of 32 (symmetric); the rest is BF16.
  /// K2.5 wraps the language model (`kimi_k25`, vision tower `vision_tower.*`, projector `mm_projector.*`) under
  /// `language_model.` with its config and `quantization_config` in `text_config`. Sources: MoonshotAI/Kimi-K2
  /// README and deploy guide; transformers' `kimi_k25` conversion mapping.
  public static let kimiK2 = ModelFamily(
    id: "kimi-k2", name: "Kimi K2", releases: "Kimi K2-Instruct, K2-Base, K2-Thinking, K2.5",
    detection: FamilyDetection(
      architectures: ["KimiK25ForConditionalGeneration", "Kimi_K25ForConditionalGeneration"],
      modelTypes: ["kimi_k2", "kimi_k25"]),
    naming: FamilyNaming(
      layerPrefixes: ["model.layers.", "language_model.model.layers."], fusedExperts: .transformers,
      embeddings: ["model.embed_tokens.weight", "language_model.model.embed_tokens.weight"],
      outputHeads: ["lm_head.weight", "language_model.lm_head.weight"], mtpModules: FamilyNaming.deepSeekMTPModules,
      languageModelPrefixes: [("model.", "language_model.model."), ("lm_head.", "language_model.lm_head.")]),
    quantization: ReleaseQuantization(
      summary: "K2: F8_E4M3 + F32 weight_scale_inv 128x128 like V3; K2-Thinking / K2.5: routed experts int4 pack-quantized, BF16 scale per 32, the rest BF16",
      eightBit: ReleaseQuantization.decoderLinears, fourBit: [.routedExpert]),
    tensorParallel: .deepSeek,
    forwardPass: .deepSeekV3,
    ggufArchitecture: "deepseek2")
}
