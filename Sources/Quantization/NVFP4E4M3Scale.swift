/// A small scalar E4M3FN (`float8_e4m3fn`) codec for NVFP4 block scales.
///
/// Kept private to the NVFP4 code so the 4-bit formats do not wait on the FP8 codec files; the lead may
/// replace it with the shared FP8 codec (same RNE semantics as `torch.Tensor.to(torch.float8_e4m3fn)`).
enum NVFP4E4M3Scale {
  /// Rounds a non-negative `x` (≤ 448 after the caller's clamp) to the nearest E4M3FN byte, ties to even.
  /// NaN becomes 0x7F.
  static func encode(_ x: Float) -> UInt8 {
    if x.isNaN { return 0x7F }
    let a = min(max(x, 0), 448)
    if a < 0.015625 {
      // Subnormals are multiples of 2^-9; scaling by 512 is exact, so rint is the RNE rounding.
      return UInt8((a * 512).rounded(.toNearestOrEven))
    }
    let bits = a.bitPattern
    var exponent = Int((bits >> 23) & 0xFF) - 127
    var kept = (bits & 0x7F_FFFF) >> 20
    let rest = bits & 0xF_FFFF
    if rest > 0x8_0000 || (rest == 0x8_0000 && kept & 1 == 1) { kept += 1 }
    if kept == 8 {
      kept = 0
      exponent += 1
    }
    return UInt8((exponent + 7) << 3) | UInt8(kept)
  }

  /// The value of an E4M3FN byte (0x7F and 0xFF are NaN).
  static func decode(_ byte: UInt8) -> Float {
    let magnitude = byte & 0x7F
    if magnitude == 0x7F { return .nan }
    let exponent = Int(magnitude >> 3)
    let mantissa = Float(magnitude & 7)
    let value =
      exponent == 0
      ? mantissa * 0.001953125
      : Float(sign: .plus, exponent: exponent - 7, significand: 1 + mantissa / 8)
    return byte & 0x80 == 0 ? value : -value
  }
}
