import TensorCore

/// A dequantized weight: what a consumer's own decompressor returns, as F32 values that are exactly
/// representable in `dtype` (the dtype that decompressor returns).
public struct DequantizedMatrix: Sendable, Equatable {
  /// Row-major `[rowCount, columnCount]` values.
  public var values: [Float]
  /// Output channels.
  public var rowCount: Int
  /// Input channels.
  public var columnCount: Int
  /// The dtype the reference decompressor produces (BF16 for the MX/NVFP4 compressed-tensors readers, the
  /// scale dtype for int4, ...).
  public var dtype: DType

  public init(values: [Float], rowCount: Int, columnCount: Int, dtype: DType) {
    self.values = values
    self.rowCount = rowCount
    self.columnCount = columnCount
    self.dtype = dtype
  }
}

/// Tensor lookup with shape and dtype checks, shared by the dequantizers.
enum PackedTensorLookup {
  static func find(
    _ nameSuffix: String, in tensors: [PackedTensor], format: String, dtypes: [DType], shape: [Int]?
  ) throws(FormatQuantizationError) -> PackedTensor {
    guard let tensor = tensors.first(where: { $0.nameSuffix == nameSuffix }) else {
      throw .missingTensor(format: format, nameSuffix: nameSuffix)
    }
    let expected = "\(dtypes.map(\.rawValue).joined(separator: "|")) \(shape.map { "\($0)" } ?? "[...]")"
    let actual = "\(tensor.dtype) \(tensor.shape)"
    guard dtypes.contains(tensor.dtype) else {
      throw .tensorMismatch(format: format, nameSuffix: nameSuffix, expected: expected, actual: actual)
    }
    if let shape, tensor.shape != shape {
      throw .tensorMismatch(format: format, nameSuffix: nameSuffix, expected: expected, actual: actual)
    }
    guard let byteCount = ByteCount.of(tensor.dtype, shape: tensor.shape), byteCount == tensor.bytes.count else {
      throw .tensorMismatch(
        format: format, nameSuffix: nameSuffix, expected: "\(expected) with matching byte count",
        actual: "\(actual) with \(tensor.bytes.count) bytes")
    }
    return tensor
  }

  /// Checks a `[rows, columns]` shape from a tensor, throwing on non-positive dimensions.
  static func matrixShape(
    rows: Int, columns: Int, format: String, groupSize: Int
  ) throws(FormatQuantizationError) {
    guard rows > 0, columns > 0, ByteCount.elementCount([rows, columns]) != nil else {
      throw .badShape(format: format, shape: [rows, columns], elementCount: 0)
    }
    guard groupSize > 0, columns % groupSize == 0 else {
      throw .partialGroup(format: format, columnCount: columns, groupSize: groupSize)
    }
  }
}
