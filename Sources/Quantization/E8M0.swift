/// E8M0 scale bytes (`float8_e8m0fnu`): value 2^(byte − 127); 0xFF is NaN; there is no zero.
public enum E8M0 {
  /// The value of a scale byte.
  @inline(__always)
  public static func decode(_ byte: UInt8) -> Float {
    if byte == 0xFF { return .nan }
    return Float(sign: .plus, exponent: Int(byte) - 127, significand: 1)
  }
}
