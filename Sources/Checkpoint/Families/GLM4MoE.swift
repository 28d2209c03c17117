extension ModelFamily {
  /// GLM-4.5 / 4.6 / 4.7 and GLM-4.5-Air (zai-org): grouped-query attention with q/k/v biases, optional
  /// QK-norm and partial rotary (`partial_rotary_factor` 0.5), DeepSeek-style sigmoid routing with
  /// `mlp.gate.e_score_correction_bias`, one shared expert, `first_k_dense_replace` dense layers, and one
  /// NextN/MTP layer after the trunk (layer 92 of GLM-4.5, 46 of Air).
  ///
  /// FP8 releases quantize the decoder linears; the router, embeddings, head, norms and the MTP extras stay BF16.
  /// Sources: transformers' `glm4_moe`; the GLM-4.5 model cards.
  public static let glm4MoE = ModelFamily(
    id: "glm4-moe", name: "GLM-4.5", releases: "GLM-4.5, GLM-4.5-Air, GLM-4.6, GLM-4.7 (and -FP8)",
    detection: FamilyDetection(architectures: ["Glm4MoeForCausalLM"], modelTypes: ["glm4_moe"]),
    naming: FamilyNaming(fusedExperts: .transformers, mtpModules: FamilyNaming.deepSeekMTPModules),
    quantization: ReleaseQuantization(
      summary: "FP8 releases: F8_E4M3 decoder linears (check quantization_config: block or compressed-tensors); router bias F32",
      eightBit: ReleaseQuantization.decoderLinears),
    tensorParallel: .groupedQueryAttention,
    forwardPass: .glm4MoE,
    ggufArchitecture: "glm4moe", activeParameters: .transformerBlocksOnly)
}
