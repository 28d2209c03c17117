import TensorCore

/// Rounding to the weight dtype and little-endian byte encoding, as torch does it (round to nearest even),
/// on top of the shared `BFloat16` / `Float16Conversion` codecs.
enum GroupQuantRounding {
  /// `x` rounded to the nearest BF16 (ties to even), as an F32. NaN stays NaN, payload kept (unlike
  /// `BFloat16.bits(from:)`, which canonicalizes it).
  @inline(__always)
  static func bfloat16(_ x: Float) -> Float {
    if x.isNaN { return x }
    return Float(bitPattern: BFloat16.roundingCarry(x.bitPattern) & 0xFFFF_0000)
  }

  /// Lane-wise `bfloat16(_:)` for finite lanes.
  @inline(__always)
  static func bfloat16(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let rounded = BFloat16.roundingCarry(unsafeBitCast(x, to: SIMD8<UInt32>.self)) & 0xFFFF_0000
    return unsafeBitCast(rounded, to: SIMD8<Float>.self)
  }

  /// Eight floats starting at `index` (bounds-checked in debug builds; no alignment needed).
  @inline(__always)
  static func load8(_ values: UnsafeBufferPointer<Float>, _ index: Int) -> SIMD8<Float> {
    UnsafeRawBufferPointer(values).loadUnaligned(fromByteOffset: index &* 4, as: SIMD8<Float>.self)
  }

  /// Stores the low bytes of eight codes at `index` of `output`.
  @inline(__always)
  static func store8(_ codes: SIMD8<UInt32>, into output: DisjointMutableBuffer<UInt8>, at index: Int) {
    UnsafeMutableRawBufferPointer(output.buffer).storeBytes(
      of: SIMD8<UInt8>(truncatingIfNeeded: codes), toByteOffset: index, as: SIMD8<UInt8>.self)
  }

  /// Lane-wise minimum (a select, which vectorizes; the stdlib's `pointwiseMin` is an out-of-line call).
  @inline(__always)
  static func minimum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .< a) }

  /// Lane-wise maximum.
  @inline(__always)
  static func maximum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .> a) }

  /// 1.5 · 2^23: adding it to a float of magnitude < 2^22 rounds to an integer (ties to even, the FPU's default
  /// mode) and leaves that integer, two's complement, in the low mantissa bits.
  static let roundingMagic: Float = 12_582_912

  /// Lane-wise `rint(x)` as integer bits: the low bits of the result hold `rint(x)` (two's complement) for
  /// |x| < 2^22. Much faster than `rounded(.toNearestOrEven)` plus an Int32 conversion.
  @inline(__always)
  static func roundedBits(_ x: SIMD8<Float>) -> SIMD8<UInt32> {
    unsafeBitCast(x + SIMD8(repeating: roundingMagic), to: SIMD8<UInt32>.self)
  }

  /// Lane-wise `Float(n)` for n < 2^23 (exact, without the stdlib's slow generic conversion).
  @inline(__always)
  static func floats(_ n: SIMD8<UInt32>) -> SIMD8<Float> {
    unsafeBitCast(n | 0x4B00_0000, to: SIMD8<Float>.self) - SIMD8(repeating: 8_388_608)
  }

  /// Lane-wise absolute value (clears the sign bits).
  @inline(__always)
  static func magnitude(_ x: SIMD8<Float>) -> SIMD8<Float> {
    unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: SIMD8<Float>.self)
  }

  /// `x` rounded to the nearest F16 (ties to even, overflow to infinity), as an F32.
  @inline(__always)
  static func float16(_ x: Float) -> Float { Float16Conversion.float(fromBits: Float16Conversion.bits(from: x)) }

  /// Lane-wise `float16(_:)`.
  @inline(__always)
  static func float16(_ x: SIMD8<Float>) -> SIMD8<Float> {
    Float16Conversion.floats(fromBits: Float16Conversion.bits(from: x))
  }

  /// `x` rounded to `dtype` (F32, BF16 or F16).
  @inline(__always)
  static func round(_ x: Float, to dtype: DType) -> Float {
    switch dtype {
    case .bfloat16: bfloat16(x)
    case .float16: float16(x)
    default: x
    }
  }

  /// Lane-wise `round(_:to:)`.
  @inline(__always)
  static func round(_ x: SIMD8<Float>, to dtype: DType) -> SIMD8<Float> {
    switch dtype {
    case .bfloat16: bfloat16(x)
    case .float16: float16(x)
    default: x
    }
  }

  /// The machine epsilon of `dtype` (torch.finfo(dtype).eps).
  static func epsilon(_ dtype: DType) -> Float {
    switch dtype {
    case .bfloat16: 0.0078125
    case .float16: 0.0009765625
    default: Float.ulpOfOne
    }
  }

  /// The smallest positive normal of `dtype` (torch.finfo(dtype).tiny).
  static func tiny(_ dtype: DType) -> Float {
    dtype == .float16 ? 6.103515625e-05 : Float.leastNormalMagnitude
  }

  /// Little-endian bytes of `values` (already representable in `dtype`) stored as `dtype`.
  static func encode(_ values: [Float], as dtype: DType) -> [UInt8] {
    let halfBits: (Float) -> UInt16
    switch dtype {
    case .bfloat16: halfBits = { UInt16(truncatingIfNeeded: bfloat16($0).bitPattern >> 16) }
    case .float16: halfBits = Float16Conversion.bits(from:)
    default: return encodeWords(values.map(\.bitPattern))
    }
    var out = [UInt8](repeating: 0, count: values.count * 2)
    for (i, v) in values.enumerated() {
      let half = halfBits(v)
      out[2 * i] = UInt8(truncatingIfNeeded: half)
      out[2 * i + 1] = UInt8(truncatingIfNeeded: half >> 8)
    }
    return out
  }

  /// Decodes little-endian `dtype` (F32, BF16 or F16) bytes to F32.
  static func decode(_ bytes: [UInt8], as dtype: DType) -> [Float] {
    let widen: (UInt16) -> Float
    switch dtype {
    case .bfloat16: widen = BFloat16.float(fromBits:)
    case .float16: widen = Float16Conversion.float(fromBits:)
    default: return decodeWords(bytes).map { Float(bitPattern: $0) }
    }
    return (0..<bytes.count / 2).map { i in widen(UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8) }
  }

  /// Little-endian bytes of 32-bit words.
  static func encodeWords(_ words: [UInt32]) -> [UInt8] {
    #if _endian(little)
      return words.withUnsafeBytes { Array($0) }
    #else
      return encodeWordsReference(words)
    #endif
  }

  /// Portable byte-by-byte `encodeWords`.
  static func encodeWordsReference(_ words: [UInt32]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: words.count * 4)
    for (i, w) in words.enumerated() {
      out[4 * i] = UInt8(truncatingIfNeeded: w)
      out[4 * i + 1] = UInt8(truncatingIfNeeded: w >> 8)
      out[4 * i + 2] = UInt8(truncatingIfNeeded: w >> 16)
      out[4 * i + 3] = UInt8(truncatingIfNeeded: w >> 24)
    }
    return out
  }

  /// 32-bit words from little-endian bytes (a trailing partial word is ignored).
  static func decodeWords(_ bytes: [UInt8]) -> [UInt32] {
    (0..<bytes.count / 4).map { i -> UInt32 in
      let b0 = UInt32(bytes[4 * i])
      let b1 = UInt32(bytes[4 * i + 1]) << 8
      let b2 = UInt32(bytes[4 * i + 2]) << 16
      let b3 = UInt32(bytes[4 * i + 3]) << 24
      return b0 | b1 | b2 | b3
    }
  }
}
