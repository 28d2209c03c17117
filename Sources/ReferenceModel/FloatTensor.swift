import TensorCore

/// A dense F32 tensor: row-major `values` with a `shape`.
///
/// Weights arrive as `FloatTensor`s (`[out, in]` for linear layers, as PyTorch stores them); activations are
/// plain `[Float]` buffers with their shape in a comment.
public struct FloatTensor: Sendable, Equatable {
  /// The dimensions, outermost first.
  public let shape: [Int]
  /// `shape.reduce(1, *)` values in row-major order.
  public let values: [Float]

  /// A tensor of `shape` holding `values`; throws when the counts disagree.
  public init(shape: [Int], values: [Float]) throws(ReferenceModelError) {
    guard let count = ByteCount.elementCount(shape), count == values.count else {
      throw .elementCountMismatch(shape: shape, valueCount: values.count)
    }
    self.shape = shape
    self.values = values
  }

  /// A tensor whose count the caller has already established (shapes computed by this module).
  init(validatedShape shape: [Int], values: [Float]) {
    assert(ByteCount.elementCount(shape) == values.count, "tensor count mismatch")
    self.shape = shape
    self.values = values
  }

  /// An empty placeholder.
  static let empty = FloatTensor(validatedShape: [0], values: [])

  /// The number of elements.
  public var elementCount: Int { values.count }
}
