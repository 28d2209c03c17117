import TensorCore

/// Everything that can go wrong in the Quantization module. Messages are one lowercase line; the caller adds
/// the tensor name (these kernels see buffers, not tensors).
public enum QuantizationError: Error, Sendable, Equatable, CustomStringConvertible {
  /// A buffer's byte count does not match what the shape and dtype require.
  case bufferSizeMismatch(buffer: String, expectedByteCount: Int, actualByteCount: Int)
  /// The operation does not support this dtype.
  case unsupportedDType(DType, operation: String)
  /// A shape or block dimension is negative, zero where it must not be, or overflows `Int`.
  case invalidShape(rows: Int, columns: Int, reason: String)
  /// An input element to a quantizer is NaN or infinite; a scale cannot represent it.
  case nonFiniteInput(elementIndex: Int, row: Int, column: Int, value: Float)
  /// A stored scale is NaN or infinite, so every element of its block would decode to garbage.
  case nonFiniteScale(scaleIndex: Int, value: Float)

  public var description: String {
    switch self {
    case .bufferSizeMismatch(let buffer, let expected, let actual):
      "\(buffer) holds \(actual) bytes but the shape needs \(expected)"
    case .unsupportedDType(let dtype, let operation):
      "\(operation) does not support dtype \(dtype)"
    case .invalidShape(let rows, let columns, let reason):
      "invalid shape [\(rows), \(columns)]: \(reason)"
    case .nonFiniteInput(let index, let row, let column, let value):
      "element \(index) (row \(row), column \(column)) is \(value); quantizers need finite inputs"
        + " (fix or exclude the tensor)"
    case .nonFiniteScale(let index, let value):
      "scale \(index) is \(value); the checkpoint's scale tensor is corrupt"
    }
  }
}
