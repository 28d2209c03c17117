/// IEEE half precision conversions.
///
/// Smelt uses Swift's `Float16`. Release builds target Haswell (`-target-cpu haswell` in Package.swift), so
/// `Float` <-> `Float16` compiles to F16C instructions (`vcvtps2ph` / `vcvtph2ps`); debug and `BASELINE=1`
/// builds call compiler-rt (`__truncsfhf2`), which rounds identically. Rounding is to nearest, ties to even;
/// overflow rounds to infinity. A NaN keeps its sign and the top 9 payload bits and gets the quiet bit set
/// (numpy keeps a signalling NaN signalling; only NaN payloads differ).
public enum Float16Conversion {
  /// The exact `Float` value of a half-precision bit pattern.
  @inline(__always)
  public static func float(fromBits bits: UInt16) -> Float {
    Float(Float16(bitPattern: bits))
  }

  /// Rounds `value` to half precision (RNE) and returns the bit pattern.
  @inline(__always)
  public static func bits(from value: Float) -> UInt16 {
    Float16(value).bitPattern
  }

  /// The scalar reference for `bits(from:)`: integer arithmetic from the IEEE definition, independent of
  /// the hardware conversion.
  public static func bitsReference(from value: Float) -> UInt16 {
    let word = value.bitPattern
    let sign = UInt16(truncatingIfNeeded: word >> 16) & 0x8000
    let magnitude = word & 0x7FFF_FFFF
    if magnitude > 0x7F80_0000 {
      return sign | 0x7E00 | UInt16(truncatingIfNeeded: (magnitude & 0x007F_FFFF) >> 13)
    }
    if magnitude == 0x7F80_0000 { return sign | 0x7C00 }
    let exponent = Int(magnitude >> 23) - 127 + 15  // target biased exponent
    if exponent >= 31 { return sign | 0x7C00 }
    if magnitude >> 23 == 0 { return sign }  // F32 subnormals are far below half the F16 minimum
    let significand = (magnitude & 0x007F_FFFF) | 0x0080_0000
    if exponent >= 1 {
      let rounded = roundShift(significand, by: 13)  // 11 significant bits, may carry to 2^11
      // Adding the rounded significand (implicit bit included) to the exponent field carries correctly.
      let result = UInt32(exponent - 1) << 10 + rounded
      return result >= 0x7C00 ? sign | 0x7C00 : sign | UInt16(result)
    }
    let shift = 13 + 1 - exponent
    if shift > 25 { return sign }
    return sign | UInt16(roundShift(significand, by: UInt32(shift)))
  }
}

/// `value >> shift`, rounded to nearest with ties to even (shift in 1...31).
@inline(__always)
func roundShift(_ value: UInt32, by shift: UInt32) -> UInt32 {
  let quotient = value >> shift
  let remainder = value & ((1 << shift) - 1)
  let half: UInt32 = 1 << (shift - 1)
  if remainder > half || (remainder == half && quotient & 1 == 1) { return quotient + 1 }
  return quotient
}

extension Float16Conversion {
  /// Eight values rounded to half precision (one `vcvtps2ph` in release builds).
  @inline(__always)
  static func bits(from values: SIMD8<Float>) -> SIMD8<UInt16> {
    unsafeBitCast(SIMD8<Float16>(values), to: SIMD8<UInt16>.self)
  }

  /// Eight half-precision patterns widened exactly (one `vcvtph2ps` in release builds).
  @inline(__always)
  static func floats(fromBits bits: SIMD8<UInt16>) -> SIMD8<Float> {
    SIMD8<Float>(unsafeBitCast(bits, to: SIMD8<Float16>.self))
  }
}
