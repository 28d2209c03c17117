/// Eight of ggml's scale searches at once: lane `k` of every vector runs `QuantSearch`'s scalar algorithm on
/// the `k`-th of eight consecutive groups (the sub-blocks of K-quant super-blocks, or 32-element blocks of a
/// row). (Sixteen lanes, two AVX2 registers per vector, measured 1.3-1.6× slower for Q4_K / Q6_K: the
/// affine search keeps about a dozen vectors live and spills.) Each lane keeps C's sequential order of operations, so the results equal the scalar
/// reference bit for bit; branches become lane masks. (Codegen note, Swift 6.3 `-O -target-cpu haswell`:
/// comparisons of two vectors and `replacing(with: vector, where: mask)` compile to `vcmpps` / `vblendvps`;
/// bit-casting a `SIMDMask`, comparing with a scalar literal or the mutating `replace(with: scalar, ...)`
/// fall back to a per-lane loop through memory. Every constant below is therefore a vector.)
///
/// Inputs are transposed: `xs[i]` holds element `i` of each of the groups (`transpose`).
enum QuantSearchLanes {
  typealias Floats = SIMD8<Float>
  typealias Ints = SIMD8<Int32>
  /// Groups per batch.
  static let width = 8

  /// `xs[i][k] = groups[k·length + i]` for `count` (≤ 8) groups of `length` floats; lanes past `count`
  /// repeat group 0 (their results are discarded). Through memory as floats: inserting lanes into a vector one
  /// at a time costs a shuffle each.
  @inline(__always)
  static func transpose<V: SIMD>(_ groups: UnsafePointer<Float>, count: Int, length: Int, into xs: UnsafeMutablePointer<V>)
  where V.Scalar == Float {
    let lanes = V.scalarCount
    UnsafeMutableRawPointer(xs).withMemoryRebound(to: Float.self, capacity: length * lanes) { out in
      for k in 0..<lanes {
        let group = groups + (k < count ? k : 0) * length
        for i in 0..<length { out[i * lanes + k] = group[i] }
      }
    }
  }

  /// `out[k·length + i] = levels[i][k]` (truncated to a byte) for the first `count` lanes: `transpose` back.
  @inline(__always)
  static func untranspose<Code: FixedWidthInteger>(
    _ levels: UnsafeMutablePointer<Ints>, count: Int, length: Int, into out: UnsafeMutablePointer<Code>
  ) {
    UnsafeMutableRawPointer(levels).withMemoryRebound(to: Int32.self, capacity: length * width) { codes in
      for k in 0..<count {
        let group = out + k * length
        for i in 0..<length { group[i] = Code(truncatingIfNeeded: codes[i * width + k]) }
      }
    }
  }

  // MARK: lane helpers

  typealias Mask = SIMDMask<Ints>

  @inline(__always)
  static func nearestInt(_ value: Floats) -> Ints { value.laneNearestInt }

  /// `mask ? a : b` per lane.
  @inline(__always)
  static func select(_ mask: Mask, _ a: Floats, _ b: Floats) -> Floats { b.replacing(with: a, where: mask) }

  @inline(__always)
  static func select(_ mask: Mask, _ a: Ints, _ b: Ints) -> Ints { b.replacing(with: a, where: mask) }

  /// `MAX(low, MIN(high, value))` per lane.
  @inline(__always)
  static func clamp(_ value: Ints, _ low: Ints, _ high: Ints) -> Ints {
    let raised = value.replacing(with: low, where: value .< low)
    return raised.replacing(with: high, where: raised .> high)
  }

  @inline(__always)
  static func magnitude(_ value: Floats) -> Floats { value.laneMagnitude }

  @inline(__always)
  static func negated(_ value: Floats) -> Floats { value.laneNegated }

  @inline(__always)
  static func float(_ value: Ints) -> Floats { value.laneFloats }

  /// Computed, not stored: a stored static would cost a lazy-initialization check in every loop.
  @inline(__always) static var zeros: Floats { Floats() }
  @inline(__always) static var noLanes: Mask { Mask(repeating: false) }

  // MARK: searches

  /// The largest magnitude per lane and the signed value that first reached it (ggml's `if (ax > amax)` scan).
  @inline(__always)
  static func signedMaximum(count n: Int, _ xs: UnsafePointer<Floats>) -> (amax: Floats, max: Floats) {
    var amax = zeros
    var max = zeros
    for i in 0..<n {
      let ax = magnitude(xs[i])
      let larger = ax .> amax
      amax = select(larger, ax, amax)
      max = select(larger, xs[i], max)
    }
    return (amax, max)
  }

