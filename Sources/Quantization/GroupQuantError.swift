import TensorCore

/// Why a 4-bit (or MLX 8-bit) group quantizer or its dequantizer refused its input.
///
/// One case per rule; every message is one lowercase line that names the tensor and, where it helps, the fix.
public enum FormatQuantizationError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The input column count is not a multiple of the group (or block) size and the format defines no partial
  /// groups.
  case partialGroup(format: String, columnCount: Int, groupSize: Int)
  /// The group size is not one the format supports.
  case unsupportedGroupSize(format: String, groupSize: Int, supported: [Int])
  /// The bit width is not one the format supports.
  case unsupportedBits(format: String, bits: Int, supported: [Int])
  /// The input holds a NaN or an infinity.
  case nonFiniteInput(format: String, row: Int, column: Int)
  /// The declared shape does not match the element count, or a dimension is zero/negative or overflows.
  case badShape(format: String, shape: [Int], elementCount: Int)
  /// The layout packs output channels in groups and the output dimension does not divide.
  case outputChannelsNotMultiple(format: String, rowCount: Int, multiple: Int)
  /// The source dtype cannot be a weight dtype for this format (F32, BF16 and F16 are accepted).
  case unsupportedSourceDType(format: String, dtype: DType)
  /// A tensor needed for dequantization is missing.
  case missingTensor(format: String, nameSuffix: String)
  /// A tensor given to a dequantizer has the wrong dtype or shape.
  case tensorMismatch(format: String, nameSuffix: String, expected: String, actual: String)
  /// A stored value is out of the format's range (for example a zero point outside 0...15 or a NaN scale).
  case invalidStoredValue(format: String, nameSuffix: String, detail: String)

  public var description: String {
    switch self {
    case .partialGroup(let format, let columnCount, let groupSize):
      "\(format): input dimension \(columnCount) is not a multiple of group size \(groupSize); "
        + "pick a group size that divides it or keep this tensor unquantized"
    case .unsupportedGroupSize(let format, let groupSize, let supported):
      "\(format): group size \(groupSize) is not supported (use one of \(supported))"
    case .unsupportedBits(let format, let bits, let supported):
      "\(format): \(bits) bits is not supported (use one of \(supported))"
    case .nonFiniteInput(let format, let row, let column):
      "\(format): input holds a nan or infinity at row \(row), column \(column); fix the source weight first"
    case .badShape(let format, let shape, let elementCount):
      "\(format): shape \(shape) does not describe \(elementCount) elements as a non-empty [out, in] matrix"
    case .outputChannelsNotMultiple(let format, let rowCount, let multiple):
      "\(format): output dimension \(rowCount) is not a multiple of \(multiple), which this layout packs together"
    case .unsupportedSourceDType(let format, let dtype):
      "\(format): source dtype \(dtype) is not a weight dtype (expected F32, BF16 or F16)"
    case .missingTensor(let format, let nameSuffix):
      "\(format): tensor '\(nameSuffix)' is missing"
    case .tensorMismatch(let format, let nameSuffix, let expected, let actual):
      "\(format): tensor '\(nameSuffix)' should be \(expected) but is \(actual)"
    case .invalidStoredValue(let format, let nameSuffix, let detail):
      "\(format): tensor '\(nameSuffix)' holds an invalid value: \(detail)"
    }
  }
}
