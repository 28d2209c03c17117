/// The fast FP8 encoders: RNE with saturation by integer and float tricks, no branches in the SIMD form.
///
/// On the magnitude bits `m` (after clamping to the format's max, which for non-negative floats is an
/// integer `min` on the bit patterns):
/// - normal range: adding `(bias - 127) << 23` re-biases the exponent, adding `2^(d-1) - 1` plus the lowest
///   kept bit rounds to nearest even, and `>> d` (d = 23 - mantissa bits) yields exponent and mantissa;
/// - subnormal range (below the format's min normal): adding a float whose ulp equals the format's smallest
///   subnormal lets the FPU round (RNE), and subtracting its bits leaves the subnormal code.
enum Float8Kernel<F: Float8Format> {
  @inline(__always) static var droppedBitCount: UInt32 { 23 - F.mantissaBitCount }
  @inline(__always) static var roundingBias: UInt32 { (1 << (droppedBitCount - 1)) - 1 }
  @inline(__always) static var rebias: UInt32 { UInt32(bitPattern: (F.exponentBias - 127) << 23) }
  @inline(__always) static var minNormalBits: UInt32 { UInt32(127 + 1 - F.exponentBias) << 23 }
  @inline(__always) static var subnormalMagicBits: UInt32 {
    UInt32(127 + 24 - F.exponentBias - Int32(F.mantissaBitCount)) << 23
  }
  @inline(__always) static var maxFiniteBits32: UInt32 { F.maxFinite.bitPattern }

  /// Saturating RNE encode of one value.
  @inline(__always)
  static func encodeSaturating(_ value: Float) -> UInt8 {
    let word = value.bitPattern
    let sign = UInt8(truncatingIfNeeded: word >> 24) & 0x80
    let magnitude = word & 0x7FFF_FFFF
    if magnitude > 0x7F80_0000 { return sign | F.nanBits }
    let clamped = min(magnitude, maxFiniteBits32)
    let code: UInt32
    if clamped < minNormalBits {
      let magic = subnormalMagicBits
      code = (Float(bitPattern: clamped) + Float(bitPattern: magic)).bitPattern &- magic
    } else {
      let odd = (clamped >> droppedBitCount) & 1
      code = (clamped &+ rebias &+ roundingBias &+ odd) >> droppedBitCount
    }
    return sign | UInt8(truncatingIfNeeded: code)
  }

  /// Saturating RNE encode of eight values. Selections use integer masks (`0 &- bit`): Swift's `SIMDMask`
  /// `replace(with:where:)` compiles to a per-lane loop through memory, 10x slower.
  @inline(__always)
  static func encodeSaturating(_ values: SIMD8<Float>) -> SIMD8<UInt8> {
    let word = unsafeBitCast(values, to: SIMD8<UInt32>.self)
    let magnitude = word & 0x7FFF_FFFF
    // All ones where the lane is NaN: 0x7F800000 - m borrows (bit 31 set) exactly when m > 0x7F800000.
    let nanMask = SIMD8<UInt32>(repeating: 0) &- ((0x7F80_0000 &- magnitude) &>> 31)
    return encodeSaturating(magnitude: magnitude, signs: (word &>> 24) & 0x80, nanMask: nanMask)
  }

  /// `encodeSaturating` for lanes known not to be NaN (the block quantizer rejects NaN up front).
  @inline(__always)
  static func encodeSaturatingFinite(_ values: SIMD8<Float>) -> SIMD8<UInt8> {
    let word = unsafeBitCast(values, to: SIMD8<UInt32>.self)
    return encodeSaturating(
      magnitude: word & 0x7FFF_FFFF, signs: (word &>> 24) & 0x80, nanMask: SIMD8<UInt32>(repeating: 0))
  }

  @inline(__always)
  static func encodeSaturating(magnitude: SIMD8<UInt32>, signs: SIMD8<UInt32>, nanMask: SIMD8<UInt32>)
    -> SIMD8<UInt8>
  {
    let clamped = pointwiseMin(magnitude, SIMD8(repeating: maxFiniteBits32))
    let magic = subnormalMagicBits
    let shifted = unsafeBitCast(clamped, to: SIMD8<Float>.self) + Float(bitPattern: magic)
    let subnormal = unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &- magic
    let odd = (clamped &>> droppedBitCount) & 1
    let normal = (clamped &+ (rebias &+ roundingBias) &+ odd) &>> droppedBitCount
    // All ones where the lane is below the min normal (both operands < 2^31, so the borrow is bit 31).
    let subnormalMask = SIMD8<UInt32>(repeating: 0) &- ((clamped &- minNormalBits) &>> 31)
    let code = (subnormal & subnormalMask) | (normal & ~subnormalMask)
    let result = (code & ~nanMask) | (UInt32(F.nanBits) & nanMask)
    return SIMD8<UInt8>(truncatingIfNeeded: result | signs)
  }
}

extension Float8Kernel where F == Float8E4M3FN {
  /// Decodes eight E4M3FN codes exactly, without tables: the code's magnitude bits shifted left by 7 are
  /// an F16 whose value is exactly the E4M3 value times 2^-8 (both formats' subnormals included, since F16
  /// has 5 exponent bits), so one hardware F16 -> F32 conversion and a multiplication by 256 decode it;
  /// `S1111111` becomes the F16 quiet NaN, i.e. the F32 quiet NaN with its sign — the same bits as
  /// `Float8E4M3FN.decodeTable`. No F32 subnormal arithmetic (microcode assists on x86) is involved.
  @inline(__always)
  static func decode(_ codes: SIMD8<UInt8>) -> SIMD8<Float> {
    let code = SIMD8<UInt16>(truncatingIfNeeded: codes)
    let magnitude = code & 0x7F
    // All ones where the magnitude code is 0x7F (NaN): 0x7E - m borrows exactly then.
    let nanMask = SIMD8<UInt16>(repeating: 0) &- ((0x7E &- magnitude) &>> 15)
    let half = ((magnitude &<< 7) & ~nanMask) | (0x7E00 & nanMask) | ((code & 0x80) &<< 8)
    return Float16Conversion.floats(fromBits: half) * 256
  }
}
