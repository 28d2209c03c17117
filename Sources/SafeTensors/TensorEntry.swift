import TensorCore

/// One tensor of a safetensors header: its name, element type, shape and where its bytes lie.
public struct TensorEntry: Sendable, Hashable, CustomStringConvertible {
  /// The tensor's name (any string; names are not paths).
  public let name: String
  /// The element type.
  public let dtype: DType
  /// The logical shape (for sub-byte dtypes, the element count, not the byte count). `[]` is a scalar.
  public let shape: [Int]
  /// Byte range relative to the start of the data section (file offset `dataStart`), not to the file.
  public let dataOffsets: Range<Int>
  /// The number of elements (product of `shape`; 1 for a scalar).
  public let elementCount: Int

  /// An entry whose shape and dtype need exactly `dataOffsets.count` bytes, or `nil` if they do not (or
  /// the element count overflows).
  public init?(name: String, dtype: DType, shape: [Int], dataOffsets: Range<Int>) {
    guard dataOffsets.lowerBound >= 0, let elementCount = ByteCount.elementCount(shape),
      let byteCount = ByteCount.of(dtype, shape: shape), byteCount == dataOffsets.count
    else { return nil }
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.dataOffsets = dataOffsets
    self.elementCount = elementCount
  }

  /// For entries the parser or planner has already validated.
  init(validatedName name: String, dtype: DType, shape: [Int], dataOffsets: Range<Int>, elementCount: Int) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.dataOffsets = dataOffsets
    self.elementCount = elementCount
  }

  /// The tensor's size in bytes.
  public var byteCount: Int { dataOffsets.count }

  /// `name: F32 [2, 3] @ 0..<24`.
  public var description: String {
    "\(name): \(dtype) \(shape) @ \(dataOffsets.lowerBound)..<\(dataOffsets.upperBound)"
  }
}
