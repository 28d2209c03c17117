import SafeTensors
import TensorCore

/// How a linear layer's weight is stored on disk: plain, or one of the quantized layouts Smelt reads.
public enum WeightStorage: String, Sendable, CaseIterable, Codable {
  /// One floating-point `weight` tensor (F32/F16/BF16/...).
  case plain
  /// DeepSeek / HF `fp8`: `weight` F8_E4M3 + `weight_scale_inv` F32 block scales.
  case fp8Block = "fp8-block"
  /// compressed-tensors `float-quantized`: `weight` F8_E4M3 + `weight_scale` (block, channel or tensor).
  case fp8CompressedTensors = "fp8-compressed-tensors"
  /// compressed-tensors `pack-quantized` int4: `weight_packed` I32 + `weight_scale` + `weight_shape`.
  case int4PackQuantized = "int4-pack-quantized"
  /// GPTQ v1: `qweight`, `qzeros`, `scales`, `g_idx`.
  case gptq
  /// MLX affine: `weight` U32 + `scales` + `biases`.
  case mlxAffine = "mlx-affine"
  /// compressed-tensors `mxfp4-pack-quantized`: `weight_packed` U8 + `weight_scale` U8 (E8M0).
  case mxfp4CompressedTensors = "mxfp4-pack-quantized"
  /// gpt-oss MXFP4: `<name>_blocks` U8 + `<name>_scales` U8.
  case mxfp4GptOss = "mxfp4-gpt-oss"
  /// NVIDIA ModelOpt NVFP4: `weight` U8 + `weight_scale` F8_E4M3 + `weight_scale_2` F32.
  case nvfp4ModelOpt = "nvfp4-modelopt"
  /// compressed-tensors `nvfp4-pack-quantized`: `weight_packed` U8 + `weight_scale` F8_E4M3 + `weight_global_scale`.
  case nvfp4CompressedTensors = "nvfp4-pack-quantized"
}

/// One logical weight and the tensors that store it (a quantized weight's scales, zero points, shape
/// tensors). Shard plans move a group as a unit, so companions never end up on different devices.
public struct WeightGroup: Sendable {
  /// The module path (`model.layers.3.mlp.experts.7.up_proj`), or for gpt-oss the tensor stem.
  public var modulePath: String
  /// The storage layout.
  public var storage: WeightStorage
  /// Role → tensor name, e.g. `"weight"`, `"weight_scale_inv"`, `"qweight"`.
  public var parts: [String: String]

  /// All tensor names of the group, sorted.
  public var tensorNames: [String] { parts.values.sorted() }
}

/// Groups tensor names into logical weights by their companions.
public enum WeightGrouping {
  /// Detects the storage layout of every module in `entries` and returns one group per module that has a
  /// weight-like tensor, plus single-tensor `.plain` groups for everything else (norms, biases, embeddings).
  ///
  /// The grouping is purely by names and dtypes; it does not read tensor data.
  public static func groups(of entries: [TensorEntry]) -> [WeightGroup] {
    var byModule: [String: [String: TensorEntry]] = [:]
    var order: [String] = []
    for entry in entries {
      let (module, leaf) = split(entry.name)
      if byModule[module] == nil { order.append(module) }
      byModule[module, default: [:]][leaf] = entry
    }
    var groups: [WeightGroup] = []
    for module in order {
      let leaves = byModule[module]!
      var claimed = Set<String>()
      func claim(_ storage: WeightStorage, _ roles: [String]) {
        var parts: [String: String] = [:]
        for role in roles where leaves[role] != nil {
          parts[role] = join(module, role)
          claimed.insert(role)
        }
        groups.append(WeightGroup(modulePath: module, storage: storage, parts: parts))
      }
      let weight = leaves["weight"]
      if let weight, weight.dtype == .float8E4M3FN, leaves["weight_scale_inv"] != nil {
        claim(.fp8Block, ["weight", "weight_scale_inv"])
      } else if let weight, weight.dtype == .float8E4M3FN, leaves["weight_scale"] != nil {
        claim(.fp8CompressedTensors, ["weight", "weight_scale", "input_scale"])
      } else if let packed = leaves["weight_packed"], packed.dtype == .int32, leaves["weight_scale"] != nil {
        claim(.int4PackQuantized, ["weight_packed", "weight_scale", "weight_shape", "weight_zero_point", "weight_g_idx"])
      } else if let packed = leaves["weight_packed"], packed.dtype == .uint8, leaves["weight_global_scale"] != nil {
        claim(.nvfp4CompressedTensors, ["weight_packed", "weight_scale", "weight_global_scale", "input_global_scale"])
      } else if let packed = leaves["weight_packed"], packed.dtype == .uint8, leaves["weight_scale"] != nil {
        claim(.mxfp4CompressedTensors, ["weight_packed", "weight_scale"])
      } else if leaves["qweight"] != nil, leaves["scales"] != nil {
        claim(.gptq, ["qweight", "qzeros", "scales", "g_idx"])
      } else if let weight, weight.dtype == .uint32, leaves["scales"] != nil {
        claim(.mlxAffine, ["weight", "scales", "biases"])
      } else if let weight, weight.dtype == .uint8, leaves["weight_scale"] != nil, leaves["weight_scale_2"] != nil {
        claim(.nvfp4ModelOpt, ["weight", "weight_scale", "weight_scale_2", "input_scale"])
      }
      // gpt-oss: `<stem>_blocks` + `<stem>_scales` (e.g. experts.gate_up_proj_blocks).
      for (leaf, _) in leaves.sorted(by: { $0.key < $1.key }) where leaf.hasSuffix("_blocks") && !claimed.contains(leaf) {
        let stem = String(leaf.dropLast("_blocks".count))
        guard leaves[stem + "_scales"] != nil else { continue }
        claimed.insert(leaf)
        claimed.insert(stem + "_scales")
        groups.append(WeightGroup(
          modulePath: join(module, stem), storage: .mxfp4GptOss,
          parts: ["blocks": join(module, leaf), "scales": join(module, stem + "_scales")]))
      }
      for (leaf, _) in leaves.sorted(by: { $0.key < $1.key }) where !claimed.contains(leaf) {
        groups.append(WeightGroup(modulePath: join(module, leaf), storage: .plain, parts: ["weight": join(module, leaf)]))
      }
    }
    return groups
  }

  private static func split(_ name: String) -> (String, String) {
    guard let dot = name.lastIndex(of: ".") else { return ("", name) }
    return (String(name[..<dot]), String(name[name.index(after: dot)...]))
  }

  private static func join(_ module: String, _ leaf: String) -> String { module.isEmpty ? leaf : module + "." + leaf }
}
