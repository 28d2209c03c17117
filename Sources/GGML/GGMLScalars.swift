import CMath

/// ggml's scalar conversions and rounding helpers, reproduced bit for bit (ggml-impl.h, ggml-quants.c).
///
/// ggml computes in `float` with no FMA contraction (ggml-base is built for the baseline ISA), so every
/// expression in Smelt's ports keeps C's evaluation order: `w*x*l` is `(w*x)*Float(l)`. Where C converts a
/// float to a narrow integer (`(int8_t)f`, `(uint8_t)f`), x86-64 truncates to a 32-bit integer first
/// (`cvttss2si`, which gives `Int32.min` for NaN and out-of-range values) and keeps the low byte; `truncatedInt32`
/// reproduces that, because the edge cases (a subnormal scale whose reciprocal overflows) reach it.
public enum GGMLScalars {
  /// `GGML_FP32_TO_FP16`: round to nearest even (overflow to infinity); every NaN becomes `sign | 0x7E00`.
  @inline(__always)
  public static func halfBits(_ value: Float) -> UInt16 {
    if value.isNaN { return UInt16(truncatingIfNeeded: value.bitPattern >> 16) & 0x8000 | 0x7E00 }
    return Float16(value).bitPattern
  }

  /// `GGML_FP16_TO_FP32`: exact widening.
  @inline(__always)
  public static func float(halfBits bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

  /// `GGML_FP32_TO_BF16`: round to nearest even; a NaN keeps its top 16 bits with the quiet bit (0x40) set.
  @inline(__always)
  public static func bfloat16Bits(_ value: Float) -> UInt16 {
    let word = value.bitPattern
    if word & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: word >> 16) | 64 }
    return UInt16(truncatingIfNeeded: (word &+ (0x7FFF &+ ((word >> 16) & 1))) >> 16)
  }

  /// `GGML_BF16_TO_FP32`: exact widening.
  @inline(__always)
  public static func float(bfloat16Bits bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

  /// ggml's `nearest_int`: `fval + 12582912` read back as bits, so ties round to even. Valid for
  /// |fval| ≤ 4194303; beyond that (the assert is compiled out in release builds) it returns the same garbage
  /// as ggml.
  @inline(__always)
  public static func nearestInt(_ value: Float) -> Int32 {
    let biased = value + 12_582_912
    return (Int32(bitPattern: biased.bitPattern) & 0x007F_FFFF) &- 0x0040_0000
  }

  /// C's float-to-int conversion as x86-64 executes it (`cvttss2si`): truncation toward zero, and
  /// `Int32.min` for NaN or a value outside the `Int32` range.
  @inline(__always)
  public static func truncatedInt32(_ value: Float) -> Int32 {
    guard value > -2_147_483_904, value < 2_147_483_648 else { return Int32.min }  // NaN fails both
    return Int32(value)
  }

  /// `GGML_E8M0_TO_FP32_HALF`: `2^(e − 128)`, subnormal for e < 2.
  @inline(__always)
  public static func e8m0Half(_ e: UInt8) -> Float {
    e < 2 ? Float(bitPattern: UInt32(0x0020_0000) << e) : Float(bitPattern: UInt32(e - 1) << 23)
  }

  /// libm's `log2f`, the function ggml's MXFP4 scale uses (`floorf(log2f(amax))` rounds up to an integer just
  /// below a power of two, so the exponent field alone would differ).
  @inline(__always)
  static func log2f(_ value: Float) -> Float { CMath.log2(value) }

  /// `best_index_int8`: the index of the table value nearest to `x` (binary search; on a tie the upper one).
  @inline(__always)
  static func bestIndex(_ values: UnsafePointer<Int8>, count: Int, _ x: Float) -> Int {
    if x <= Float(values[0]) { return 0 }
    if x >= Float(values[count - 1]) { return count - 1 }
    var low = 0
    var high = count - 1
    while high - low > 1 {
      let middle = (low + high) / 2
      if x < Float(values[middle]) { high = middle } else { low = middle }
    }
    return x - Float(values[high - 1]) < Float(values[high]) - x ? high - 1 : high
  }
}

/// Little-endian field access inside a block (ggml blocks are packed, so fields are unaligned).
extension UnsafeMutableRawPointer {
  @inline(__always)
  func storeHalf(_ bits: UInt16, at offset: Int) {
    storeBytes(of: bits.littleEndian, toByteOffset: offset, as: UInt16.self)
  }
}

extension UnsafeRawPointer {
  @inline(__always)
  func loadHalf(at offset: Int) -> Float {
    GGMLScalars.float(halfBits: UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
  }

  @inline(__always)
  func loadByte(at offset: Int) -> UInt8 { load(fromByteOffset: offset, as: UInt8.self) }
}
