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
    // Modules in first-appearance order, each with its few leaves. Checkpoints list a module's tensors
    // next to each other, so the previous module is checked before hashing.
    var moduleIndex: [String: Int] = [:]
    var modules: [(name: String, leaves: [(leaf: String, entry: TensorEntry)])] = []
    var previousModule: String?
    var previousIndex = 0
    for entry in entries {
      let (module, leaf) = split(entry.name)
      let index: Int
      if module == previousModule {
        index = previousIndex
      } else if let known = moduleIndex[module] {
        index = known
      } else {
        index = modules.count
        moduleIndex[module] = index
        modules.append((module, []))
      }
      previousModule = module
      previousIndex = index
      if let existing = modules[index].leaves.firstIndex(where: { $0.leaf == leaf }) {
        modules[index].leaves[existing].entry = entry
      } else {
        modules[index].leaves.append((leaf, entry))
      }
    }
    var groups: [WeightGroup] = []
    groups.reserveCapacity(modules.count)
    for (module, unsortedLeaves) in modules {
      let leaves = unsortedLeaves.count > 1 ? unsortedLeaves.sorted { $0.leaf < $1.leaf } : unsortedLeaves
      func entry(_ leaf: String) -> TensorEntry? { leaves.first { $0.leaf == leaf }?.entry }
      func has(_ leaf: String) -> Bool { leaves.contains { $0.leaf == leaf } }
      var claimed: [String] = []
      func claim(_ storage: WeightStorage, _ roles: [String]) {
        var parts: [String: String] = [:]
        for role in roles where has(role) {
          parts[role] = join(module, role)
          claimed.append(role)
        }
        groups.append(WeightGroup(modulePath: module, storage: storage, parts: parts))
      }
      let weight = entry("weight")
      if let weight, weight.dtype == .float8E4M3FN, has("weight_scale_inv") {
        claim(.fp8Block, ["weight", "weight_scale_inv"])
      } else if let weight, weight.dtype == .float8E4M3FN, has("weight_scale") {
        claim(.fp8CompressedTensors, ["weight", "weight_scale", "input_scale"])
      } else if let packed = entry("weight_packed"), packed.dtype == .int32, has("weight_scale") {
        claim(.int4PackQuantized, ["weight_packed", "weight_scale", "weight_shape", "weight_zero_point", "weight_g_idx"])
      } else if let packed = entry("weight_packed"), packed.dtype == .uint8, has("weight_global_scale") {
        claim(.nvfp4CompressedTensors, ["weight_packed", "weight_scale", "weight_global_scale", "input_global_scale"])
      } else if let packed = entry("weight_packed"), packed.dtype == .uint8, has("weight_scale") {
        claim(.mxfp4CompressedTensors, ["weight_packed", "weight_scale"])
      } else if has("qweight"), has("scales") {
        claim(.gptq, ["qweight", "qzeros", "scales", "g_idx"])
      } else if let weight, weight.dtype == .uint32, has("scales") {
        claim(.mlxAffine, ["weight", "scales", "biases"])
      } else if let weight, weight.dtype == .uint8, has("weight_scale"), has("weight_scale_2") {
        claim(.nvfp4ModelOpt, ["weight", "weight_scale", "weight_scale_2", "input_scale"])
      }
      // gpt-oss: `<stem>_blocks` + `<stem>_scales` (e.g. experts.gate_up_proj_blocks).
      for (leaf, _) in leaves where leaf.hasSuffix("_blocks") && !claimed.contains(leaf) {
        let stem = String(leaf.dropLast("_blocks".count))
        guard has(stem + "_scales") else { continue }
        claimed.append(leaf)
        claimed.append(stem + "_scales")
        groups.append(WeightGroup(
          modulePath: join(module, stem), storage: .mxfp4GptOss,
          parts: ["blocks": join(module, leaf), "scales": join(module, stem + "_scales")]))
      }
      for (leaf, _) in leaves where !claimed.contains(leaf) {
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
