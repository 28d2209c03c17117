/// Vectorized `quantize_row_<type>_ref` for the 32-element types Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1: four
/// `SIMD8<Float>` per block, the same float operations as the scalar ports in `LegacyQuants`. A block whose scale degenerates (a subnormal `d` whose reciprocal overflows, or a zero
/// extreme whose sign ggml's first-wins scan decides) goes through the scalar port instead, so results stay
/// identical for every finite input.
enum LegacyQuantsFast {
  typealias Floats = SIMD8<Float>
  typealias Ints = SIMD8<Int32>

  /// The block's four vectors.
  @inline(__always)
  static func load(_ x: UnsafePointer<Float>) -> (Floats, Floats, Floats, Floats) {
    let raw = UnsafeRawPointer(x)
    return (
      raw.loadUnaligned(fromByteOffset: 0, as: Floats.self), raw.loadUnaligned(fromByteOffset: 32, as: Floats.self),
      raw.loadUnaligned(fromByteOffset: 64, as: Floats.self), raw.loadUnaligned(fromByteOffset: 96, as: Floats.self)
    )
  }

  /// Exact conversion of integral floats in ±2^22 (the `nearest_int` bit trick).
  @inline(__always)
  static func integers(_ value: Floats) -> Ints { QuantSearchLanes.nearestInt(value) }

  @inline(__always)
  static func absMax(_ v: (Floats, Floats, Floats, Floats)) -> Float {
    let m = QuantSearchLanes.self
    return pointwiseMax(pointwiseMax(m.magnitude(v.0), m.magnitude(v.1)), pointwiseMax(m.magnitude(v.2), m.magnitude(v.3))).max()
  }

  // MARK: Q8_0

  static func quantizeQ8_0(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    for b in 0..<count / 32 {
      let xb = x + 32 * b
      let out = y + 34 * b
      let v = load(xb)
      let amax = absMax(v)
      let d = amax / 127
      let id: Float = d != 0 ? 1 / d : 0
      guard id.isFinite else {
        LegacyQuants.quantizeQ8_0(xb, count: 32, importance: nil, into: out)
        continue
      }
      out.storeHalf(GGMLScalars.halfBits(d), at: 0)
      let scaled = [v.0, v.1, v.2, v.3]
      for k in 0..<4 {
        let q = integers((scaled[k] * id).rounded(.toNearestOrAwayFromZero))
        out.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: q), toByteOffset: 2 + 8 * k, as: SIMD8<Int8>.self)
      }
    }
  }

  // MARK: Q4_0 and Q5_0

  static func quantizeQ4_0(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    symmetricRows(x, count: count, bits: 4, into: y)
  }

  static func quantizeQ5_0(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    symmetricRows(x, count: count, bits: 5, into: y)
  }

  /// Q4_0 (`d = max/−8`, `q = min(15, trunc(x/d + 8.5))`) and Q5_0 (`max/−16`, `min(31, trunc(x/d + 16.5))`).
  static func symmetricRows(_ x: UnsafePointer<Float>, count: Int, bits: Int, into y: UnsafeMutableRawPointer) {
    let blockBytes = bits == 4 ? 18 : 22
    let half = Float(1 << (bits - 1))
    let top = Ints(repeating: Int32((1 << bits) - 1))
    for b in 0..<count / 32 {
      let xb = x + 32 * b
      let out = y + blockBytes * b
      let v = load(xb)
      let amax = absMax(v)
      // The signed value ggml keeps: the first element of largest magnitude (+0 when all are zero).
      var max: Float = 0
      if amax > 0 {
        for j in 0..<32 where abs(xb[j]) == amax {
          max = xb[j]
          break
        }
      }
      let d = max / -half
      let id: Float = d != 0 ? 1 / d : 0
      guard id.isFinite else {
        bits == 4 ? LegacyQuants.q4_0Block(xb, out) : LegacyQuants.q5_0Block(xb, out)
        continue
      }
      out.storeHalf(GGMLScalars.halfBits(d), at: 0)
      let offset = half + 0.5
      let levels = [v.0, v.1, v.2, v.3].map { vector in
        let q = integers((vector * id + offset).rounded(.towardZero))
        return QuantSearchLanes.select(QuantSearchLanes.lanes(q .> top), top, q)
      }
      storeLevels(levels, bits: bits, into: out, levelsOffset: 2)
    }
  }

  // MARK: Q4_1 and Q5_1

  static func quantizeQ4_1(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    minMaxRows(x, count: count, bits: 4, into: y)
  }

  static func quantizeQ5_1(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    minMaxRows(x, count: count, bits: 5, into: y)
  }

  /// Q4_1 / Q5_1: `d = (max − min)/(2^bits − 1)`, `q = trunc((x − min)/d + 0.5)` (Q4_1 clamps to 15).
  static func minMaxRows(_ x: UnsafePointer<Float>, count: Int, bits: Int, into y: UnsafeMutableRawPointer) {
    let blockBytes = bits == 4 ? 20 : 24
    let top = Ints(repeating: Int32((1 << bits) - 1))
    for b in 0..<count / 32 {
      let xb = x + 32 * b
      let out = y + blockBytes * b
      let v = load(xb)
      let min = pointwiseMin(pointwiseMin(v.0, v.1), pointwiseMin(v.2, v.3)).min()
      let max = pointwiseMax(pointwiseMax(v.0, v.1), pointwiseMax(v.2, v.3)).max()
      let d = (max - min) / Float((1 << bits) - 1)
      let id: Float = d != 0 ? 1 / d : 0
      guard id.isFinite, min != 0, max != 0 else {
        LegacyQuants.minMaxBlock(xb, out, bits: bits)
        continue
      }
      out.storeHalf(GGMLScalars.halfBits(d), at: 0)
      out.storeHalf(GGMLScalars.halfBits(min), at: 2)
      let levels = [v.0, v.1, v.2, v.3].map { vector in
        let q = integers(((vector - min) * id + 0.5).rounded(.towardZero))
        return bits == 4 ? QuantSearchLanes.select(QuantSearchLanes.lanes(q .> top), top, q) : q
      }
      storeLevels(levels, bits: bits, into: out, levelsOffset: 4)
    }
  }

  /// Packs 32 levels (four vectors in element order): nibbles `j | j+16 << 4`, and for five bits the u32 of
  /// fifth bits before them.
  @inline(__always)
  static func storeLevels(_ levels: [Ints], bits: Int, into out: UnsafeMutableRawPointer, levelsOffset: Int) {
    let low = [levels[0] & 0xF, levels[1] & 0xF]
    let high = [levels[2] & 0xF, levels[3] & 0xF]
    var nibbleOffset = levelsOffset
    if bits == 5 {
      var qh: UInt32 = 0
      for k in 0..<4 {
        let fifth = (levels[k] &>> 4) & 1
        for lane in 0..<8 { qh |= UInt32(fifth[lane]) << UInt32(8 * k + lane) }
      }
      out.storeBytes(of: qh.littleEndian, toByteOffset: levelsOffset, as: UInt32.self)
      nibbleOffset += 4
    }
    for k in 0..<2 {
      let bytes = SIMD8<UInt8>(truncatingIfNeeded: low[k] | (high[k] &<< 4))
      out.storeBytes(of: bytes, toByteOffset: nibbleOffset + 8 * k, as: SIMD8<UInt8>.self)
    }
  }
}
