import Checkpoint
import JSON
import SafeTensors
import TensorCore
import WeightFormats

/// Rewrites `config.json` for a conversion's output, in the terms its consumers read.
public enum ConfigRewriter {
  /// The output config for `target`:
  /// - casts drop `quantization_config` (otherwise engines still treat the model as FP8 — DeepSeek's
  ///   `fp8_cast_bf16.py` forgets this) and set `torch_dtype`;
  /// - DeepSeek FP8 blocks get the release's block verbatim (`scale_fmt: ue8m0` when asked);
  /// - compressed-tensors FP8 (channel, tensor, or blocks with `--compressed-tensors`) gets the block
  ///   `QuantizationConfigWriter` writes for every compressed-tensors output, so `--to fp8-channel` and
  ///   `--rule '*=fp8-channel'` write the same bytes.
  ///
  /// `quantization` is the plan's metadata, in the consumer family the plan derives from `target`.
  static func rewrite(
    _ config: JSONObject, for target: ConversionTarget, quantization: QuantizationConfigWriter.Metadata,
    compressedTensorsNaming: Bool
  ) -> JSONObject {
    switch target {
    case .cast(let dtype):
      let name = dtype == .bfloat16 ? "bfloat16" : dtype == .float16 ? "float16" : "float32"
      return config.removingQuantizationConfig().setting("torch_dtype", to: .string(name))
    case .unscaledFP8:
      return config.removingQuantizationConfig()
    case .group:
      return quantization.rewrite(config)
    case .mixed(let recipe):
      switch quantization.family {
      case nil:
        return config
      case .deepSeekFP8:
        // Only DeepSeek FP8 blocks (and kept tensors): the release's own block.
        for scheme in recipe.rules.map(\.scheme) + [recipe.fallback] {
          if case .target(.fp8(let layout)) = scheme {
            return rewrite(config, for: .fp8(layout), quantization: quantization, compressedTensorsNaming: false)
          }
        }
        return config
      default:
        return quantization.rewrite(config)
      }
    case .fp8(let layout):
      if !compressedTensorsNaming, let release = layout.deepSeekQuantizationConfig {
        return config.setting("quantization_config", to: release)
      }
      // compressed-tensors naming: the one compressed-tensors writer, as for a recipe of the same scheme.
      return quantization.rewrite(config)
    }
  }
}
