
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
///
/// The family's names are compiled to byte strings once; `classify` then makes one pass over a name's UTF-8
/// bytes without allocating (`inspect` and `shard` classify every tensor of 100k-tensor checkpoints).
public struct TensorClassifier: Sendable {
  public let family: ModelFamily
  /// `num_hidden_layers`, when the config gives it.
  public let trunkLayerCount: Int?
  private let names: CompiledNames

  public init(family: ModelFamily, trunkLayerCount: Int?) {
    self.family = family
    self.trunkLayerCount = trunkLayerCount
    names = CompiledNames(family.naming)
  }

  /// `FamilyNaming` as byte strings.
  private struct CompiledNames: Sendable {
    let layerPrefixes, mtpPrefixes, mtpRoots: [[UInt8]]
    let feedForward, attention, indexer, router, routerBias, sharedExperts, mtpModules: [[UInt8]]
    let experts: [UInt8]
    let embeddings, outputHeads: Set<String>

    init(_ naming: FamilyNaming) {
      func bytes(_ texts: some Sequence<String>) -> [[UInt8]] { texts.map { Array($0.utf8) } }
      layerPrefixes = bytes(naming.layerPrefixes)
      mtpPrefixes = bytes(naming.mtpPrefixes)
      mtpRoots = bytes(naming.mtpRoots)
      feedForward = bytes(naming.feedForward)
      attention = bytes(naming.attention)
      indexer = bytes(naming.indexer)
      router = bytes(naming.router)
      routerBias = bytes(naming.routerBias)
      sharedExperts = bytes(naming.sharedExperts)
      mtpModules = bytes(naming.mtpModules)
      experts = Array(naming.experts.utf8)
      embeddings = naming.embeddings
      outputHeads = naming.outputHeads
    }
  }

  /// Whether `name` (of logical `shape`) is a 3-D fused expert tensor of a family whose plain checkpoints hold
  /// fused experts input-major (gpt-oss's BF16 `gate_up_proj [E, H, 2I]`). Packed layouts of it decode
  /// `[E, out, in]`; its plain form decodes `[E, in, out]`.
  public func holdsInputMajorExperts(_ name: String, shape: [Int]) -> Bool {
    shape.count == 3 && family.naming.fusedExperts?.orientation == .inputMajor && classify(name).isFusedExperts
  }

