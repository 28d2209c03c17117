/// Fast kernels for the table-based types: IQ4_NL searches eight blocks at once in SIMD lanes (each lane runs
/// `quantize_row_iq4_nl_impl`'s sequential sums for its block), MXFP4 picks codes eight elements at a time.
/// Both equal `NonLinearQuants`' scalar ports bit for bit.
enum NonLinearQuantsFast {
  typealias Floats = SIMD8<Float>
  typealias Ints = SIMD8<Int32>
  private typealias Lane = QuantSearchLanes

  // MARK: IQ4_NL

  /// `quantize_iq4_nl` (ntry 7): batches of eight blocks in lanes, the remainder scalar.
  static func quantizeIQ4_NL(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    let blocks = count / 32
    var xs = [Floats](repeating: Floats(), count: 32)
    var ws = [Floats](repeating: Floats(), count: 32)
    var b = 0
    while b + 8 <= blocks {
      xs.withUnsafeMutableBufferPointer { xs in
        ws.withUnsafeMutableBufferPointer { ws in
          Lane.transpose(x + 32 * b, length: 32, into: xs.baseAddress!)
          if let importance { Lane.transpose(importance + 32 * b, length: 32, into: ws.baseAddress!) }
          iq4nlLanes(xs.baseAddress!, importance: importance == nil ? nil : ws.baseAddress!, into: y + 18 * b)
        }
      }
      b += 8
    }
    var L = [UInt8](repeating: 0, count: 32)
    while b < blocks {
      NonLinearQuants.iq4nlBlock(x + 32 * b, importance: importance.map { $0 + 32 * b }, tries: 7, levels: &L, into: y + 18 * b)
      b += 1
    }
  }

  /// Eight blocks of `quantize_row_iq4_nl_impl` (super-block = block = 32, ntry 7). `qw` holds the transposed
  /// importance (it is overwritten with the weights).
  static func iq4nlLanes(_ xs: UnsafePointer<Floats>, importance qw: UnsafeMutablePointer<Floats>?, into y: UnsafeMutableRawPointer) {
    let tries = 7
    var sigma2 = Floats(repeating: 0)
    for j in 0..<32 { sigma2 += xs[j] * xs[j] }
    sigma2 *= 2.0 / 32
    var weight = [Floats](repeating: Floats(), count: 32)
    for j in 0..<32 { weight[j] = qw.map { $0[j] * (sigma2 + xs[j] * xs[j]).squareRoot() } ?? xs[j] * xs[j] }
    var amax = Floats(repeating: 0)
    var max = Floats(repeating: 0)
    for j in 0..<32 {
      let ax = Lane.magnitude(xs[j])
      let larger = Lane.lanes(ax .> amax)
      amax = Lane.select(larger, ax, amax)
      max = Lane.select(larger, xs[j], max)
    }
    let zero = Lane.lanes(amax .< QuantSearch.groupMaxEpsilon)
    let v0 = Float(NonLinearQuants.iq4nlValues[0])
    var d = Lane.negated(max) / Floats(repeating: v0)
    var id = 1 / d
    var sumqx = Floats(repeating: 0)
    var sumq2 = Floats(repeating: 0)
    for j in 0..<32 {
      let q = nearestValue(id * xs[j]).value
      sumqx += weight[j] * q * xs[j]
      sumq2 += weight[j] * q * q
    }
    d = Lane.select(Lane.lanes(sumq2 .> 0), sumqx / sumq2, Floats(repeating: 0))
    var best = d * sumqx
    for itry in -tries...tries {
      id = Floats(repeating: Float(itry + Int(NonLinearQuants.iq4nlValues[0]))) / max
      sumqx = Floats(repeating: 0)
      sumq2 = Floats(repeating: 0)
      for j in 0..<32 {
        let q = nearestValue(id * xs[j]).value
        sumqx += weight[j] * q * xs[j]
        sumq2 += weight[j] * q * q
      }
      let better = Lane.lanes(sumq2 .> 0) & Lane.lanes(sumqx * sumqx .> best * sumq2)
      let candidate = sumqx / sumq2
      d = Lane.select(better, candidate, d)
      best = Lane.select(better, candidate * sumqx, best)
    }
    let scale = Lane.select(zero, Floats(repeating: 0), d)
    let inverse = Lane.select(Lane.lanes(scale .!= 0), 1 / scale, Floats(repeating: 0))
    var levels = [Ints](repeating: Ints(), count: 32)
    for j in 0..<32 { levels[j] = nearestValue(inverse * xs[j]).index }
    for k in 0..<8 {
      let out = y + 18 * k
      out.storeHalf(GGMLScalars.halfBits(scale[k]), at: 0)
      for j in 0..<16 { out.storeBytes(of: UInt8(levels[j][k] | levels[16 + j][k] << 4), toByteOffset: 2 + j, as: UInt8.self) }
    }
  }

