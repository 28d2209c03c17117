/// Everything that can go wrong in the reference forward pass.
public enum ReferenceModelError: Error, Sendable, Equatable, CustomStringConvertible {
  /// A tensor's shape does not have as many elements as values were given.
  case elementCountMismatch(shape: [Int], valueCount: Int)
  /// The weight provider has no tensor of this name.
  case missingWeight(name: String)
  /// A weight has a shape other than the configuration implies.
  case weightShapeMismatch(name: String, expected: [Int], actual: [Int])
  /// A configuration field has a value the forward pass cannot use.
  case invalidConfiguration(field: String, value: String, reason: String)
  /// A token id is outside `0..<vocabularySize`.
  case tokenOutOfRange(token: Int, sequence: Int, position: Int, vocabularySize: Int)
  /// The batch is empty or a sequence is empty.
  case emptyInput
  /// The sequences of a batch have different lengths.
  case raggedBatch(sequence: Int, length: Int, expectedLength: Int)
  /// A layer index outside `0..<layerCount`.
  case layerOutOfRange(layer: Int, layerCount: Int)
  /// The checkpoint's model family has an architecture this forward pass does not compute.
  case architectureNotImplemented(family: String, reason: String)
  /// A token list could not be parsed, or names an id outside the vocabulary (`TokenBatch`).
  case invalidTokens(String)

  public var description: String {
    switch self {
    case .elementCountMismatch(let shape, let count):
      "tensor shape \(shape) does not hold \(count) values"
    case .missingWeight(let name):
      "weight '\(name)' is missing from the checkpoint"
    case .weightShapeMismatch(let name, let expected, let actual):
      "weight '\(name)' has shape \(actual), expected \(expected) from config.json"
    case .invalidConfiguration(let field, let value, let reason):
      "config field '\(field)' = \(value) is not usable: \(reason)"
    case .tokenOutOfRange(let token, let sequence, let position, let vocabularySize):
      "token id \(token) at sequence \(sequence) position \(position) is outside the vocabulary (0..<\(vocabularySize))"
    case .emptyInput:
      "no tokens to run: give at least one sequence with at least one token"
    case .raggedBatch(let sequence, let length, let expectedLength):
      "sequence \(sequence) has \(length) tokens, expected \(expectedLength): all sequences of a batch need the same length"
    case .layerOutOfRange(let layer, let layerCount):
      "layer \(layer) is outside 0..<\(layerCount)"
    case .architectureNotImplemented(let family, let reason):
      "the reference forward pass does not implement \(family): \(reason); refusing rather than computing wrong logits (validate --level tensor still compares the weights)"
    case .invalidTokens(let reason):
      "invalid token list: \(reason)"
    }
  }
}
