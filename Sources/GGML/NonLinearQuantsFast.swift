/// Fast kernels for the table-based types: IQ4_NL searches eight blocks at once in SIMD lanes (each lane runs
/// `quantize_row_iq4_nl_impl`'s sequential sums for its block), MXFP4 picks codes eight elements at a time.
/// Both equal `NonLinearQuants`' scalar ports bit for bit.
enum NonLinearQuantsFast {
  typealias Floats = SIMD8<Float>
  typealias Ints = SIMD8<Int32>
  private typealias Lane = QuantSearchLanes

  // MARK: IQ4_NL

  /// Scratch of one row: transposed inputs and weights of eight blocks, their levels, the table broadcast.
  private struct IQ4NLScratch {
    let xs: UnsafeMutablePointer<Floats>
    let ws: UnsafeMutablePointer<Floats>
    let levels: UnsafeMutablePointer<Ints>
    let table: UnsafeMutablePointer<Floats>
  }

  /// `quantize_iq4_nl` (ntry 7): batches of eight blocks in lanes, the remainder scalar.
  static func quantizeIQ4_NL(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    let blocks = count / 32
    withUnsafeTemporaryAllocation(of: Floats.self, capacity: 3 * 32 + 16) { floats in
      withUnsafeTemporaryAllocation(of: Ints.self, capacity: 32) { ints in
        let base = floats.baseAddress!
        let scratch = IQ4NLScratch(xs: base, ws: base + 32, levels: ints.baseAddress!, table: base + 96)
        for k in 0..<16 { scratch.table[k] = Floats(repeating: Float(NonLinearQuants.iq4nlValues[k])) }
        var b = 0
        while b + 8 <= blocks {
          Lane.transpose(x + 32 * b, length: 32, into: scratch.xs)
          if let importance { Lane.transpose(importance + 32 * b, length: 32, into: scratch.ws) }
          iq4nlLanes(scratch, importance: importance != nil, into: y + 18 * b)
          b += 8
        }
        var L = [UInt8](repeating: 0, count: 32)
        while b < blocks {
          NonLinearQuants.iq4nlBlock(x + 32 * b, importance: importance.map { $0 + 32 * b }, tries: 7, levels: &L, into: y + 18 * b)
          b += 1
        }
      }
    }
  }

  /// Eight blocks of `quantize_row_iq4_nl_impl` (super-block = block = 32, ntry 7). With `importance`,
  /// `scratch.ws` holds the transposed importance and is overwritten with the weights.
  private static func iq4nlLanes(_ scratch: IQ4NLScratch, importance: Bool, into y: UnsafeMutableRawPointer) {
    let xs = scratch.xs
    let ws = scratch.ws
    let tries = 7
    var sigma2 = Lane.zeros
    for j in 0..<32 { sigma2 += xs[j] * xs[j] }
    sigma2 *= Floats(repeating: 2.0 / 32)
    for j in 0..<32 { ws[j] = importance ? ws[j] * (sigma2 + xs[j] * xs[j]).squareRoot() : xs[j] * xs[j] }
    let (amax, max) = Lane.signedMaximum(count: 32, xs)
    let zero = amax .< Floats(repeating: QuantSearch.groupMaxEpsilon)
    let v0 = Float(NonLinearQuants.iq4nlValues[0])
    var d = Lane.negated(max) / Floats(repeating: v0)
    var id = Floats(repeating: 1) / d
    var sumqx = Lane.zeros
    var sumq2 = Lane.zeros
    for j in 0..<32 {
      let q = nearestValue(id * xs[j], scratch.table).value
      sumqx += ws[j] * q * xs[j]
      sumq2 += ws[j] * q * q
    }
    let ratio: Floats = sumqx / sumq2
    d = Lane.select(sumq2 .> Lane.zeros, ratio, Lane.zeros)
    var best = d * sumqx
    for itry in -tries...tries {
      id = Floats(repeating: Float(itry + Int(NonLinearQuants.iq4nlValues[0]))) / max
      sumqx = Lane.zeros
      sumq2 = Lane.zeros
      for j in 0..<32 {
        let q = nearestValue(id * xs[j], scratch.table).value
        sumqx += ws[j] * q * xs[j]
        sumq2 += ws[j] * q * q
      }
      let gain: Floats = sumqx * sumqx
      let bar: Floats = best * sumq2
      let better = (sumq2 .> Lane.zeros) .& (gain .> bar)
      let candidate: Floats = sumqx / sumq2
      let candidateBest: Floats = candidate * sumqx
      d = Lane.select(better, candidate, d)
      best = Lane.select(better, candidateBest, best)
    }
    let scale = Lane.select(zero, Lane.zeros, d)
    let inverse = Lane.select(scale .!= Lane.zeros, Floats(repeating: 1) / scale, Lane.zeros)
    let levels = scratch.levels
    for j in 0..<32 { levels[j] = nearestValue(inverse * xs[j], scratch.table).index }
    for k in 0..<8 {
      let out = y + 18 * k
      out.storeHalf(GGMLScalars.halfBits(scale[k]), at: 0)
      for j in 0..<16 { out.storeBytes(of: UInt8(truncatingIfNeeded: levels[j][k] | levels[16 + j][k] << 4), toByteOffset: 2 + j, as: UInt8.self) }
    }
  }

