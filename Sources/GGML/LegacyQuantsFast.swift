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
  static func integers(_ value: Floats) -> Ints { value.laneNearestInt }

  /// The largest magnitude of the block (order-free, so exact).
  @inline(__always)
  static func absMax(_ v: (Floats, Floats, Floats, Floats)) -> Float {
    let a = v.0.laneMagnitude
    let b = v.1.laneMagnitude
    let c = v.2.laneMagnitude
    let d = v.3.laneMagnitude
    let ab = a.replacing(with: b, where: b .> a)
    let cd = c.replacing(with: d, where: d .> c)
    return largestLane(ab.replacing(with: cd, where: cd .> ab))
  }

  /// `roundf` per lane (ties away from zero, −0 kept): truncate, then step away from zero where the dropped
  /// fraction is at least ½ (exact: `x − trunc(x)` is representable). SIMD's own
  /// `.rounded(.toNearestOrAwayFromZero)` has no x86 vector instruction and becomes a libm call per lane.
  @inline(__always) static func roundedHalfAway(_ v: Floats) -> Floats {
    let truncated = v.rounded(.towardZero)
    let fraction = v - truncated
    let away = Floats(repeating: 1).replacing(with: -1, where: v .< 0)
    return truncated.replacing(with: truncated + away, where: fraction .>= 0.5 .| fraction .<= -0.5)
  }

  /// Each lane's low byte. `SIMD8<Int8>(truncatingIfNeeded:)` is a generic out-of-line loop (a call per eight
  /// values of a Q8_0 conversion); lane by lane it compiles to a few shuffles.
  @inline(__always) static func lowBytes(_ q: Ints) -> SIMD8<UInt8> {
    SIMD8<UInt8>(
      UInt8(truncatingIfNeeded: q[0]), UInt8(truncatingIfNeeded: q[1]), UInt8(truncatingIfNeeded: q[2]), UInt8(truncatingIfNeeded: q[3]),
      UInt8(truncatingIfNeeded: q[4]), UInt8(truncatingIfNeeded: q[5]), UInt8(truncatingIfNeeded: q[6]), UInt8(truncatingIfNeeded: q[7]))
  }

  /// The largest lane, found by halving with the same `.>` steps as above (SIMD's own `max()` is a scalar
  /// loop through a generic call: the hottest instruction of a Q8_0 conversion before).
  @inline(__always) static func largestLane(_ v: Floats) -> Float {
    let four = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    let two = four.lowHalf.replacing(with: four.highHalf, where: four.highHalf .> four.lowHalf)
    return two[1] > two[0] ? two[1] : two[0]
  }

  /// The smallest lane, the mirror of `largestLane`.
  @inline(__always) static func smallestLane(_ v: Floats) -> Float {
    let four = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .< v.lowHalf)
    let two = four.lowHalf.replacing(with: four.highHalf, where: four.highHalf .< four.lowHalf)
    return two[1] < two[0] ? two[1] : two[0]
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
      let scale = Floats(repeating: id)
      @inline(__always) func store(_ vector: Floats, _ k: Int) {
        out.storeBytes(of: lowBytes(integers(roundedHalfAway(vector * scale))), toByteOffset: 2 + 8 * k, as: SIMD8<UInt8>.self)
      }
      store(v.0, 0)
      store(v.1, 1)
      store(v.2, 2)
      store(v.3, 3)
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
    let offset = Floats(repeating: half + 0.5)
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
      let scale = Floats(repeating: id)
      @inline(__always) func level(_ vector: Floats) -> Ints {
        let q = integers((vector * scale + offset).rounded(.towardZero))
        return q.replacing(with: top, where: q .> top)
      }
      storeLevels(level(v.0), level(v.1), level(v.2), level(v.3), fiveBit: bits == 5, into: out + 2)
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
    let top = Ints(repeating: bits == 4 ? 15 : Int32.max)
    let half = Floats(repeating: 0.5)
    for b in 0..<count / 32 {
      let xb = x + 32 * b
      let out = y + blockBytes * b
      let v = load(xb)
      var lowest = v.0.replacing(with: v.1, where: v.1 .< v.0)
      lowest = lowest.replacing(with: v.2, where: v.2 .< lowest)
      lowest = lowest.replacing(with: v.3, where: v.3 .< lowest)
      var highest = v.0.replacing(with: v.1, where: v.1 .> v.0)
      highest = highest.replacing(with: v.2, where: v.2 .> highest)
      highest = highest.replacing(with: v.3, where: v.3 .> highest)
      let min = smallestLane(lowest)
      let max = largestLane(highest)
      let d = (max - min) / Float((1 << bits) - 1)
      let id: Float = d != 0 ? 1 / d : 0
      guard id.isFinite, min != 0, max != 0 else {
        LegacyQuants.minMaxBlock(xb, out, bits: bits)
        continue
      }
      out.storeHalf(GGMLScalars.halfBits(d), at: 0)
      out.storeHalf(GGMLScalars.halfBits(min), at: 2)
      let scale = Floats(repeating: id)
      let shift = Floats(repeating: min)
      @inline(__always) func level(_ vector: Floats) -> Ints {
        let q = integers(((vector - shift) * scale + half).rounded(.towardZero))
        return q.replacing(with: top, where: q .> top)
      }
      storeLevels(level(v.0), level(v.1), level(v.2), level(v.3), fiveBit: bits == 5, into: out + 4)
    }
  }

  /// Packs 32 levels (four vectors in element order) at `out`: for five bits first the u32 of fifth bits,
  /// then the nibbles `j | (j + 16) << 4`.
  @inline(__always)
  static func storeLevels(_ l0: Ints, _ l1: Ints, _ l2: Ints, _ l3: Ints, fiveBit: Bool, into out: UnsafeMutableRawPointer) {
    let nibble = Ints(repeating: 0xF)
    var nibbles = out
    if fiveBit {
      let one = Ints(repeating: 1)
      let weights = Ints(1, 2, 4, 8, 16, 32, 64, 128)
      @inline(__always) func fifthBits(_ l: Ints) -> UInt32 { UInt32(truncatingIfNeeded: (((l &>> 4) & one) &* weights).wrappedSum()) }
      let qh = fifthBits(l0) | fifthBits(l1) << 8 | fifthBits(l2) << 16 | fifthBits(l3) << 24
      out.storeBytes(of: qh.littleEndian, toByteOffset: 0, as: UInt32.self)
      nibbles += 4
    }
    nibbles.storeBytes(of: lowBytes((l0 & nibble) | ((l2 & nibble) &<< 4)), toByteOffset: 0, as: SIMD8<UInt8>.self)
    nibbles.storeBytes(of: lowBytes((l1 & nibble) | ((l3 & nibble) &<< 4)), toByteOffset: 8, as: SIMD8<UInt8>.self)
  }
}