  /// `best_index_int8(16, kvalues_iq4nl, x)` per lane, with the chosen table value. Between two entries the
  /// binary search ends on the bracketing pair `v[mu−1] ≤ x < v[mu]`, `mu` = how many entries are ≤ x; a NaN
  /// ends on the last entry.
  @inline(__always)
  static func nearestValue(_ x: Floats) -> (index: Ints, value: Floats) {
    let table = NonLinearQuants.iq4nlFloatValues
    var count = Ints(repeating: 0)
    var low = Floats(repeating: table[0])
    var high = Floats(repeating: table[15])
    for k in 0..<16 {
      let atOrBelow = Lane.lanes(x .>= Floats(repeating: table[k]))
      count &-= atOrBelow
      low = Lane.select(atOrBelow, Floats(repeating: table[k]), low)
    }
    for k in stride(from: 15, through: 0, by: -1) {
      high = Lane.select(Lane.lanes(x .< Floats(repeating: table[k])), Floats(repeating: table[k]), high)
    }
    let takeLow = Lane.lanes(x - low .< high - x)
    var index = Lane.select(takeLow, count &- 1, count)
    var value = Lane.select(takeLow, low, high)
    let top = Lane.lanes(x .>= Floats(repeating: table[15])) | Lane.lanes(x .!= x)
    index = Lane.select(top, Ints(repeating: 15), index)
    value = Lane.select(top, Floats(repeating: table[15]), value)
    let bottom = Lane.lanes(x .<= Floats(repeating: table[0]))
    index = Lane.select(bottom, Ints(repeating: 0), index)
    value = Lane.select(bottom, Floats(repeating: table[0]), value)
    return (index, value)
  }

  // MARK: MXFP4

  static func quantizeMXFP4(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    let values = NonLinearQuants.mxfp4Values.map(Float.init)
    for b in 0..<count / 32 {
      let xb = x + 32 * b
      let out = y + 17 * b
      let v = LegacyQuantsFast.load(xb)
      let amax = LegacyQuantsFast.absMax(v)
      let e: UInt8 =
        amax > 0 ? UInt8(truncatingIfNeeded: GGMLScalars.truncatedInt32(GGMLScalars.log2f(amax).rounded(.down) - 2 + 127)) : 0
      let d = GGMLScalars.e8m0Half(e)
      out.storeBytes(of: e, toByteOffset: 0, as: UInt8.self)
      // best_index_mxfp4 per lane: the first code with the least |value·d − x|.
      let codes = [v.0, v.1, v.2, v.3].map { vector in
        var bestIndex = Ints(repeating: 0)
        var bestError = QuantSearchLanes.magnitude(Floats(repeating: values[0] * d) - vector)
        for i in 1..<16 {
          let error = QuantSearchLanes.magnitude(Floats(repeating: values[i] * d) - vector)
          let better = QuantSearchLanes.lanes(error .< bestError)
          bestIndex = QuantSearchLanes.select(better, Ints(repeating: Int32(i)), bestIndex)
          bestError = QuantSearchLanes.select(better, error, bestError)
        }
        return bestIndex
      }
      for k in 0..<2 {
        let bytes = SIMD8<UInt8>(truncatingIfNeeded: codes[k] | (codes[k + 2] &<< 4))
        out.storeBytes(of: bytes, toByteOffset: 1 + 8 * k, as: SIMD8<UInt8>.self)
      }
    }
  }
}
