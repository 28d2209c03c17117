import TensorCore

/// How the elements of a 2-D FP8 weight `[rows, columns]` share scales.
public enum FP8Scheme: Sendable, Hashable, CustomStringConvertible {
  /// One scale per `rows × columns` block; edge blocks are cropped. Scales `[ceil(R/rows), ceil(C/columns)]`.
  case block(rows: Int, columns: Int)
  /// One scale per output row (compressed-tensors `strategy: channel`). Scales `[R, 1]`.
  case channel
  /// One scale for the whole tensor (compressed-tensors `strategy: tensor`). Scales `[1]`.
  case tensor

  /// DeepSeek-V3 / HF `quant_method: "fp8"`: 128 × 128 blocks.
  public static let deepSeek = FP8Scheme.block(rows: 128, columns: 128)

  public var description: String {
    switch self {
    case .block(let rows, let columns): "block \(rows)x\(columns)"
    case .channel: "channel"
    case .tensor: "tensor"
    }
  }
}

/// How a block's scale is chosen from its absolute maximum.
public enum FP8ScaleFormat: String, Sendable, Hashable, CaseIterable {
  /// `scale = amax / 448` in F32 (DeepSeek-V3/R1, compressed-tensors).
  case float = "float"
  /// `amax / 448` rounded *up* to a power of two, `2^ceil(log2(amax/448))` (DeepSeek-V3.1 `scale_fmt: ue8m0`,
  /// DeepGEMM `ceil_to_ue8m0`), clamped to the E8M0 range `2^-127 ... 2^127`.
  case ue8m0 = "ue8m0"
}

/// The scale rule: the format, and the dtype the scale will be stored in.
///
/// The quantizer rounds the scale to its storage dtype *before* dividing, so that dequantizing with the
/// stored scale reproduces exactly what was quantized (compressed-tensors stores scales in the weight's
/// dtype, normally BF16; DeepSeek stores F32).
public struct FP8ScaleRule: Sendable, Hashable {
  /// Plain or power-of-two scales.
  public var format: FP8ScaleFormat
  /// F32 (DeepSeek), BF16 or F16 (compressed-tensors: the weight's dtype).
  public var storageDType: DType

  /// The scale of an all-zero block (transformers' `Fp8Quantize` convention: its `448/amax` becomes 1).
  public static let zeroBlockScale: Float = 1

  /// DeepSeek-V3: F32 `amax/448`.
  public static let deepSeek = FP8ScaleRule(format: .float, storageDType: .float32)

  public init(format: FP8ScaleFormat = .float, storageDType: DType = .float32) {
    self.format = format
    self.storageDType = storageDType
  }

  /// The scale for a block whose largest magnitude is `amax` (finite, non-negative), already rounded to
  /// `storageDType`. Never zero, never infinite:
  /// - `amax == 0`: `zeroBlockScale` (every code is zero whatever the scale);
  /// - a scale that underflows to 0 in the storage dtype becomes its smallest positive value, one that
  ///   overflows becomes its largest finite value (elements then saturate at ±448).
  public func scale(forAbsoluteMaximum amax: Float) -> Float {
    if amax == 0 { return Self.zeroBlockScale }
    var scale = amax / Float8E4M3FN.maxFinite
    if format == .ue8m0 { scale = powerOfTwoCeiling(scale) }
    switch storageDType {
    case .bfloat16:
      scale = BFloat16.float(fromBits: BFloat16.bits(from: scale))
      if scale == 0 { scale = BFloat16.float(fromBits: 0x0001) }
      if scale == .infinity { scale = BFloat16.float(fromBits: 0x7F7F) }
    case .float16:
      scale = Float(Float16(scale))
      if scale == 0 { scale = Float(Float16.leastNonzeroMagnitude) }
      if scale == .infinity { scale = Float(Float16.greatestFiniteMagnitude) }
    default:
      if scale == 0 { scale = .leastNonzeroMagnitude }
    }
    return scale
  }

  /// The smallest power of two `>= value` (exact: by exponent, not through `log2`), within `2^-127 ... 2^127`.
  func powerOfTwoCeiling(_ value: Float) -> Float {
    let power = value.significand == 1 ? value : Float(sign: .plus, exponent: value.exponent + 1, significand: 1)
    return min(max(power, 0x1p-127), 0x1p127)
  }
}

/// The validated geometry of a `[rows, columns]` FP8 weight under a scheme.
public struct FP8BlockLayout: Sendable, Hashable {
  /// Weight rows (output channels) and columns (input channels).
  public let rows: Int, columns: Int
  /// The block shape after resolving the scheme (channel: `1 × columns`; tensor: `rows × columns`).
  public let blockRows: Int, blockColumns: Int
  /// The scale grid: `ceil(rows / blockRows) × ceil(columns / blockColumns)`.
  public let scaleRows: Int, scaleColumns: Int
  /// The scheme this layout came from.
  public let scheme: FP8Scheme

  /// Validates the shape (both dimensions ≥ 1, element count fits `Int`) and block shape (≥ 1).
  public init(rows: Int, columns: Int, scheme: FP8Scheme) throws(QuantizationError) {
    guard rows >= 1, columns >= 1 else {
      throw .invalidShape(rows: rows, columns: columns, reason: "an FP8 weight needs at least one row and column")
    }
    guard ByteCount.elementCount([rows, columns]) != nil else {
      throw .invalidShape(rows: rows, columns: columns, reason: "the element count overflows")
    }
    switch scheme {
    case .block(let blockRows, let blockColumns):
      guard blockRows >= 1, blockColumns >= 1 else {
        throw .invalidShape(
          rows: rows, columns: columns, reason: "block shape \(blockRows)x\(blockColumns) must be positive")
      }
      self.blockRows = min(blockRows, rows)
      self.blockColumns = min(blockColumns, columns)
      self.scaleRows = (rows - 1) / blockRows + 1
      self.scaleColumns = (columns - 1) / blockColumns + 1
    case .channel:
      (self.blockRows, self.blockColumns, self.scaleRows, self.scaleColumns) = (1, columns, rows, 1)
    case .tensor:
      (self.blockRows, self.blockColumns, self.scaleRows, self.scaleColumns) = (rows, columns, 1, 1)
    }
    self.rows = rows
    self.columns = columns
    self.scheme = scheme
  }

  /// `rows × columns` (also the FP8 byte count).
  public var elementCount: Int { rows * columns }
  /// Number of scales.
  public var scaleCount: Int { scaleRows * scaleColumns }
  /// The stored scale tensor's shape: block `[scaleRows, scaleColumns]`, channel `[rows, 1]`, tensor `[1]`.
  public var scaleShape: [Int] {
    switch scheme {
    case .block: [scaleRows, scaleColumns]
    case .channel: [rows, 1]
    case .tensor: [1]
    }
  }
}
