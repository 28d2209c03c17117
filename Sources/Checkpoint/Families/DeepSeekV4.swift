extension ModelFamily {
  /// DeepSeek-V4 (Flash, Pro): hybrid compressed attention (`compressor`, an indexer), hyper-connections
  /// (`hc_*`), hash-routed first layers (`ffn.gate.tid2eid`, I64), 256 routed experts with `w1/w3/w2` names and
  /// separate MTP modules `mtp.K.*`, in DeepSeek's own names (`layers.L.attn.wq_a`, `embed.weight`, `head.weight`).
  ///
  /// Routed experts are FP4 E2M1 pairs in I8 tensors with an F8_E8M0 `.scale` per 1×32 (`expert_dtype: fp4`);
  /// the other linears F8_E4M3 with an F8_E8M0 `.scale` per 128×128 block (`scale_fmt: ue8m0`) — so a one-byte
  /// tensor is not necessarily FP8. The compressors' projections and the indexer's `weights_proj` ship BF16;
  /// norms, sinks, `ape` and the hyper-connection mixers F32. Sources: transformers' `deepseek_v4` (its conversion
  /// mapping and `_keep_in_fp32_modules`) and `integrations/finegrained_fp8.py` (`expert_dtype`, `.scale`).
  public static let deepSeekV4 = ModelFamily(
    id: "deepseek-v4", name: "DeepSeek-V4", releases: "DeepSeek-V4-Flash, V4-Pro",
    detection: FamilyDetection(architectures: ["DeepseekV4ForCausalLM"], modelTypes: ["deepseek_v4"]),
    naming: FamilyNaming(
      layerPrefixes: ["layers.", "model.layers."], mtpPrefixes: ["mtp.", "model.mtp."], feedForward: ["ffn", "mlp"],
      attention: ["attn", "self_attn"], indexer: ["indexer"], expertProjections: .mixtral, fusedExperts: .transformers,
      routerBias: ["bias", "e_score_correction_bias"],
      embeddings: ["embed.weight", "model.embed_tokens.weight"], outputHeads: ["head.weight", "lm_head.weight"],
      mtpModules: ["e_proj", "h_proj", "enorm", "hnorm", "norm", "head", "emb"]),
    quantization: ReleaseQuantization(
      summary: "routed experts FP4 E2M1 (I8 pairs) with F8_E8M0 scale per 1x32; other linears F8_E4M3 with F8_E8M0 scale per 128x128; compressor and weights_proj BF16; norms, sinks, hc F32",
      eightBit: ReleaseQuantization.decoderLinears.union([.indexer]), fourBit: [.routedExpert],
      neverQuantized: [Glob("*.compressor.wkv.weight"), Glob("*.compressor.wgate.weight"), Glob("*.indexer.weights_proj.weight")],
      keepFullPrecision: [
        Glob("*.e_score_correction_bias"), Glob("*.gate.bias"), Glob("*hc_*"), Glob("*.attn_sink"), Glob("*.ape"),
        Glob("*norm.weight"),
      ]),
    tensorParallel: TensorParallelPlan(
      splitDims: [:], refusal: "DeepSeek-V4's grouped output LoRA and hyper-connections have no published split rule"),
    forwardPass: .missing("no DeepSeek-V4 forward pass (compressed sparse attention, hyper-connections, hash routing)"),
    ggufArchitecture: "deepseek4")
}
