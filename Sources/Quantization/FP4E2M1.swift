/// FP4 E2M1 elements (OCP MX, NVFP4): 1 sign, 2 exponent, 1 mantissa bit, no infinities or NaN.
///
/// Magnitude code i (0...7) is {0, 0.5, 1, 1.5, 2, 3, 4, 6}[i]; bit 3 is the sign, so 8 is −0.
public enum FP4E2M1 {
  /// The eight non-negative values, indexed by magnitude code.
  public static let magnitudes: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6]

  /// The value of a 4-bit code (the high four bits of `code` are ignored).
  @inline(__always)
  public static func decode(_ code: UInt8) -> Float {
    let magnitude = magnitudes[Int(code & 7)]
    return code & 8 == 0 ? magnitude : -magnitude
  }

  /// The magnitude code of `|x|`: round to nearest, ties to even, saturating at 6 (ml_dtypes, ModelOpt,
  /// compressed-tensors and triton_kernels all agree on these thresholds).
  @inline(__always)
  public static func magnitudeCode(_ magnitude: Float) -> UInt8 {
    let a = magnitude
    var code: UInt8 = 0
    if a > 0.25 { code += 1 }
    if a >= 0.75 { code += 1 }
    if a > 1.25 { code += 1 }
    if a >= 1.75 { code += 1 }
    if a > 2.5 { code += 1 }
    if a >= 3.5 { code += 1 }
    if a > 5 { code += 1 }
    return code
  }

  /// Lane-wise `magnitudeCode(_:)`, as 32-bit lanes.
  @inline(__always)
  static func magnitudeCodes(_ a: SIMD8<Float>) -> SIMD8<UInt32> {
    var code = SIMD8<UInt32>(repeating: 0)
    let one = SIMD8<UInt32>(repeating: 1)
    code &+= one.replacing(with: 0, where: .!(a .> 0.25))
    code &+= one.replacing(with: 0, where: .!(a .>= 0.75))
    code &+= one.replacing(with: 0, where: .!(a .> 1.25))
    code &+= one.replacing(with: 0, where: .!(a .>= 1.75))
    code &+= one.replacing(with: 0, where: .!(a .> 2.5))
    code &+= one.replacing(with: 0, where: .!(a .>= 3.5))
    code &+= one.replacing(with: 0, where: .!(a .> 5))
    return code
  }

  /// Encodes `x` the way torch-based writers do (compressed-tensors, ModelOpt): the sign bit is set when
  /// `x < 0`, so a small negative value becomes −0 (code 8) but −0.0 itself becomes +0 (code 0).
  @inline(__always)
  public static func encodeSignIfNegative(_ x: Float) -> UInt8 {
    magnitudeCode(abs(x)) | (x < 0 ? 8 : 0)
  }

  /// Encodes `x` as ml_dtypes and triton_kernels do: the sign bit is copied from `x` (−0.0 → code 8).
  @inline(__always)
  public static func encodeSignBit(_ x: Float) -> UInt8 {
    magnitudeCode(abs(x)) | (x.sign == .minus ? 8 : 0)
  }

  /// Lane-wise `encodeSignIfNegative(_:)`, as 32-bit lanes.
  @inline(__always)
  static func codesSignIfNegative(_ x: SIMD8<Float>) -> SIMD8<UInt32> {
    magnitudeCodes(GroupQuantRounding.magnitude(x)) | SIMD8<UInt32>(repeating: 8).replacing(with: 0, where: .!(x .< 0))
  }

  /// Lane-wise `encodeSignBit(_:)`, as 32-bit lanes.
  @inline(__always)
  static func codesSignBit(_ x: SIMD8<Float>) -> SIMD8<UInt32> {
    let sign = (unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x8000_0000) &>> 28
    return magnitudeCodes(GroupQuantRounding.magnitude(x)) | sign
  }
}