  /// `QuantSearch.symmetricScale` (`make_qx_quants`, rmse_type 1) in eight lanes. `weights` nil means `x²`.
  /// `levels` gets `nmax + l` per element and lane; `scratch` needs `n` vectors.
  static func symmetricScale(
    count n: Int, maxLevel nmax: Int, _ xs: UnsafePointer<Floats>, levels L: UnsafeMutablePointer<Ints>,
    scratch: UnsafeMutablePointer<Ints>, weights ws: UnsafePointer<Floats>?
  ) -> Floats {
    let (amax, max) = signedMaximum(count: n, xs)
    let zero = amax .< Floats(repeating: QuantSearch.groupMaxEpsilon)
    let low = Ints(repeating: Int32(-nmax))
    let high = Ints(repeating: Int32(nmax - 1))
    let offset = Ints(repeating: Int32(nmax))
    var iscale = Floats(repeating: Float(-nmax)) / max
    var sumlx = zeros
    var suml2 = zeros
    for i in 0..<n {
      let l = clamp(nearestInt(iscale * xs[i]), low, high)
      L[i] = l &+ offset
      let w = ws?[i] ?? xs[i] * xs[i]
      let fl = float(l)
      sumlx += w * xs[i] * fl
      suml2 += w * fl * fl
    }
    let ratio: Floats = sumlx / suml2
    var scale = select(suml2 .!= zeros, ratio, zeros)
    var best = scale * sumlx
    let nmaxF = Float(nmax)
    for step in -9...9 where step != 0 {
      iscale = Floats(repeating: -(nmaxF + 0.1 * Float(step))) / max
      sumlx = zeros
      suml2 = zeros
      for i in 0..<n {
        let l = clamp(nearestInt(iscale * xs[i]), low, high)
        scratch[i] = l
        let w = ws?[i] ?? xs[i] * xs[i]
        let fl = float(l)
        sumlx += w * xs[i] * fl
        suml2 += w * fl * fl
      }
      let gain: Floats = sumlx * sumlx
      let bar: Floats = best * suml2
      let better = (suml2 .> zeros) .& (gain .> bar)
      if any(better) {
        for i in 0..<n { L[i] = select(better, scratch[i] &+ offset, L[i]) }
        let newScale: Floats = sumlx / suml2
        let newBest: Floats = newScale * sumlx
        scale = select(better, newScale, scale)
        best = select(better, newBest, best)
      }
    }
    if any(zero) {
      for i in 0..<n { L[i] = select(zero, Ints(), L[i]) }
      scale = select(zero, zeros, scale)
    }
    return scale
  }

  /// `QuantSearch.q3Scale` (`make_q3_quants` with `do_rmse`) in eight lanes; a lane stops refining after a
  /// pass without changes, as the scalar loop breaks.
  static func q3Scale(count n: Int, maxLevel nmax: Int, _ xs: UnsafePointer<Floats>, levels L: UnsafeMutablePointer<Ints>)
    -> Floats
  {
    let (amax, max) = signedMaximum(count: n, xs)
    let zero = amax .< Floats(repeating: QuantSearch.groupMaxEpsilon)
    let low = Ints(repeating: Int32(-nmax))
    let high = Ints(repeating: Int32(nmax - 1))
    let iscale = Floats(repeating: Float(-nmax)) / max
    var sumlx = zeros
    var suml2 = zeros
    for i in 0..<n {
      let l = clamp(nearestInt(iscale * xs[i]), low, high)
      L[i] = l
      let w = xs[i] * xs[i]
      let fl = float(l)
      sumlx += w * xs[i] * fl
      suml2 += w * fl * fl
    }
    var active = .!zero
    for _ in 0..<5 {
      var changed = noLanes
      for i in 0..<n {
        let w = xs[i] * xs[i]
        let current = float(L[i])
        let slx = sumlx - w * xs[i] * current
        let sl2 = suml2 - w * current * current
        let newL = clamp(nearestInt(xs[i] * sl2 / slx), low, high)
        let candidate = active .& (slx .> zeros) .& (newL .!= L[i])
        guard any(candidate) else { continue }
        let fl = float(newL)
        let slxNew = slx + w * xs[i] * fl
        let sl2New = sl2 + w * fl * fl
        let gain: Floats = slxNew * slxNew * suml2
        let bar: Floats = sumlx * sumlx * sl2New
        let accept = candidate .& (sl2New .> zeros) .& (gain .> bar)
        L[i] = select(accept, newL, L[i])
        sumlx = select(accept, slxNew, sumlx)
        suml2 = select(accept, sl2New, suml2)
        changed = changed .| accept
      }
      active = active .& changed
      if !any(active) { break }
    }
    let offset = Ints(repeating: Int32(nmax))
    for i in 0..<n { L[i] = select(zero, Ints(), L[i] &+ offset) }
    let ratio: Floats = sumlx / suml2
    let scale = select(suml2 .> zeros, ratio, zeros)
    return select(zero, zeros, scale)
  }

