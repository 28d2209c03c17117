/// Everything that can go wrong while reading a checkpoint's weights (for the forward pass or a comparison).
public enum WeightSourceError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The checkpoint has no logical weight of this name (neither a plain tensor nor a quantized group).
  case missingWeight(name: String, checkpoint: String)
  /// A quantized weight lacks a companion tensor it needs (a scale, a zero point).
  case missingCompanion(weight: String, role: String, checkpoint: String)
  /// A tensor has a dtype the reader cannot use for this role.
  case unsupportedDType(tensor: String, dtype: String, expected: String)
  /// A tensor's shape does not fit its role (a scale grid that does not cover the weight, a 1-D linear).
  case badShape(tensor: String, shape: [Int], expected: String)
  /// A storage layout Smelt recognises but cannot dequantize yet.
  case unsupportedStorage(weight: String, storage: String)
  /// The weight's tensors do not form its format's layout (a scale grid that does not tile the weight, a
  /// companion of the wrong dtype), or its dequantizer refused them.
  case undecodable(weight: String, reason: String)
  /// The scale of a quantized weight is NaN or infinite (a corrupt checkpoint).
  case nonFiniteScale(tensor: String, index: Int)
  /// A requested row range lies outside the tensor.
  case rowsOutOfRange(tensor: String, rows: Range<Int>, rowCount: Int)
  /// The checkpoint has no `config.json`, which the forward pass (model- and layer-level validation) needs.
  case missingConfig(checkpoint: String)

  public var description: String {
    switch self {
    case .missingWeight(let name, let checkpoint):
      "checkpoint '\(checkpoint)' has no weight '\(name)'"
    case .missingCompanion(let weight, let role, let checkpoint):
      "weight '\(weight)' in '\(checkpoint)' has no '\(role)' tensor; the checkpoint is incomplete"
    case .unsupportedDType(let tensor, let dtype, let expected):
      "tensor '\(tensor)' is \(dtype), expected \(expected)"
    case .badShape(let tensor, let shape, let expected):
      "tensor '\(tensor)' has shape \(shape), expected \(expected)"
    case .unsupportedStorage(let weight, let storage):
      "weight '\(weight)' is stored as \(storage), which validation cannot dequantize yet"
    case .undecodable(_, let reason):
      "cannot decode: \(reason)"
    case .nonFiniteScale(let tensor, let index):
      "scale tensor '\(tensor)' holds a NaN or infinite value at element \(index); the checkpoint is corrupt"
    case .rowsOutOfRange(let tensor, let rows, let rowCount):
      "rows \(rows.lowerBound)..<\(rows.upperBound) of '\(tensor)' are outside its \(rowCount) rows"
    case .missingConfig(let checkpoint):
      "checkpoint '\(checkpoint)' has no config.json; layer and model validation need it (use --level tensor)"
    }
  }
}
