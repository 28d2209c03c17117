/// Eight of ggml's scale searches at once: lane `k` of every vector runs `QuantSearch`'s scalar algorithm on
/// the `k`-th of eight consecutive groups (the sub-blocks of a K-quant super-block, or eight 32-element
/// blocks of a row). Each lane keeps C's sequential order of operations, so the results equal the scalar
/// reference bit for bit; branches become lane masks (integer masks: `SIMDMask.replacing` compiles to a loop
/// through memory).
///
/// Inputs are transposed: `xs[i]` holds element `i` of each of the eight groups (`transpose`).
enum QuantSearchLanes {
  typealias Floats = SIMD8<Float>
  typealias Ints = SIMD8<Int32>

  /// `xs[i][k] = groups[k·length + i]` for eight groups of `length` floats.
  @inline(__always)
  static func transpose(_ groups: UnsafePointer<Float>, length: Int, into xs: UnsafeMutablePointer<Floats>) {
    for i in 0..<length {
      xs[i] = Floats(
        groups[i], groups[length + i], groups[2 * length + i], groups[3 * length + i], groups[4 * length + i],
        groups[5 * length + i], groups[6 * length + i], groups[7 * length + i])
    }
  }

  // MARK: lane helpers

  /// ggml's `nearest_int` per lane.
  @inline(__always)
  static func nearestInt(_ value: Floats) -> Ints {
    let bits = unsafeBitCast(value + 12_582_912, to: Ints.self)
    return (bits & 0x007F_FFFF) &- 0x0040_0000
  }

  @inline(__always)
  static func lanes(_ mask: SIMDMask<Ints>) -> Ints { unsafeBitCast(mask, to: Ints.self) }

  /// `mask ? a : b` per lane (mask lanes are all ones or zero).
  @inline(__always)
  static func select(_ mask: Ints, _ a: Floats, _ b: Floats) -> Floats {
    unsafeBitCast((unsafeBitCast(a, to: Ints.self) & mask) | (unsafeBitCast(b, to: Ints.self) & ~mask), to: Floats.self)
  }

  @inline(__always)
  static func select(_ mask: Ints, _ a: Ints, _ b: Ints) -> Ints { (a & mask) | (b & ~mask) }

  @inline(__always)
  static func clamp(_ value: Ints, _ low: Int32, _ high: Int32) -> Ints {
    let lower = Ints(repeating: low)
    let upper = Ints(repeating: high)
    let raised = select(lanes(value .< lower), lower, value)
    return select(lanes(raised .> upper), upper, raised)
  }

  @inline(__always)
  static func magnitude(_ value: Floats) -> Floats {
    unsafeBitCast(unsafeBitCast(value, to: Ints.self) & 0x7FFF_FFFF, to: Floats.self)
  }

  /// IEEE negation (a sign flip; SIMD's prefix `-` computes `0 − x`, which turns −0 into +0).
  @inline(__always)
  static func negated(_ value: Floats) -> Floats {
    unsafeBitCast(unsafeBitCast(value, to: SIMD8<UInt32>.self) ^ 0x8000_0000, to: Floats.self)
  }

  @inline(__always)
  static func any(_ mask: Ints) -> Bool { mask != Ints(repeating: 0) }

  @inline(__always)
  static func float(_ value: Ints) -> Floats { Floats(value) }

  // MARK: searches

  /// `QuantSearch.symmetricScale` (`make_qx_quants`, rmse_type 1) in eight lanes. `weights` nil means `x²`.
  /// `levels` gets `nmax + l` per element and lane; `scratch` needs `n` vectors.
  static func symmetricScale(
    count n: Int, maxLevel nmax: Int, _ xs: UnsafePointer<Floats>, levels L: UnsafeMutablePointer<Ints>,
    scratch: UnsafeMutablePointer<Ints>, weights ws: UnsafePointer<Floats>?
  ) -> Floats {
    var amax = Floats(repeating: 0)
    var max = Floats(repeating: 0)
    for i in 0..<n {
      let ax = magnitude(xs[i])
      let larger = lanes(ax .> amax)
      amax = select(larger, ax, amax)
      max = select(larger, xs[i], max)
    }
    let zero = lanes(amax .< QuantSearch.groupMaxEpsilon)
    let low = Int32(-nmax)
    let high = Int32(nmax - 1)
    let offset = Ints(repeating: Int32(nmax))
    var iscale = Floats(repeating: Float(-nmax)) / max
    var sumlx = Floats(repeating: 0)
    var suml2 = Floats(repeating: 0)
    for i in 0..<n {
      let l = clamp(nearestInt(iscale * xs[i]), low, high)
      L[i] = l &+ offset
      let w = ws?[i] ?? xs[i] * xs[i]
      let fl = float(l)
      sumlx += w * xs[i] * fl
      suml2 += w * fl * fl
    }
    var scale = select(lanes(suml2 .!= 0), sumlx / suml2, Floats(repeating: 0))
    var best = scale * sumlx
    let nmaxF = Float(nmax)
    for step in -9...9 where step != 0 {
      iscale = Floats(repeating: -(nmaxF + 0.1 * Float(step))) / max
      sumlx = Floats(repeating: 0)
      suml2 = Floats(repeating: 0)
      for i in 0..<n {
        let l = clamp(nearestInt(iscale * xs[i]), low, high)
        scratch[i] = l
        let w = ws?[i] ?? xs[i] * xs[i]
        let fl = float(l)
        sumlx += w * xs[i] * fl
        suml2 += w * fl * fl
      }
      let better = lanes(suml2 .> 0) & lanes(sumlx * sumlx .> best * suml2)
      if any(better) {
        for i in 0..<n { L[i] = select(better, scratch[i] &+ offset, L[i]) }
        let newScale = sumlx / suml2
        scale = select(better, newScale, scale)
        best = select(better, newScale * sumlx, best)
      }
    }
    if any(zero) {
      for i in 0..<n { L[i] = select(zero, Ints(repeating: 0), L[i]) }
      scale = select(zero, Floats(repeating: 0), scale)
    }
    return scale
  }

