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

  /// The number of elements.
  public var elementCount: Int { values.count }
}
