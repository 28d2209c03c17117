import ReferenceModel

/// A weight provider that serves some weights from memory and every other one from a base provider: how
/// `validate --sensitivity` runs the forward pass with one tensor group converted and the rest of the model
/// at the original's precision, without writing a checkpoint.
public struct OverlayWeightProvider: WeightProvider {
  /// Where weights not in `replaced` come from.
  public let base: any WeightProvider
  /// The weights served instead of the base's, by logical name (each in the base's logical shape).
  public let replaced: [String: FloatTensor]

  public init(base: any WeightProvider, replaced: [String: FloatTensor]) {
    self.base = base
    self.replaced = replaced
  }

  public func weight(_ name: String) throws -> FloatTensor { try replaced[name] ?? base.weight(name) }

  public func contains(_ name: String) -> Bool { replaced[name] != nil || base.contains(name) }

  public func shape(of name: String) throws -> [Int] { try replaced[name]?.shape ?? base.shape(of: name) }

  public func linearWeight(_ name: String) throws -> LinearWeight {
    if let tensor = replaced[name] { return try LinearWeight(tensor) }
    return try base.linearWeight(name)
  }

  public func weightRows(_ name: String, rows: Range<Int>) throws -> FloatTensor {
    guard let tensor = replaced[name] else { return try base.weightRows(name, rows: rows) }
    let width = tensor.shape.dropFirst().reduce(1, *)
    guard rows.lowerBound >= 0, rows.upperBound <= (tensor.shape.first ?? 0) else {
      throw ReferenceModelError.weightShapeMismatch(name: name, expected: [rows.upperBound, width], actual: tensor.shape)
    }
    return try FloatTensor(
      shape: [rows.count, width], values: Array(tensor.values[(rows.lowerBound * width)..<(rows.upperBound * width)]))
  }

  /// The base's storage: a family's fused expert tensors keep the dim order of the checkpoint they come from.
  public func isQuantized(_ name: String) -> Bool { base.isQuantized(name) }
}
