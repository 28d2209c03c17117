extension ModelFamily {
  /// DeepSeek-V3.2 (Exp, V3.2, Speciale): V3 plus a lightning indexer per layer for DeepSeek Sparse Attention.
  ///
  /// The indexer's `wq_b` and `wk` are FP8 blocks like every other linear; `weights_proj` is BF16 and never
  /// quantized (`dtype=torch.get_default_dtype()` in DeepSeek's `Indexer`); `k_norm` is a LayerNorm with a bias,
  /// kept F32. DeepSeek's V3.2 `convert.py` replicates all indexer tensors. Sources: deepseek-ai/DeepSeek-V3.2-Exp
  /// `inference/model.py`, `config_671B_v3.2.json`; transformers' `deepseek_v32`.
  public static let deepSeekV32 = ModelFamily(
    id: "deepseek-v3.2", name: "DeepSeek-V3.2", releases: "DeepSeek-V3.2-Exp, V3.2, V3.2-Speciale",
    detection: FamilyDetection(architectures: ["DeepseekV32ForCausalLM"], modelTypes: ["deepseek_v32"]),
    naming: FamilyNaming(indexer: ["indexer"], fusedExperts: .transformers, mtpModules: FamilyNaming.deepSeekMTPModules),
    quantization: ReleaseQuantization(
      summary: "as V3 (F8_E4M3 + F32 weight_scale_inv 128x128, scale_fmt ue8m0); indexer wq_b/wk FP8, weights_proj BF16, k_norm F32",
      eightBit: ReleaseQuantization.decoderLinears.union([.indexer]),
      neverQuantized: [Glob("*.indexer.weights_proj.weight")],
      keepFullPrecision: [Glob("*.e_score_correction_bias"), Glob("*.indexer.k_norm.weight"), Glob("*.indexer.k_norm.bias")]),
    tensorParallel: .deepSeek,
    forwardPass: .deepSeekV32,
    ggufArchitecture: "deepseek32")
}
