import Checkpoint
import JSON
import SafeTensors
import TensorCore

/// Rewrites `config.json` for a conversion's output, in the terms its consumers read.
public enum ConfigRewriter {
  /// The output config for `target`:
  /// - casts drop `quantization_config` (otherwise engines still treat the model as FP8 — DeepSeek's
  ///   `fp8_cast_bf16.py` forgets this) and set `torch_dtype`;
  /// - DeepSeek FP8 blocks get the release's block verbatim (`scale_fmt: ue8m0` when asked);
  /// - compressed-tensors FP8 gets `quant_method: compressed-tensors`, `format: float-quantized`, one
  ///   config group targeting `Linear` and an `ignore` list of the linear modules left unquantized.
  public static func rewrite(
    _ config: JSONObject, for target: ConversionTarget, jobs: [ConversionJob], compressedTensorsNaming: Bool,
    family: ConsumerFamily? = nil
  ) -> JSONObject {
    func int(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    func object(_ members: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(members: members) ?? JSONObject()) }
    switch target {
    case .cast(let dtype):
      let name = dtype == .bfloat16 ? "bfloat16" : dtype == .float16 ? "float16" : "float32"
      return config.removingQuantizationConfig().setting("torch_dtype", to: .string(name))
    case .unscaledFP8:
      return config.removingQuantizationConfig()
    case .group:
      return QuantizationConfigWriter.rewrite(config, family: family, jobs: jobs)
    case .mixed(let recipe):
      switch family {
      case nil:
        return config
      case .deepSeekFP8:
        // Only DeepSeek FP8 blocks (and kept tensors): the release's own block.
        for scheme in recipe.rules.map(\.scheme) + [recipe.fallback] {
          if case .target(.fp8(let layout)) = scheme {
            return rewrite(config, for: .fp8(layout), jobs: jobs, compressedTensorsNaming: false)
          }
        }
        return config
      default:
        return QuantizationConfigWriter.rewrite(config, family: family, jobs: jobs)
      }
    case .fp8(let layout):
      if case .block(let r, let c) = layout.granularity, !compressedTensorsNaming {
        var members: [(String, JSONValue)] = [
          ("activation_scheme", "dynamic"), ("fmt", "e4m3"), ("quant_method", "fp8"),
        ]
        if layout.ue8m0Scales { members.append(("scale_fmt", "ue8m0")) }
        members.append(("weight_block_size", .array([int(r), int(c)])))
        return config.setting("quantization_config", to: object(members))
      }
      var weights: [(String, JSONValue)] = [
        ("actorder", .null), ("block_structure", .null), ("dynamic", false), ("group_size", .null), ("num_bits", 8),
        ("observer", "minmax"), ("observer_kwargs", object([])), ("strategy", "tensor"), ("symmetric", true), ("type", "float"),
      ]
      var activations: [(String, JSONValue)] = [
        ("actorder", .null), ("block_structure", .null), ("dynamic", true), ("group_size", .null), ("num_bits", 8),
        ("observer", .null), ("observer_kwargs", object([])), ("strategy", "token"), ("symmetric", true), ("type", "float"),
      ]
      func set(_ list: inout [(String, JSONValue)], _ key: String, _ value: JSONValue) {
        if let i = list.firstIndex(where: { $0.0 == key }) { list[i].1 = value }
      }
      switch layout.granularity {
      case .block(let r, let c):
        set(&weights, "strategy", "block")
        set(&weights, "block_structure", .array([int(r), int(c)]))
        set(&activations, "strategy", "group")
        set(&activations, "group_size", int(c))
      case .channel:
        set(&weights, "strategy", "channel")
      case .tensor:
        break
      }
      // Linear modules that stay unquantized: every 2-D plain weight the plan did not quantize.
      var ignore: [String] = []
      for job in jobs {
        guard case .copy = job.action, job.group.storage == .plain, let name = job.group.parts["weight"],
          name.hasSuffix(".weight"), let output = job.outputs.first, output.shape.count == 2
        else { continue }
        let module = String(name.dropLast(".weight".count))
        if !module.hasSuffix("embed_tokens") && !module.hasSuffix("norm") { ignore.append(module) }
      }
      let quantization = object([
        ("config_groups", object([
          ("group_0", object([
            ("format", "float-quantized"), ("input_activations", object(activations)), ("output_activations", .null),
            ("targets", .array(["Linear"])), ("weights", object(weights)),
          ]))
        ])),
        ("format", "float-quantized"),
        ("global_compression_ratio", .null),
        ("ignore", .array(ignore.map { .string($0) })),
        ("kv_cache_scheme", .null),
        ("quant_method", "compressed-tensors"),
        ("quantization_status", "compressed"),
      ])
      return config.setting("quantization_config", to: quantization)
    }
  }
}
