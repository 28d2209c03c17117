import TensorCore

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
  public var expertPattern: String? {
    guard let range = expertComponent else { return nil }
    let bytes = Array(name.utf8)
    return String(decoding: bytes[..<range.lowerBound], as: UTF8.self) + "*"
      + String(decoding: bytes[range.upperBound...], as: UTF8.self)
  }
  /// The byte range of the expert index in `name`.
  private let expertComponent: Range<Int>?
  /// True for shared-expert tensors (`shared_experts` / `shared_expert`).
  public let isSharedExpert: Bool
  /// True for the router (`mlp.gate.*`, `block_sparse_moe.gate.*`, `mlp.router.*`), incl. the correction bias.
  public let isRouter: Bool

  public init(_ name: String) {
    self.name = name
    // One pass over the UTF-8 bytes, component by component (inspect parses ~100k names).
    var layer: Int?
    var expert: Int?
    var expertComponent: Range<Int>?
    var shared = false
    var routerPair = false
    var previous = ComponentKind.other
    var utf8 = name
    utf8.withUTF8 { bytes in  // a copy of a native string: no allocation
      var start = 0
      while start <= bytes.count {
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: ".") { end += 1 }
        let component = UnsafeBufferPointer(rebasing: bytes[start..<end])
        if previous == .layers, layer == nil, let value = TensorName.integer(component) { layer = value }
        if previous == .experts, let value = TensorName.integer(component) {
          expert = value
          expertComponent = start..<end
        }
        let kind = ComponentKind(component)
        if kind == .sharedExpert { shared = true }
        if previous == .moeParent, kind == .router { routerPair = true }
        previous = kind
        start = end + 1
      }
    }
    self.layer = layer
    self.expert = expert
    self.expertComponent = expertComponent
    isSharedExpert = shared
    isRouter = routerPair && expert == nil && !shared
  }

  /// The components `init` looks for.
  private enum ComponentKind {
    case layers, experts, sharedExpert, moeParent, router, other

    init(_ component: UnsafeBufferPointer<UInt8>) {
      func equals(_ literal: StaticString) -> Bool {
        literal.utf8CodeUnitCount == component.count
          && literal.withUTF8Buffer { NameIndex.bytesEqual(UnsafeRawBufferPointer($0), UnsafeRawBufferPointer(component)) }
      }
      switch component.count {
      case 6 where equals("layers"): self = .layers
      case 7 where equals("experts"): self = .experts
      case 14 where equals("shared_experts"), 13 where equals("shared_expert"): self = .sharedExpert
      case 3 where equals("mlp"), 16 where equals("block_sparse_moe"): self = .moeParent
      case 4 where equals("gate"), 6 where equals("router"): self = .router
      default: self = .other
      }
    }
  }

  /// `Int(component)`, with a fast path for plain decimal digits.
  private static func integer(_ component: UnsafeBufferPointer<UInt8>) -> Int? {
    guard !component.isEmpty else { return nil }
    if component.count <= 18, component.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
      return component.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }
    return Int(String(decoding: component, as: UTF8.self))
  }

  /// True for routed-expert tensors.
  public var isRoutedExpert: Bool { expert != nil }

  /// The module path: the name without its last component (`...q_a_proj` for `...q_a_proj.weight`).
  public var modulePath: String { Self.modulePath(of: name) }

  /// The module path of the tensor `name` (everything before its last `.`), without parsing the rest: what plan
  /// loops over ~100k tensors call instead of building a `TensorName`.
  public static func modulePath(of name: String) -> String {
    guard let dot = name.utf8.lastIndex(of: UInt8(ascii: ".")) else { return name }
    return String(Substring(name.utf8[..<dot]))
  }

  /// The last component (`weight`, `weight_scale_inv`, `qweight`, ...).
  public var leaf: String {
    guard let dot = name.utf8.lastIndex(of: UInt8(ascii: ".")) else { return name }
    return String(Substring(name.utf8[name.utf8.index(after: dot)...]))
  }
}
