/// Vectorized `dequantize_row_<type>`: eight elements per operation, each output computed with the same float
/// operations as ggml's scalar loop (`q·d`, `q·d + m`, `d1·q − m1`; a product that does not depend on the
/// element, such as Q6_K's `d·scale`, is hoisted but computed identically), so results equal
/// `LegacyQuants` / `KQuants` / `NonLinearQuants` bit for bit.
enum DequantizeFast {
  typealias Floats = SIMD8<Float>
  typealias Ints = SIMD8<Int32>

  /// Eight bytes widened to 32-bit lanes.
  @inline(__always)
  static func bytes(_ p: UnsafeRawPointer, _ offset: Int) -> Ints {
    Ints(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: offset, as: SIMD8<UInt8>.self))
  }

  @inline(__always)
  static func store(_ v: Floats, _ y: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(y).storeBytes(of: v, as: Floats.self)
  }

  // MARK: 32-element types

  static func q8_0(_ blocks: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<count / 32 {
      let block = blocks + 34 * b
      let d = Floats(repeating: block.loadHalf(at: 0))
      for k in 0..<4 {
        let q = Ints(truncatingIfNeeded: block.loadUnaligned(fromByteOffset: 2 + 8 * k, as: SIMD8<Int8>.self))
        store(q.laneFloats * d, y + 32 * b + 8 * k)
      }
    }
  }

  /// Q4_0 (`offset` 8, no min) and Q4_1 (`offset` 0, `+ m`): nibbles `j` and `j + 16`.
  static func q4(_ blocks: UnsafeRawPointer, count: Int, withMin: Bool, into y: UnsafeMutablePointer<Float>) {
    let blockBytes = withMin ? 20 : 18
    let codes = withMin ? 4 : 2
    let offset = Ints(repeating: withMin ? 0 : 8)
    let nibble = Ints(repeating: 0xF)
    for b in 0..<count / 32 {
      let block = blocks + blockBytes * b
      let d = Floats(repeating: block.loadHalf(at: 0))
      let m = Floats(repeating: withMin ? block.loadHalf(at: 2) : 0)
      for k in 0..<2 {
        let q = bytes(block, codes + 8 * k)
        let low = ((q & nibble) &- offset).laneFloats * d
        let high = ((q &>> 4) &- offset).laneFloats * d
        store(withMin ? low + m : low, y + 32 * b + 8 * k)
        store(withMin ? high + m : high, y + 32 * b + 16 + 8 * k)
      }
    }
  }

  /// Q5_0 (`(q | h) − 16`, no min) and Q5_1 (`q | h`, `+ m`).
  static func q5(_ blocks: UnsafeRawPointer, count: Int, withMin: Bool, into y: UnsafeMutablePointer<Float>) {
    let blockBytes = withMin ? 24 : 22
    let qhOffset = withMin ? 4 : 2
    let offset = Ints(repeating: withMin ? 0 : 16)
    let nibble = Ints(repeating: 0xF)
    let bit = Ints(1, 2, 4, 8, 16, 32, 64, 128)
    let sixteen = Ints(repeating: 16)
    for b in 0..<count / 32 {
      let block = blocks + blockBytes * b
      let d = Floats(repeating: block.loadHalf(at: 0))
      let m = Floats(repeating: withMin ? block.loadHalf(at: 2) : 0)
      let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: qhOffset, as: UInt32.self))
      for k in 0..<2 {
        let q = bytes(block, qhOffset + 4 + 8 * k)
        let lowBits = Ints(repeating: Int32(truncatingIfNeeded: (qh >> UInt32(8 * k)) & 0xFF))
        let highBits = Ints(repeating: Int32(truncatingIfNeeded: (qh >> UInt32(16 + 8 * k)) & 0xFF))
        let h0 = sixteen.replacing(with: Ints(), where: (lowBits & bit) .== Ints())
        let h1 = sixteen.replacing(with: Ints(), where: (highBits & bit) .== Ints())
        let low = (((q & nibble) | h0) &- offset).laneFloats * d
        let high = (((q &>> 4) | h1) &- offset).laneFloats * d
        store(withMin ? low + m : low, y + 32 * b + 8 * k)
        store(withMin ? high + m : high, y + 32 * b + 16 + 8 * k)
      }
    }
  }

  /// IQ4_NL and MXFP4: one product per table entry (`d·value`, the product every element with that code
  /// gets), then lookups.
  static func table(_ blocks: UnsafeRawPointer, count: Int, table: [Int8], blockBytes: Int, into y: UnsafeMutablePointer<Float>,
    scale: (UnsafeRawPointer) -> Float
  ) {
    let codes = blockBytes - 16
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { products in
      for b in 0..<count / 32 {
        let block = blocks + blockBytes * b
        let d = scale(block)
        for i in 0..<16 { products[i] = d * Float(table[i]) }
        let out = y + 32 * b
        for j in 0..<16 {
          let q = block.loadByte(at: codes + j)
          out[j] = products[Int(q & 0x0F)]
          out[j + 16] = products[Int(q >> 4)]
        }
      }
    }
  }

  // MARK: K-quants

  static func q4_K(_ blocks: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
    affineK(blocks, count: count, fiveBit: false, into: y)
  }

  static func q5_K(_ blocks: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
    affineK(blocks, count: count, fiveBit: true, into: y)
  }

  /// `d1·q − m1` per 32-group, q the low/high nibble (plus 16 for a set Q5_K high bit).
  static func affineK(_ blocks: UnsafeRawPointer, count: Int, fiveBit: Bool, into y: UnsafeMutablePointer<Float>) {
    let blockBytes = fiveBit ? 176 : 144
    let nibble = Ints(repeating: 0xF)
    let sixteen = Ints(repeating: 16)
    var packed = [UInt8](repeating: 0, count: 12)
    for i in 0..<count / 256 {
      let block = blocks + blockBytes * i
      let d = block.loadHalf(at: 0)
      let min = block.loadHalf(at: 2)
      for j in 0..<12 { packed[j] = block.loadByte(at: 4 + j) }
      let qs = block + (fiveBit ? 48 : 16)
      for pair in 0..<4 {
        let (sc1, m1) = KQuants.scaleMin(2 * pair, packed)
        let (sc2, m2) = KQuants.scaleMin(2 * pair + 1, packed)
        let d1 = Floats(repeating: d * Float(sc1))
        let min1 = Floats(repeating: min * Float(m1))
        let d2 = Floats(repeating: d * Float(sc2))
        let min2 = Floats(repeating: min * Float(m2))
        let out = y + 256 * i + 64 * pair
        for k in 0..<4 {
          let q = bytes(qs, 32 * pair + 8 * k)
          var low = q & nibble
          var high = q &>> 4
          if fiveBit {
            let h = bytes(block, 16 + 8 * k)
            let u1 = Ints(repeating: 1 << (2 * pair))
            let u2 = Ints(repeating: 2 << (2 * pair))
            low = low &+ sixteen.replacing(with: Ints(), where: (h & u1) .== Ints())
            high = high &+ sixteen.replacing(with: Ints(), where: (h & u2) .== Ints())
          }
          store(d1 * low.laneFloats - min1, out + 8 * k)
          store(d2 * high.laneFloats - min2, out + 32 + 8 * k)
        }
      }
    }
  }

  static func q6_K(_ blocks: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
    let nibble = Ints(repeating: 0xF)
    let three = Ints(repeating: 3)
    let thirtyTwo = Ints(repeating: 32)
    for i in 0..<count / 256 {
      let block = blocks + 210 * i
      let d = block.loadHalf(at: 208)
      for half in 0..<2 {
        let ql = block + 64 * half
        let qh = block + 128 + 32 * half
        let sc = block + 192 + 8 * half
        let out = y + 256 * i + 128 * half
        for k in 0..<4 {
          let is_ = (8 * k) / 16
          let low0 = bytes(ql, 8 * k)
          let low1 = bytes(ql, 32 + 8 * k)
          let h = bytes(qh, 8 * k)
          let q1 = ((low0 & nibble) | ((h & three) &<< 4)) &- thirtyTwo
          let q2 = ((low1 & nibble) | (((h &>> 2) & three) &<< 4)) &- thirtyTwo
          let q3 = ((low0 &>> 4) | (((h &>> 4) & three) &<< 4)) &- thirtyTwo
          let q4 = ((low1 &>> 4) | (((h &>> 6) & three) &<< 4)) &- thirtyTwo
          // y = d * sc * q: the d·sc product first, as C evaluates it.
          @inline(__always) func scaled(_ s: Int) -> Floats {
            Floats(repeating: d * Float(Int8(bitPattern: sc.loadByte(at: s))))
          }
          store(scaled(is_) * q1.laneFloats, out + 8 * k)
          store(scaled(is_ + 2) * q2.laneFloats, out + 32 + 8 * k)
          store(scaled(is_ + 4) * q3.laneFloats, out + 64 + 8 * k)
          store(scaled(is_ + 6) * q4.laneFloats, out + 96 + 8 * k)
        }
      }
    }
  }

  static func q2_K(_ blocks: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
    let three = Ints(repeating: 3)
    for i in 0..<count / 256 {
      let block = blocks + 84 * i
      let d = block.loadHalf(at: 80)
      let min = block.loadHalf(at: 82)
      var out = y + 256 * i
      var scaleIndex = 0
      for half in 0..<2 {
        let q = block + 16 + 32 * half
        for shift in stride(from: Int32(0), to: 8, by: 2) {
          for part in 0..<2 {
            let sc = block.loadByte(at: scaleIndex)
            scaleIndex += 1
            let dl = Floats(repeating: d * Float(sc & 0xF))
            let ml = Floats(repeating: min * Float(sc >> 4))
            for k in 0..<2 {
              let v = (bytes(q, 16 * part + 8 * k) &>> Ints(repeating: shift)) & three
              store(dl * v.laneFloats - ml, out + 8 * k)
            }
            out += 16
          }
        }
      }
    }
  }

  static func q3_K(_ blocks: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
    let three = Ints(repeating: 3)
    let four = Ints(repeating: 4)
    for i in 0..<count / 256 {
      let block = blocks + 110 * i
      let dAll = block.loadHalf(at: 108)
      let packed = (0..<12).map { block.loadByte(at: 96 + $0) }
      var out = y + 256 * i
      var scaleIndex = 0
      var bitIndex: Int32 = 0
      for half in 0..<2 {
        let q = block + 32 + 32 * half
        for shift in stride(from: Int32(0), to: 8, by: 2) {
          let mask = Ints(repeating: 1 << bitIndex)
          for part in 0..<2 {
            let j = scaleIndex
            let low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4
            let scale = Int(low | (((packed[8 + j % 4] >> UInt8(2 * (j / 4))) & 3) << 4)) - 32
            scaleIndex += 1
            let dl = Floats(repeating: dAll * Float(scale))
            for k in 0..<2 {
              let v = (bytes(q, 16 * part + 8 * k) &>> Ints(repeating: shift)) & three
              let h = bytes(block, 16 * part + 8 * k) & mask
              store(dl * (v &- four.replacing(with: Ints(), where: h .!= Ints())).laneFloats, out + 8 * k)
            }
            out += 16
          }
          bitIndex += 1
        }
      }
    }
  }
}
