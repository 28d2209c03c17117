/// Linear layers that engines load as one fused layer (vLLM's `gate_up_proj`, `fused_qkv_a_proj`, `qkv_proj`):
/// the one place that knows them by name (with `TensorSelection`, the place a model-family description
/// replaces).
///
/// Consumers care in two ways: a GPTQ `dynamic` rule must also match the fused layer's name, and an NVFP4
/// fused layer has one per-tensor scale, so llm-compressor (`update_fused_layer_weight_global_scales`) gives
/// the siblings one shared global scale — Smelt derives it from the siblings' largest |x| (formats/nvfp4.md).
public enum FusedLinears {
  /// Sibling leaf → the fused layer's leaf name.
  public static let fusedName: [String: String] = [
    "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj", "q_a_proj": "fused_qkv_a_proj",
    "kv_a_proj_with_mqa": "fused_qkv_a_proj", "q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj",
  ]

  /// The complete sibling sets, by fused name (a set is fused only when all of its members are present).
  public static let siblings: [String: Set<String>] = Dictionary(grouping: fusedName.keys, by: { fusedName[$0] ?? "" })
    .mapValues(Set.init)

  /// The fused layer `module` belongs to (`model.layers.3.mlp.experts.7.gate_up_proj` for
  /// `...experts.7.gate_proj`), or `nil`.
  public static func fusedModule(of module: String) -> String? { fusedLayer(of: module)?.module }

  /// The fused layer `module` belongs to and `module`'s leaf (`gate_proj`), or `nil`: one scan for the last `.`,
  /// for plan loops over every module of a 671B release.
  static func fusedLayer(of module: String) -> (module: String, leaf: String)? {
    let (parent, leaf) = splitLeaf(module)
    guard let fused = fusedName[leaf] else { return nil }
    return (parent.map { $0 + "." + fused } ?? fused, leaf)
  }

  /// The modules fused with `module` (itself included) that must all be present for the fusion to hold.
  public static func siblingModules(of module: String) -> [String] {
    let (parent, leaf) = splitLeaf(module)
    guard let fused = fusedName[leaf], let set = siblings[fused] else { return [] }
    return set.sorted().map { sibling in parent.map { $0 + "." + sibling } ?? sibling }
  }

  /// `module` split at its last `.`: the parent (`nil` without a `.`) and the leaf.
  private static func splitLeaf(_ module: String) -> (parent: String?, leaf: String) {
    guard let dot = module.utf8.lastIndex(of: UInt8(ascii: ".")) else { return (nil, module) }
    return (String(Substring(module.utf8[..<dot])), String(Substring(module.utf8[module.utf8.index(after: dot)...])))
  }
}
