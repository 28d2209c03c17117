/// What a tensor name says about its place in a transformer: layer, routed expert, role.
///
/// Understands the Hugging Face names of DeepSeek-V2/V3 (`model.layers.L.mlp.experts.E.gate_proj.weight`,
/// `mlp.shared_experts`, router `mlp.gate`), Qwen2/Qwen3-MoE (`mlp.experts.E`, `mlp.shared_expert`) and
/// Mixtral (`block_sparse_moe.experts.E.w1`).
public struct TensorName: Sendable, Hashable {
  /// The full tensor name.
  public let name: String
  /// The decoder layer index, for names under `model.layers.L.` (or `layers.L.`).
  public let layer: Int?
  /// The routed expert index, for names under `...experts.E.`.
  public let expert: Int?
  /// The name with the expert index replaced by `*` (groups the same projection across experts).
  public let expertPattern: String?
  /// True for shared-expert tensors (`shared_experts` / `shared_expert`).
  public let isSharedExpert: Bool
  /// True for the router (`mlp.gate.*`, `block_sparse_moe.gate.*`, `mlp.router.*`), incl. the correction bias.
  public let isRouter: Bool

  public init(_ name: String) {
    self.name = name
    var layer: Int?
    var expert: Int?
    var expertPattern: String?
    let parts = name.split(separator: ".", omittingEmptySubsequences: false)
    for (i, part) in parts.enumerated() {
      if part == "layers", i + 1 < parts.count, layer == nil, let value = Int(parts[i + 1]) { layer = value }
      if part == "experts", i + 1 < parts.count, let value = Int(parts[i + 1]) {
        expert = value
        var pattern = parts.map(String.init)
        pattern[i + 1] = "*"
        expertPattern = pattern.joined(separator: ".")
      }
    }
    self.layer = layer
    self.expert = expert
    self.expertPattern = expertPattern
    isSharedExpert = parts.contains("shared_experts") || parts.contains("shared_expert")
    let routerModules: Set<Substring> = ["gate", "router"]
    isRouter = zip(parts, parts.dropFirst()).contains { parent, child in
      (parent == "mlp" || parent == "block_sparse_moe") && routerModules.contains(child)
    } && expert == nil && !isSharedExpert
  }

  /// True for routed-expert tensors.
  public var isRoutedExpert: Bool { expert != nil }

  /// The module path: the name without its last component (`...q_a_proj` for `...q_a_proj.weight`).
  public var modulePath: String {
    guard let dot = name.lastIndex(of: ".") else { return name }
    return String(name[..<dot])
  }

  /// The last component (`weight`, `weight_scale_inv`, `qweight`, ...).
  public var leaf: String {
    guard let dot = name.lastIndex(of: ".") else { return name }
    return String(name[name.index(after: dot)...])
  }
}
