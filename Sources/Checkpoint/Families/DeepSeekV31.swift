extension ModelFamily {
  /// DeepSeek-V3.1 (and V3.1-Terminus): V3's architecture and names; `quantization_config.scale_fmt: ue8m0`.
  ///
  /// DeepSeek's reference code (`inference/kernel.py`, PR #964) rounds activation scales up to powers of two;
  /// weights stay F8_E4M3 with F32 `weight_scale_inv`. Recognised by that field, so a V3.1 checkpoint converted
  /// to BF16 (no `quantization_config`) reads as DeepSeek-V3, which it then is.
  public static let deepSeekV31 = ModelFamily(
    id: "deepseek-v3.1", name: "DeepSeek-V3.1", releases: "DeepSeek-V3.1, V3.1-Terminus",
    detection: FamilyDetection(
      architectures: ["DeepseekV3ForCausalLM"], modelTypes: ["deepseek_v3"],
      condition: { $0.quantizationConfig?.scaleFmt == "ue8m0" }),
    naming: .deepSeekV3,
    quantization: ReleaseQuantization(
      summary: "as V3, with scale_fmt ue8m0 (F32 weight_scale_inv per 128x128 block, ue8m0 activation scales)",
      eightBit: ReleaseQuantization.decoderLinears),
    tensorParallel: .deepSeek,
    forwardPass: .deepSeekV3,
    ggufArchitecture: "deepseek2")
}
