/// A value's whole structure as text, read through `Mirror`: every stored property and associated value,
/// labelled, nested, whatever the types' own `description`s say (those may leave details out). Stable for
/// one build of Smelt: fingerprints (what a resumed run may reuse) and field-by-field differences
/// (`first(_:_:)`) are made from it.
public enum StructuralDescription {
  /// `value` as `label(child, ...)` text down to leaves; a leaf (no children) is its plain description.
  public static func text(of value: Any) -> String {
    let mirror = Mirror(reflecting: value)
    if mirror.displayStyle == .optional {
      guard let wrapped = mirror.children.first?.value else { return "nil" }
      return text(of: wrapped)
    }
    guard !mirror.children.isEmpty else { return "\(value)" }
    let children = mirror.children.map { child in (child.label.map { $0 + ": " } ?? "") + text(of: child.value) }
    let head = mirror.displayStyle == .enum ? "" : "\(mirror.subjectType)"
    return head + "(" + children.joined(separator: ", ") + ")"
  }

  /// The first leaf at which `a` and `b` differ: its dotted path of property names and the two values as
  /// text (`("rope.theta", "10000.0", "20000.0")`), or `nil` when their structures are equal.
  public static func firstDifference(_ a: Any, _ b: Any, path: String = "") -> (path: String, a: String, b: String)? {
    let left = Mirror(reflecting: a)
    let right = Mirror(reflecting: b)
    let isLeaf = left.children.isEmpty || right.children.isEmpty || left.displayStyle == .enum
      || left.displayStyle == .optional || left.children.count != right.children.count
    if isLeaf {
      let (x, y) = (leafText(a), leafText(b))
      return x == y ? nil : (path, x, y)
    }
    for (l, r) in zip(left.children, right.children) {
      let label = l.label ?? "?"
      if let found = firstDifference(l.value, r.value, path: path.isEmpty ? label : path + "." + label) { return found }
    }
    return nil
  }

  /// A leaf for messages: optionals unwrapped (`absent` for nil), enum cases with their payloads.
  private static func leafText(_ value: Any) -> String {
    let mirror = Mirror(reflecting: value)
    if mirror.displayStyle == .optional {
      guard let wrapped = mirror.children.first?.value else { return "absent" }
      return leafText(wrapped)
    }
    return mirror.displayStyle == .enum || mirror.children.isEmpty ? "\(value)" : text(of: value)
  }
}