  /// `QuantSearch.affineScale` (`make_qkx2_quants` / `make_qkx3_quants`) in eight lanes. Returns the scale and
  /// `theMin` (−min) per lane; `levels` gets `0...nmax`, `scratch` needs `n` vectors.
  static func affineScale(
    count n: Int, maxLevel nmax: Int, _ xs: UnsafePointer<Floats>, weights ws: UnsafePointer<Floats>,
    levels L: UnsafeMutablePointer<Ints>, scratch Laux: UnsafeMutablePointer<Ints>, _ search: QuantSearch.AffineSearch
  ) -> (scale: Floats, theMin: Floats) {
    var min = xs[0]
    var max = xs[0]
    var sumW = ws[0]
    var sumX = sumW * xs[0]
    for i in 1..<n {
      min = select(xs[i] .< min, xs[i], min)
      max = select(xs[i] .> max, xs[i], max)
      sumW += ws[i]
      sumX += ws[i] * xs[i]
    }
    min = select(min .> zeros, zeros, min)
    let flat = max .<= min
    let flatMin = min
    let bottom = Ints()
    let top = Ints(repeating: Int32(nmax))
    let nmaxF = Float(nmax)
    var iscale = Floats(repeating: nmaxF) / (max - min)
    var scale = Floats(repeating: 1) / iscale
    var bestError = zeros
    for i in 0..<n {
      let l = clamp(nearestInt(iscale * (xs[i] - min)), bottom, top)
      L[i] = l
      var diff = scale * float(l) + min - xs[i]
      diff = search.useMAD ? magnitude(diff) : diff * diff
      bestError += ws[i] * diff
    }
    for step in 0...search.steps {
      iscale = Floats(repeating: search.rmin + search.rdelta * Float(step) + nmaxF) / (max - min)
      var sumL = zeros
      var sumL2 = zeros
      var sumXL = zeros
      for i in 0..<n {
        let l = clamp(nearestInt(iscale * (xs[i] - min)), bottom, top)
        Laux[i] = l
        let w = ws[i]
        let fl = float(l)
        sumL += w * fl
        sumL2 += w * fl * fl
        sumXL += w * fl * xs[i]
      }
      let D: Floats = sumW * sumL2 - sumL * sumL
      let solvable = D .> zeros
      guard any(solvable) else { continue }
      let scaleNumerator: Floats = sumW * sumXL - sumX * sumL
      let minNumerator: Floats = sumL2 * sumX - sumL * sumXL
      var thisScale = scaleNumerator / D
      var thisMin = minNumerator / D
      let positiveMin = thisMin .> zeros
      thisMin = select(positiveMin, zeros, thisMin)
      let noMinScale: Floats = sumXL / sumL2
      thisScale = select(positiveMin, noMinScale, thisScale)
      var error = zeros
      for i in 0..<n {
        var diff = thisScale * float(Laux[i]) + thisMin - xs[i]
        diff = search.useMAD ? magnitude(diff) : diff * diff
        error += ws[i] * diff
      }
      let better = solvable .& (error .< bestError)
      guard any(better) else { continue }
      for i in 0..<n { L[i] = select(better, Laux[i], L[i]) }
      bestError = select(better, error, bestError)
      scale = select(better, thisScale, scale)
      min = select(better, thisMin, min)
    }
    if any(flat) {
      for i in 0..<n { L[i] = select(flat, bottom, L[i]) }
      scale = select(flat, zeros, scale)
      min = select(flat, flatMin, min)
    }
    return (scale, negated(min))
  }
}
