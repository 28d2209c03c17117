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

  /// Saturating RNE encode of eight values.
  @inline(__always)
  static func encodeSaturating(_ values: SIMD8<Float>) -> SIMD8<UInt8> {
    let word = unsafeBitCast(values, to: SIMD8<UInt32>.self)
    let signs = (word &>> 24) & 0x80
    let magnitude = word & 0x7FFF_FFFF
    let isNaN = magnitude .> 0x7F80_0000
    let clamped = pointwiseMin(magnitude, SIMD8(repeating: maxFiniteBits32))
    let magic = subnormalMagicBits
    let shifted = unsafeBitCast(clamped, to: SIMD8<Float>.self) + Float(bitPattern: magic)
    let subnormal = unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &- magic
    let odd = (clamped &>> droppedBitCount) & 1
    var code = (clamped &+ (rebias &+ roundingBias) &+ odd) &>> droppedBitCount
    code.replace(with: subnormal, where: clamped .< minNormalBits)
    code.replace(with: UInt32(F.nanBits), where: isNaN)
    return SIMD8<UInt8>(truncatingIfNeeded: code | signs)
  }
}
