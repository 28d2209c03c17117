import TensorCore

/// A compile-time description of an 8-bit float format (`S EEEE MMM` or `S EEEEE MM`), so one generic
/// kernel serves both FP8 formats and specializes to constants in release builds.
public protocol Float8Format: Sendable {
  /// The safetensors dtype.
  static var dtype: DType { get }
  /// Explicit mantissa bits (3 or 2).
  static var mantissaBitCount: UInt32 { get }
  /// Exponent bias (7 or 15).
  static var exponentBias: Int32 { get }
  /// The largest finite magnitude (448 or 57344).
  static var maxFinite: Float { get }
  /// The bit pattern of `+maxFinite` (0x7E or 0x7B).
  static var maxFiniteBits: UInt8 { get }
  /// The positive NaN that ml_dtypes produces for a NaN input (0x7F or 0x7E); the sign is kept.
  static var nanBits: UInt8 { get }
  /// What ml_dtypes' non-saturating cast produces for overflow and infinity (positive; sign kept):
  /// NaN for E4M3FN (it has no infinity), +inf (0x7C) for E5M2.
  static var overflowBits: UInt8 { get }
  /// The 256 decoded values, indexed by bit pattern.
  static var decodeTable: [Float] { get }
  /// bfloat16 bit pattern -> FP8 byte with the saturating policy; 65536 entries, built on first use.
  static var fromBFloat16Table: [UInt8] { get }
  /// float16 bit pattern -> FP8 byte with the saturating policy; 65536 entries, built on first use.
  static var fromFloat16Table: [UInt8] { get }
}

/// FP8 E4M3FN (`float8_e4m3fn`, safetensors `F8_E4M3`): bias 7, no infinities, NaN = `S1111111`, max 448.
public enum Float8E4M3FN: Float8Format {
  public static let dtype = DType.float8E4M3FN
  public static let mantissaBitCount: UInt32 = 3
  public static let exponentBias: Int32 = 7
  public static let maxFinite: Float = 448
  public static let maxFiniteBits: UInt8 = 0x7E
  public static let nanBits: UInt8 = 0x7F
  public static let overflowBits: UInt8 = 0x7F
  public static let decodeTable: [Float] = makeFloat8DecodeTable(Float8E4M3FN.self)
  public static let fromBFloat16Table: [UInt8] = makeFloat8Table(Float8E4M3FN.self, from: BFloat16.float(fromBits:))
  public static let fromFloat16Table: [UInt8] = makeFloat8Table(Float8E4M3FN.self, from: Float16Conversion.float(fromBits:))
}

/// FP8 E5M2 (`float8_e5m2`, safetensors `F8_E5M2`): bias 15, IEEE-like with infinities (0x7C) and NaNs,
/// max 57344.
public enum Float8E5M2: Float8Format {
  public static let dtype = DType.float8E5M2
  public static let mantissaBitCount: UInt32 = 2
  public static let exponentBias: Int32 = 15
  public static let maxFinite: Float = 57344
  public static let maxFiniteBits: UInt8 = 0x7B
  public static let nanBits: UInt8 = 0x7E
  public static let overflowBits: UInt8 = 0x7C
  public static let decodeTable: [Float] = makeFloat8DecodeTable(Float8E5M2.self)
  public static let fromBFloat16Table: [UInt8] = makeFloat8Table(Float8E5M2.self, from: BFloat16.float(fromBits:))
  public static let fromFloat16Table: [UInt8] = makeFloat8Table(Float8E5M2.self, from: Float16Conversion.float(fromBits:))
}

extension Float8Format {
  /// The exact value of an FP8 bit pattern (NaN patterns decode to a quiet NaN with the pattern's sign,
  /// E5M2 0x7C / 0xFC to infinities).
  @inline(__always)
  public static func float(fromBits bits: UInt8) -> Float {
    decodeTable.withUnsafeBufferPointer { $0[Int(bits)] }
  }

  /// Smelt's saturating encoder: RNE after clamping to `±maxFinite`, so overflow and infinities become
  /// `±max`; NaN stays NaN (`nanBits`, sign kept). This is the policy of every Smelt writer.
  @inline(__always)
  public static func bitsSaturating(from value: Float) -> UInt8 {
    Float8Kernel<Self>.encodeSaturating(value)
  }