  /// `best_index_int8(16, kvalues_iq4nl, x)` per lane, with the chosen table value (`table` holds the 16
  /// values broadcast). Between two entries the binary search ends on the bracketing pair
  /// `v[mu−1] ≤ x < v[mu]` with `mu` = the number of entries ≤ x; a NaN ends on the last entry.
  @inline(__always)
  static func nearestValue(_ x: Floats, _ table: UnsafePointer<Floats>) -> (index: Ints, value: Floats) {
    var count = Ints()
    var low = table[0]
    var high = table[15]
    let one = Ints(repeating: 1)
    for k in 0..<16 {
      let atOrBelow = x .>= table[k]
      count = count.replacing(with: count &+ one, where: atOrBelow)
      low = low.replacing(with: table[k], where: atOrBelow)
    }
    for k in stride(from: 15, through: 0, by: -1) {
      high = high.replacing(with: table[k], where: x .< table[k])
    }
    let below: Floats = x - low
    let above: Floats = high - x
    let takeLow = below .< above
    var index = count.replacing(with: count &- one, where: takeLow)
    var value = high.replacing(with: low, where: takeLow)
    let top = (x .>= table[15]) .| (x .!= x)
    index = index.replacing(with: Ints(repeating: 15), where: top)
    value = value.replacing(with: table[15], where: top)
    let bottom = x .<= table[0]
    index = index.replacing(with: Ints(), where: bottom)
    value = value.replacing(with: table[0], where: bottom)
    return (index, value)
  }

  // MARK: MXFP4

  static func quantizeMXFP4(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
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
      @inline(__always) func codes(_ vector: Floats) -> Ints {
        var bestIndex = Ints()
        var bestError = Lane.magnitude(Floats(repeating: Float(NonLinearQuants.mxfp4Values[0]) * d) - vector)
        for i in 1..<16 {
          let error = Lane.magnitude(Floats(repeating: Float(NonLinearQuants.mxfp4Values[i]) * d) - vector)
          let better = error .< bestError
          bestIndex = bestIndex.replacing(with: Ints(repeating: Int32(i)), where: better)
          bestError = bestError.replacing(with: error, where: better)
        }
        return bestIndex
      }
      let c0 = codes(v.0)
      let c1 = codes(v.1)
      let c2 = codes(v.2)
      let c3 = codes(v.3)
      out.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: c0 | (c2 &<< 4)), toByteOffset: 1, as: SIMD8<UInt8>.self)
      out.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: c1 | (c3 &<< 4)), toByteOffset: 9, as: SIMD8<UInt8>.self)
    }
  }
}
