/// bfloat16 stored as its `UInt16` bit pattern (the upper half of an IEEE single).
///
/// Narrowing matches ml_dtypes `astype(bfloat16)` bit for bit: round to nearest, ties to even; overflow rounds
/// to infinity; every NaN becomes the canonical quiet NaN `0x7FC0` with its sign kept (ml_dtypes drops the
/// payload).
public enum BFloat16 {
  /// The canonical positive quiet NaN ml_dtypes produces.
  public static let quietNaNBits: UInt16 = 0x7FC0

  /// The exact `Float` value of a bfloat16 bit pattern (widening is exact).
  @inline(__always)
  public static func float(fromBits bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
  }

  /// Rounds `value` to bfloat16 (RNE) and returns the bit pattern.
  @inline(__always)
  public static func bits(from value: Float) -> UInt16 {
    let word = value.bitPattern
    if word & 0x7FFF_FFFF > 0x7F80_0000 {
      return UInt16(truncatingIfNeeded: word >> 16) & 0x8000 | quietNaNBits
    }
    return UInt16(truncatingIfNeeded: roundingCarry(word) >> 16)
  }

  /// `word` (F32 bits, not NaN) plus the round-to-nearest-even carry: its upper half is the bfloat16 pattern.
  /// Overflow carries into the exponent and ends at infinity, as it should.
  @inline(__always)
  static func roundingCarry(_ word: UInt32) -> UInt32 {
    word &+ 0x7FFF &+ ((word >> 16) & 1)
  }

  /// The scalar reference for `bits(from:)`, written from the definition (exact value, then nearest even)
  /// rather than the carry trick, so the two can be tested against each other.
  public static func bitsReference(from value: Float) -> UInt16 {
    if value.isNaN { return (value.sign == .minus ? 0x8000 : 0) | quietNaNBits }
    let word = value.bitPattern
    let truncated = UInt16(truncatingIfNeeded: word >> 16)
    let remainder = word & 0xFFFF
    if remainder > 0x8000 || (remainder == 0x8000 && truncated & 1 == 1) {
      return truncated &+ 1  // carries into the exponent correctly, up to infinity
    }
    return truncated
  }
}

extension BFloat16 {
  /// Eight values rounded to bfloat16 (RNE, NaN -> canonical quiet NaN with sign), as in `bits(from:)`.
  @inline(__always)
  static func bits(from values: SIMD8<Float>) -> SIMD8<UInt16> {
    let word = unsafeBitCast(values, to: SIMD8<UInt32>.self)
    // Integer masks, not `SIMDMask` (see `Float8Kernel`): all ones where the lane is NaN.
    let nanMask = SIMD8<UInt32>(repeating: 0) &- ((0x7F80_0000 &- (word & 0x7FFF_FFFF)) &>> 31)
    let rounded = roundingCarry(word) &>> 16
    let nan = ((word &>> 16) & 0x8000) | UInt32(quietNaNBits)
    return SIMD8<UInt16>(truncatingIfNeeded: (rounded & ~nanMask) | (nan & nanMask))
  }

  /// Lane-wise `roundingCarry(_:)`.
  @inline(__always)
  static func roundingCarry(_ word: SIMD8<UInt32>) -> SIMD8<UInt32> {
    word &+ 0x7FFF &+ ((word &>> 16) & 1)
  }

  /// Eight bfloat16 patterns widened exactly.
  @inline(__always)
  static func floats(fromBits bits: SIMD8<UInt16>) -> SIMD8<Float> {
    unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: bits) &<< 16, to: SIMD8<Float>.self)
  }
}