  /// The class of `name`.
  public func classify(_ name: String) -> TensorClass {
    var copy = name
    return copy.withUTF8 { bytes in
      withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: 24) { buffer in
        classify(name, bytes, components: buffer)
      }
    }
  }

  private func classify(
    _ name: String, _ bytes: UnsafeBufferPointer<UInt8>, components: UnsafeMutableBufferPointer<Range<Int>>
  ) -> TensorClass {
    /// Whether `word` is at byte offset `start` of the name.
    func matches(_ word: [UInt8], at start: Int) -> Bool {
      guard start + word.count <= bytes.count else { return false }
      for i in word.indices where word[i] != bytes[start + i] { return false }
      return true
    }
    func startsWith(_ prefix: [UInt8]) -> Bool { matches(prefix, at: 0) }
    // Components after `start`, as byte ranges (at most `components.count`; a longer name is "other").
    func split(from start: Int) -> Int? {
      var count = 0
      var begin = start
      for i in start...bytes.count where i == bytes.count || bytes[i] == UInt8(ascii: ".") {
        guard count < components.count else { return nil }
        components[count] = begin..<i
        count += 1
        begin = i + 1
      }
      return count
    }
    func text(_ range: Range<Int>) -> Substring {
      let utf8 = name.utf8
      return Substring(utf8[utf8.index(utf8.startIndex, offsetBy: range.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: range.upperBound)])
    }
    func equals(_ range: Range<Int>, _ word: [UInt8]) -> Bool {
      range.count == word.count && matches(word, at: range.lowerBound)
    }
    func isAny(_ range: Range<Int>, _ words: [[UInt8]]) -> Bool { words.contains { equals(range, $0) } }
    func integer(_ range: Range<Int>) -> Int? {
      guard !range.isEmpty, range.count <= 18 else { return nil }
      var value = 0
      for i in range {
        guard bytes[i] >= 48, bytes[i] <= 57 else { return nil }
        value = value * 10 + Int(bytes[i] - 48)
      }
      return value
    }
    func isNorm(_ range: Range<Int>) -> Bool {
      range.count >= 4 && bytes[range.upperBound - 4] == UInt8(ascii: "n") && bytes[range.upperBound - 3] == UInt8(ascii: "o")
        && bytes[range.upperBound - 2] == UInt8(ascii: "r") && bytes[range.upperBound - 1] == UInt8(ascii: "m")
    }

    // The layer: a layer prefix, or an MTP prefix (numbered after the trunk), followed by an index.
    var layer: Int?
    var isMTP = false
    var count = 0
    func findLayer(_ prefixes: [[UInt8]], mtp: Bool) {
      for prefix in prefixes where startsWith(prefix) {
        guard let found = split(from: prefix.count), found >= 1, let index = integer(components[0]) else { continue }
        layer = mtp ? (trunkLayerCount ?? 0) + index : index
        isMTP = mtp || (trunkLayerCount.map { index >= $0 } ?? false)
        count = found
        return
      }
    }
    findLayer(names.layerPrefixes, mtp: false)
    if layer == nil { findLayer(names.mtpPrefixes, mtp: true) }
    guard let layer else {
      guard let found = split(from: 0), found > 0 else { return TensorClass(role: .other) }
      let module = text(components[max(0, found - 2)])
      if names.embeddings.contains(name) { return TensorClass(role: .embedding, module: module) }
      if names.outputHeads.contains(name) { return TensorClass(role: .outputHead, module: module) }
      let mtp = names.mtpRoots.contains(where: startsWith)
      let norm = (0..<found).contains { isNorm(components[$0]) }
      return TensorClass(role: norm ? .norm : (mtp ? .mtpProjection : .other), isMTP: mtp, module: module)
    }
    // components[0] is the index; the block and what sits in it follow.
    let rest = 1..<count
    let module = rest.count >= 2 ? text(components[count - 2]) : (rest.isEmpty ? "" : text(components[1]))
    func result(_ role: TensorRole, expert: Int? = nil, fused: Bool = false, module override: Substring? = nil) -> TensorClass {
      TensorClass(role: role, layer: layer, isMTP: isMTP, expert: expert, isFusedExperts: fused, module: override ?? module)
    }
    guard !rest.isEmpty else { return result(.other) }
    let block = components[1]
    if rest.count >= 2, isAny(block, names.feedForward) {
      let child = components[2]
      if equals(child, names.experts), rest.count >= 3 {
        if let expert = integer(components[3]) { return result(.routedExpert, expert: expert) }
        // Fused: `experts.gate_up_proj`, `experts.gate_up_proj_blocks`, `experts.down_proj_bias`, ...
        return result(.routedExpert, fused: true, module: Self.fusedStem(text(components[3])))
      }
      if isAny(child, names.sharedExperts) { return result(.sharedExpert) }
      if isAny(child, names.router) {
        if rest.count >= 3, isAny(components[count - 1], names.routerBias) { return result(.routerBias) }
        return result(.router)
      }
      if isAny(child, names.routerBias) { return result(.routerBias) }
      if equals(child, Self.sharedExpertGate) { return result(.router) }
      if (2..<count).contains(where: { isNorm(components[$0]) }) { return result(.norm) }
      return result(.denseFeedForward)
    }
    if rest.contains(where: { isNorm(components[$0]) }) { return result(.norm) }
    if isAny(block, names.attention) {
      if rest.count >= 2, isAny(components[2], names.indexer) { return result(.indexer) }
      return result(.attention)
    }
    if isMTP, isAny(block, names.mtpModules) { return result(.mtpProjection) }
    return result(.other)
  }

  private static let sharedExpertGate = Array("shared_expert_gate".utf8)

  /// True for the 2-D weights of linear layers (the tensors quantizers touch), by leaf name and rank.
  public static func isLinearWeight(_ name: String, shape: [Int]) -> Bool {
    guard shape.count == 2, let dot = name.lastIndex(of: ".") else { return false }
    let leaf = name[name.index(after: dot)...]
    return leaf == "weight" || leaf == "weight_packed" || leaf == "qweight"
  }

  /// `gate_up_proj_blocks` → `gate_up_proj` (gpt-oss's packed leaves); other names unchanged.
  static func fusedStem(_ leaf: Substring) -> Substring {
    for suffix in ["_blocks", "_scales", "_bias", "_scale_inv", "_scale"] where leaf.hasSuffix(suffix) {
      return leaf.dropLast(suffix.count)
    }
    return leaf
  }
}