  /// `QuantSearch.q3Scale` (`make_q3_quants` with `do_rmse`) in eight lanes; a lane stops refining after a
  /// pass without changes, as the scalar loop breaks.
  static func q3Scale(count n: Int, maxLevel nmax: Int, _ xs: UnsafePointer<Floats>, levels L: UnsafeMutablePointer<Ints>)
    -> Floats
  {
    var amax = Floats(repeating: 0)
    var max = Floats(repeating: 0)
    for i in 0..<n {
      let ax = magnitude(xs[i])
      let larger = lanes(ax .> amax)
      amax = select(larger, ax, amax)
      max = select(larger, xs[i], max)
    }
    let zero = lanes(amax .< QuantSearch.groupMaxEpsilon)
    let low = Int32(-nmax)
    let high = Int32(nmax - 1)
    let iscale = Floats(repeating: Float(-nmax)) / max
    var sumlx = Floats(repeating: 0)
    var suml2 = Floats(repeating: 0)
    for i in 0..<n {
      let l = clamp(nearestInt(iscale * xs[i]), low, high)
      L[i] = l
      let w = xs[i] * xs[i]
      let fl = float(l)
      sumlx += w * xs[i] * fl
      suml2 += w * fl * fl
    }
    var active = ~zero
    for _ in 0..<5 {
      var changed = Ints(repeating: 0)
      for i in 0..<n {
        let w = xs[i] * xs[i]
        let current = float(L[i])
        let slx = sumlx - w * xs[i] * current
        let sl2 = suml2 - w * current * current
        let newL = clamp(nearestInt(xs[i] * sl2 / slx), low, high)
        let candidate = active & lanes(slx .> 0) & lanes(newL .!= L[i])
        guard any(candidate) else { continue }
        let fl = float(newL)
        let slxNew = slx + w * xs[i] * fl
        let sl2New = sl2 + w * fl * fl
        let accept = candidate & lanes(sl2New .> 0) & lanes(slxNew * slxNew * suml2 .> sumlx * sumlx * sl2New)
        L[i] = select(accept, newL, L[i])
        sumlx = select(accept, slxNew, sumlx)
        suml2 = select(accept, sl2New, suml2)
        changed |= accept
      }
      active &= changed
      if !any(active) { break }
    }
    let offset = Ints(repeating: Int32(nmax))
    for i in 0..<n { L[i] = select(zero, Ints(repeating: 0), L[i] &+ offset) }
    let scale = select(lanes(suml2 .> 0), sumlx / suml2, Floats(repeating: 0))
    return select(zero, Floats(repeating: 0), scale)
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
      min = select(lanes(xs[i] .< min), xs[i], min)
      max = select(lanes(xs[i] .> max), xs[i], max)
      sumW += ws[i]
      sumX += ws[i] * xs[i]
    }
    min = select(lanes(min .> 0), Floats(repeating: 0), min)
    let flat = lanes(max .<= min)
    let flatMin = min
    let top = Int32(nmax)
    let nmaxF = Float(nmax)
    var iscale = Floats(repeating: nmaxF) / (max - min)
    var scale = 1 / iscale
    var bestError = Floats(repeating: 0)
    for i in 0..<n {
      let l = clamp(nearestInt(iscale * (xs[i] - min)), 0, top)
      L[i] = l
      var diff = scale * float(l) + min - xs[i]
      diff = search.useMAD ? magnitude(diff) : diff * diff
      bestError += ws[i] * diff
    }
    for step in 0...search.steps {
      iscale = Floats(repeating: search.rmin + search.rdelta * Float(step) + nmaxF) / (max - min)
      var sumL = Floats(repeating: 0)
      var sumL2 = Floats(repeating: 0)
      var sumXL = Floats(repeating: 0)
      for i in 0..<n {
        let l = clamp(nearestInt(iscale * (xs[i] - min)), 0, top)
        Laux[i] = l
        let w = ws[i]
        let fl = float(l)
        sumL += w * fl
        sumL2 += w * fl * fl
        sumXL += w * fl * xs[i]
      }
      let D = sumW * sumL2 - sumL * sumL
      let solvable = lanes(D .> 0)
      guard any(solvable) else { continue }
      var thisScale = (sumW * sumXL - sumX * sumL) / D
      var thisMin = (sumL2 * sumX - sumL * sumXL) / D
      let positiveMin = lanes(thisMin .> 0)
      thisMin = select(positiveMin, Floats(repeating: 0), thisMin)
      thisScale = select(positiveMin, sumXL / sumL2, thisScale)
      var error = Floats(repeating: 0)
      for i in 0..<n {
        var diff = thisScale * float(Laux[i]) + thisMin - xs[i]
        diff = search.useMAD ? magnitude(diff) : diff * diff
        error += ws[i] * diff
      }
      let better = solvable & lanes(error .< bestError)
      guard any(better) else { continue }
      for i in 0..<n { L[i] = select(better, Laux[i], L[i]) }
      bestError = select(better, error, bestError)
      scale = select(better, thisScale, scale)
      min = select(better, thisMin, min)
    }
    if any(flat) {
      for i in 0..<n { L[i] = select(flat, Ints(repeating: 0), L[i]) }
      scale = select(flat, Floats(repeating: 0), scale)
      min = select(flat, flatMin, min)
    }
    return (scale, negated(min))
  }
}
