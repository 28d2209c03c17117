/// An element type that a safetensors file can declare.
///
/// The cases are declared in the order of the reference crate's `Dtype` enum (increasing alignment), which
/// the writer relies on to lay out tensors so that each one starts aligned to its element size.
/// The raw value is the exact, case-sensitive dtype string of the safetensors header.
public enum DType: String, CaseIterable, Sendable, Hashable, CustomStringConvertible {
  /// Boolean stored as one byte. The corresponding safetensors dtype is `BOOL`.
  case bool = "BOOL"
  /// 4-bit float E2M1, two elements per byte. The corresponding safetensors dtype is `F4`.
  case float4E2M1 = "F4"
  /// 6-bit float E2M3, four elements in three bytes. The corresponding safetensors dtype is `F6_E2M3`.
  case float6E2M3 = "F6_E2M3"
  /// 6-bit float E3M2, four elements in three bytes. The corresponding safetensors dtype is `F6_E3M2`.
  case float6E3M2 = "F6_E3M2"
  /// Unsigned 8-bit integer. The corresponding safetensors dtype is `U8`.
  case uint8 = "U8"
  /// Signed 8-bit integer. The corresponding safetensors dtype is `I8`.
  case int8 = "I8"
  /// 8-bit float, 5 exponent / 2 mantissa bits, IEEE-like with infinities. Safetensors dtype `F8_E5M2`.
  case float8E5M2 = "F8_E5M2"
  /// 8-bit float, 4 exponent / 3 mantissa bits, finite-only (`float8_e4m3fn`). Safetensors dtype `F8_E4M3`.
  case float8E4M3FN = "F8_E4M3"
  /// 8-bit unsigned power of two (`float8_e8m0fnu`), used for MX block scales. Safetensors dtype `F8_E8M0`.
  case float8E8M0FNU = "F8_E8M0"
  /// AMD's E4M3 variant with a single NaN and no negative zero. Safetensors dtype `F8_E4M3FNUZ`.
  case float8E4M3FNUZ = "F8_E4M3FNUZ"
  /// AMD's E5M2 variant with a single NaN and no negative zero. Safetensors dtype `F8_E5M2FNUZ`.
  case float8E5M2FNUZ = "F8_E5M2FNUZ"
  /// Signed 16-bit integer. The corresponding safetensors dtype is `I16`.
  case int16 = "I16"
  /// Unsigned 16-bit integer. The corresponding safetensors dtype is `U16`.
  case uint16 = "U16"
  /// IEEE half precision. The corresponding safetensors dtype is `F16`.
  case float16 = "F16"
  /// bfloat16 (the upper half of an IEEE single). The corresponding safetensors dtype is `BF16`.
  case bfloat16 = "BF16"
  /// Signed 32-bit integer. The corresponding safetensors dtype is `I32`.
  case int32 = "I32"
  /// Unsigned 32-bit integer. The corresponding safetensors dtype is `U32`.
  case uint32 = "U32"
  /// IEEE single precision. The corresponding safetensors dtype is `F32`.
  case float32 = "F32"
  /// Complex number of two IEEE singles. The corresponding safetensors dtype is `C64`.
  case complex64 = "C64"
  /// IEEE double precision. The corresponding safetensors dtype is `F64`.
  case float64 = "F64"
  /// Signed 64-bit integer. The corresponding safetensors dtype is `I64`.
  case int64 = "I64"
  /// Unsigned 64-bit integer. The corresponding safetensors dtype is `U64`.
  case uint64 = "U64"

  /// Bits per element on disk.
  public var bitWidth: Int {
    switch self {
    case .float4E2M1: 4
    case .float6E2M3, .float6E3M2: 6
    case .bool, .uint8, .int8, .float8E5M2, .float8E4M3FN, .float8E8M0FNU, .float8E4M3FNUZ, .float8E5M2FNUZ: 8
    case .int16, .uint16, .float16, .bfloat16: 16
    case .int32, .uint32, .float32: 32
    case .complex64, .float64, .int64, .uint64: 64
    }
  }

  /// Bytes per element, or `nil` for sub-byte dtypes whose elements do not occupy whole bytes.
  public var byteWidth: Int? { bitWidth % 8 == 0 ? bitWidth / 8 : nil }

  /// The alignment (in bytes) a tensor of this dtype wants: its element size, at least 1.
  public var alignment: Int { max(1, bitWidth / 8) }

  /// Position in the reference crate's enum; the writer orders tensors by descending rank.
  public var crateOrder: Int { DType.allCases.firstIndex(of: self)! }

  /// True for the floating-point element types (including FP8/FP6/FP4 and complex).
  public var isFloatingPoint: Bool {
    switch self {
    case .bool, .uint8, .int8, .int16, .uint16, .int32, .uint32, .int64, .uint64: false
    default: true
    }
  }

  /// The safetensors dtype string.
  public var description: String { rawValue }

  /// Parses a safetensors dtype string (case-sensitive, as the reference crate does).
  public init?(safetensorsName: String) { self.init(rawValue: safetensorsName) }
}