  /// The ml_dtypes `astype` cast, bit for bit (RNE, non-saturating): overflow past the rounding range and
  /// infinities become NaN for E4M3FN and infinity for E5M2. This is the scalar reference the goldens pin.
  public static func bitsNonSaturating(from value: Float) -> UInt8 {
    float8EncodeReference(value, Self.self, saturating: false)
  }

  /// The scalar reference for `bitsSaturating(from:)`, written from the definition.
  public static func bitsSaturatingReference(from value: Float) -> UInt8 {
    float8EncodeReference(value, Self.self, saturating: true)
  }
}

/// A 16-bit -> FP8 table: every 16-bit float widens exactly to F32, so the saturating F32 encoder of the
/// widened value is the correctly rounded 16-bit -> FP8 cast.
func makeFloat8Table<F: Float8Format>(_: F.Type, from widen: (UInt16) -> Float) -> [UInt8] {
  (0..<65536).map { Float8Kernel<F>.encodeSaturating(widen(UInt16(truncatingIfNeeded: $0))) }
}

/// Decodes every pattern from the definition: subnormals when E = 0; E4M3FN's only NaNs are S1111111;
/// E5M2 reserves E = 31 for infinities and NaNs.
func makeFloat8DecodeTable<F: Float8Format>(_: F.Type) -> [Float] {
  let m = Int(F.mantissaBitCount)
  let exponentMask = (1 << (7 - m)) - 1
  return (0..<256).map { code in
    let negative = code & 0x80 != 0
    let magnitudeCode = code & 0x7F
    let exponent = magnitudeCode >> m
    let mantissa = magnitudeCode & ((1 << m) - 1)
    var value: Float
    if magnitudeCode == Int(F.nanBits) || (F.overflowBits != F.nanBits && exponent == exponentMask && mantissa != 0) {
      value = .nan
    } else if F.overflowBits != F.nanBits && magnitudeCode == Int(F.overflowBits) {
      value = .infinity
    } else if exponent == 0 {
      value = Float(mantissa) * Float(sign: .plus, exponent: 1 - Int(F.exponentBias) - m, significand: 1)
    } else {
      value = Float(sign: .plus, exponent: exponent - Int(F.exponentBias), significand: 1 + Float(mantissa) / Float(1 << m))
    }
    return negative ? -value : value
  }
}

/// ml_dtypes' F32 -> FP8 conversion from first principles: decompose, round the 24-bit significand to the
/// format's precision (RNE), handle the subnormal range by a longer shift, then apply the overflow policy.
func float8EncodeReference<F: Float8Format>(_ value: Float, _: F.Type, saturating: Bool) -> UInt8 {
  let word = value.bitPattern
  let sign = UInt8(truncatingIfNeeded: word >> 24) & 0x80
  let magnitude = word & 0x7FFF_FFFF
  if magnitude > 0x7F80_0000 { return sign | F.nanBits }
  let overflow = sign | (saturating ? F.maxFiniteBits : F.overflowBits)
  if magnitude == 0x7F80_0000 { return overflow }
  if magnitude >> 23 == 0 { return sign }  // F32 zero / subnormal: far below half the FP8 minimum
  let m = F.mantissaBitCount
  let exponent = Int32(magnitude >> 23) - 127 + F.exponentBias  // target biased exponent
  let significand = (magnitude & 0x007F_FFFF) | 0x0080_0000
  let code: UInt32
  if exponent >= 1 {
    let rounded = roundShift(significand, by: 23 - m)  // in [2^m, 2^(m+1)]
    // (exponent - 1) << m plus the significand with its implicit bit carries into the exponent correctly.
    code = UInt32(exponent - 1) << m + rounded
  } else {
    let shift = Int32(23 - m) + 1 - exponent
    code = shift > 31 ? 0 : roundShift(significand, by: UInt32(shift))
  }
  if code > UInt32(F.maxFiniteBits) { return overflow }
  return sign | UInt8(code)
}
