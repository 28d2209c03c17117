/// Everything that can go wrong while comparing two checkpoints, beyond reading their weights
/// (`WeightSourceError`) and running the forward pass (`ReferenceModelError`).
public enum ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The two checkpoints disagree on a weight's shape.
  case shapeMismatch(name: String, reference: [Int], candidate: [Int])
  /// The two checkpoints' configurations differ in a field that changes the architecture.
  case configMismatch(field: String, reference: String, candidate: String)
  /// A layer or expert selection (`0,3,60`, `0-7`) could not be parsed or is out of range.
  case invalidSelection(option: String, text: String, reason: String)

  public var description: String {
    switch self {
    case .shapeMismatch(let name, let reference, let candidate):
      "weight '\(name)' has shape \(reference) in the reference but \(candidate) in the candidate"
    case .configMismatch(let field, let reference, let candidate):
      "config field '\(field)' is \(reference) in the reference but \(candidate) in the candidate"
    case .invalidSelection(let option, let text, let reason):
      "invalid \(option) '\(text)': \(reason)"
    }
  }
}
