/// What a tensor is in its model.
public enum TensorRole: String, Sendable, CaseIterable {
  /// Token embeddings.
  case embedding
  /// The output head (`lm_head`).
  case outputHead
  /// A normalization weight or bias (final norm, layer norms, QK-norms, the indexer's LayerNorm).
  case norm
  /// Attention projections, their biases and attention sinks.
  case attention
  /// The lightning indexer of DeepSeek-V3.2 / V4 sparse attention.
  case indexer
  /// The MoE router's weight (and other router state such as DeepSeek-V4's hash table).
  case router
  /// The router's selection bias (`e_score_correction_bias`, gpt-oss `router.bias`).
  case routerBias
  /// A routed expert's weights (one expert, or all of a layer's experts in a fused tensor).
  case routedExpert
  /// A shared expert's weights.
  case sharedExpert
  /// The feed-forward block of a dense layer.
  case denseFeedForward
  /// What an MTP layer adds around its decoder block (`eh_proj`, its embedding and head).
  case mtpProjection
  /// Anything else (hyper-connection mixers, linear-attention state, ...).
  case other
}

/// The place of one tensor in its model, from its name.
public struct TensorClass: Sendable, Equatable {
  public var role: TensorRole
  /// The decoder layer index; MTP modules continue the trunk's numbering.
  public var layer: Int?
  /// True inside an MTP layer (index ≥ `num_hidden_layers`, or under an MTP prefix).
  public var isMTP: Bool
  /// The routed expert's index, for per-expert tensors.
  public var expert: Int?
  /// True for a routed-expert tensor whose first dim is the expert index.
  public var isFusedExperts: Bool
  /// The module name the tensor belongs to (second-to-last component: `q_proj`, `gate_up_proj`, `w1`, ...);
  /// for gpt-oss fused leaves the stem (`gate_up_proj` for `gate_up_proj_blocks`).
  public var module: Substring

  public init(
    role: TensorRole, layer: Int? = nil, isMTP: Bool = false, expert: Int? = nil, isFusedExperts: Bool = false,
    module: Substring = ""
  ) {
    self.role = role
    self.layer = layer
    self.isMTP = isMTP
    self.expert = expert
    self.isFusedExperts = isFusedExperts
    self.module = module
  }

  /// True for routed-expert tensors, per expert or fused.
  public var isRoutedExpert: Bool { role == .routedExpert }
}

/// Classifies tensor names for one family and config (the trunk's layer count decides what is MTP).
public struct TensorClassifier: Sendable {
  public let family: ModelFamily
  /// `num_hidden_layers`, when the config gives it.
  public let trunkLayerCount: Int?

  public init(family: ModelFamily, trunkLayerCount: Int?) {
    self.family = family
    self.trunkLayerCount = trunkLayerCount
  }

  /// The class of `name`.
  public func classify(_ name: String) -> TensorClass {
    let naming = family.naming
    if naming.embeddings.contains(name) { return TensorClass(role: .embedding, module: moduleName(name)) }
    if naming.outputHeads.contains(name) { return TensorClass(role: .outputHead, module: moduleName(name)) }
    var layer: Int?
    var isMTP = false
    var rest: [Substring] = []
    for prefix in naming.layerPrefixes where name.hasPrefix(prefix) {
      if let (index, tail) = Self.indexed(name.dropFirst(prefix.count)) {
        layer = index
        rest = tail
        isMTP = trunkLayerCount.map { index >= $0 } ?? false
        break
      }
    }
    if layer == nil {
      for prefix in naming.mtpPrefixes where name.hasPrefix(prefix) {
        if let (index, tail) = Self.indexed(name.dropFirst(prefix.count)) {
          layer = (trunkLayerCount ?? 0) + index
          rest = tail
          isMTP = true
          break
        }
      }
    }
    guard let layer else {
      let components = name.split(separator: ".", omittingEmptySubsequences: false)
      let module = components.count >= 2 ? components[components.count - 2] : components[0]
      let mtp = naming.mtpRoots.contains { name.hasPrefix($0) }
      let role: TensorRole = components.contains(where: Self.isNorm) ? .norm : (mtp ? .mtpProjection : .other)
      return TensorClass(role: role, isMTP: mtp, module: module)
    }
    let module = rest.count >= 2 ? rest[rest.count - 2] : (rest.first ?? "")
    func result(_ role: TensorRole, expert: Int? = nil, fused: Bool = false, module override: Substring? = nil) -> TensorClass {
      TensorClass(role: role, layer: layer, isMTP: isMTP, expert: expert, isFusedExperts: fused, module: override ?? module)
    }
    guard let block = rest.first else { return result(.other) }
    if naming.feedForward.contains(String(block)), rest.count >= 2 {
      let child = String(rest[1])
      if child == naming.experts, rest.count >= 3 {
        if let expert = Self.integer(rest[2]) { return result(.routedExpert, expert: expert) }
        // Fused: `experts.gate_up_proj`, `experts.gate_up_proj_blocks`, `experts.down_proj_bias`, ...
        return result(.routedExpert, fused: true, module: Self.fusedStem(rest[2]))
      }
      if naming.sharedExperts.contains(child) { return result(.sharedExpert) }
      if naming.router.contains(child) {
        if let leaf = rest.last, rest.count >= 3, naming.routerBias.contains(String(leaf)) { return result(.routerBias) }
        return result(.router)
      }
      if naming.routerBias.contains(child) { return result(.routerBias) }
      if child == "shared_expert_gate" { return result(.router) }
      if rest.dropFirst().contains(where: Self.isNorm) { return result(.norm) }
      return result(.denseFeedForward)
    }
    if rest.contains(where: Self.isNorm) { return result(.norm) }
    if naming.attention.contains(String(block)) {
      if rest.count >= 2, naming.indexer.contains(String(rest[1])) { return result(.indexer) }
      return result(.attention)
    }
    if isMTP, naming.mtpModules.contains(String(block)) { return result(.mtpProjection) }
    return result(.other)
  }

  /// True for the 2-D weights of linear layers (the tensors quantizers touch), by leaf name and rank.
  public static func isLinearWeight(_ name: String, shape: [Int]) -> Bool {
    guard shape.count == 2, let dot = name.lastIndex(of: ".") else { return false }
    let leaf = name[name.index(after: dot)...]
    return leaf == "weight" || leaf == "weight_packed" || leaf == "qweight"
  }

  // MARK: parsing helpers

  /// `"7.mlp.gate.weight"` → (7, ["mlp", "gate", "weight"]).
  private static func indexed(_ text: Substring) -> (Int, [Substring])? {
    let components = text.split(separator: ".", omittingEmptySubsequences: false)
    guard let first = components.first, let index = integer(first) else { return nil }
    return (index, Array(components.dropFirst()))
  }

  static func integer(_ text: Substring) -> Int? {
    guard !text.isEmpty, text.count <= 18, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
    return Int(text)
  }

  static func isNorm(_ component: Substring) -> Bool { component.hasSuffix("norm") }

  /// `gate_up_proj_blocks` → `gate_up_proj` (gpt-oss's packed leaves); other names unchanged.
  static func fusedStem(_ leaf: Substring) -> Substring {
    for suffix in ["_blocks", "_scales", "_bias", "_scale_inv", "_scale"] where leaf.hasSuffix(suffix) {
      return leaf.dropLast(suffix.count)
    }
    return leaf
  }

  private func moduleName(_ name: String) -> Substring {
    let components = name.split(separator: ".", omittingEmptySubsequences: false)
    return components.count >= 2 ? components[components.count - 2] : components[0]
  }
}
