/// Fast F32 / F16 / BF16 rows: eight lanes at a time (F16C in release builds), then the scalar tail.
/// Results equal `NonLinearQuantsReference`'s scalar loops, including ggml's NaN encodings. Little-endian
/// hosts only (as every platform Swift on Linux targets).
enum FloatKernels {
  static func quantizeF32(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    y.copyMemory(from: x, byteCount: 4 * count)
  }

  static func dequantizeF32(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(x).copyMemory(from: y, byteCount: 4 * count)
  }

  static func quantizeF16(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    let source = UnsafeRawPointer(x)
    var j = 0
    while j + 8 <= count {
      let values = source.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self)
      let word = unsafeBitCast(values, to: SIMD8<UInt32>.self)
      let half = SIMD8<UInt32>(truncatingIfNeeded: unsafeBitCast(SIMD8<Float16>(values), to: SIMD8<UInt16>.self))
      let nan = ((word &>> 16) & 0x8000) | 0x7E00
      let bits = select(nan, half, where: nanMask(word))
      y.storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: bits), toByteOffset: 2 * j, as: SIMD8<UInt16>.self)
      j += 8
    }
    while j < count {
      y.storeHalf(GGMLScalars.halfBits(x[j]), at: 2 * j)
      j += 1
    }
  }

  static func dequantizeF16(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    let destination = UnsafeMutableRawPointer(x)
    var j = 0
    while j + 8 <= count {
      let bits = y.loadUnaligned(fromByteOffset: 2 * j, as: SIMD8<UInt16>.self)
      destination.storeBytes(of: SIMD8<Float>(unsafeBitCast(bits, to: SIMD8<Float16>.self)), toByteOffset: 4 * j, as: SIMD8<Float>.self)
      j += 8
    }
    while j < count {
      x[j] = y.loadHalf(at: 2 * j)
      j += 1
    }
  }

  static func quantizeBF16(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    let source = UnsafeRawPointer(x)
    var j = 0
    while j + 8 <= count {
      let word = source.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<UInt32>.self)
      let rounded = (word &+ 0x7FFF &+ ((word &>> 16) & 1)) &>> 16
      let nan = (word &>> 16) | 64
      let bits = select(nan, rounded, where: nanMask(word))
      y.storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: bits), toByteOffset: 2 * j, as: SIMD8<UInt16>.self)
      j += 8
    }
    while j < count {
      y.storeHalf(GGMLScalars.bfloat16Bits(x[j]), at: 2 * j)
      j += 1
    }
  }

  static func dequantizeBF16(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    let destination = UnsafeMutableRawPointer(x)
    var j = 0
    while j + 8 <= count {
      let bits = SIMD8<UInt32>(truncatingIfNeeded: y.loadUnaligned(fromByteOffset: 2 * j, as: SIMD8<UInt16>.self))
      destination.storeBytes(of: bits &<< 16, toByteOffset: 4 * j, as: SIMD8<UInt32>.self)
      j += 8
    }
    while j < count {
      x[j] = GGMLScalars.float(bfloat16Bits: UInt16(littleEndian: y.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
      j += 1
    }
  }

  /// All ones in the lanes whose F32 bit pattern is a NaN (integer arithmetic, no `SIMDMask`).
  @inline(__always)
  static func nanMask(_ word: SIMD8<UInt32>) -> SIMD8<UInt32> {
    SIMD8<UInt32>(repeating: 0) &- ((0x7F80_0000 &- (word & 0x7FFF_FFFF)) &>> 31)
  }

  /// `mask ? a : b` lane by lane, for a mask of all-ones / all-zeros lanes.
  @inline(__always)
  static func select(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>, where mask: SIMD8<UInt32>) -> SIMD8<UInt32> {
    (a & mask) | (b & ~mask)
  }
}
