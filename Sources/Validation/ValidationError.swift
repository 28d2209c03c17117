/// Everything that can go wrong while reading weights for validation or comparing two checkpoints.
public enum ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
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
  /// The two checkpoints disagree on a weight's shape.
  case shapeMismatch(name: String, reference: [Int], candidate: [Int])
  /// The checkpoint has no `config.json`, which model- and layer-level validation need.
  case missingConfig(checkpoint: String)
  /// The two checkpoints' configurations differ in a field that changes the architecture.
  case configMismatch(field: String, reference: String, candidate: String)
  /// A token list could not be parsed.
  case invalidTokens(String)
  /// A layer or expert selection (`0,3,60`, `0-7`) could not be parsed or is out of range.
  case invalidSelection(option: String, text: String, reason: String)

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
    case .shapeMismatch(let name, let reference, let candidate):
      "weight '\(name)' has shape \(reference) in the reference but \(candidate) in the candidate"
    case .missingConfig(let checkpoint):
      "checkpoint '\(checkpoint)' has no config.json; layer and model validation need it (use --level tensor)"
    case .configMismatch(let field, let reference, let candidate):
      "config field '\(field)' is \(reference) in the reference but \(candidate) in the candidate"
    case .invalidTokens(let reason):
      "invalid token list: \(reason)"
    case .invalidSelection(let option, let text, let reason):
      "invalid \(option) '\(text)': \(reason)"
    }
  }
}
