/// The scale searches of ggml-quants.c, ported statement for statement (same operand order, same float
/// types, same integer truncations), so results match bit for bit. These are the scalar references; the fast
/// kernels run the same arithmetic on several sub-blocks at once in SIMD lanes (`QuantSearchLanes`).
enum QuantSearch {
  /// `GROUP_MAX_EPS`: a group whose largest magnitude is below it counts as all zero.
  static let groupMaxEpsilon: Float = 1e-15

  /// `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw)`: a symmetric scale for `L = nmax + round(x/scale)` in
  /// `0 ..< 2·nmax`, searched over 18 candidate scales; weights `qw`, or `x²` when nil. Returns the scale.
  static func symmetricScale(
    count n: Int, maxLevel nmax: Int, _ x: UnsafePointer<Float>, levels L: UnsafeMutablePointer<Int8>,
    weights qw: UnsafePointer<Float>?
  ) -> Float {
    var max: Float = 0
    var amax: Float = 0
    for i in 0..<n {
      let ax = abs(x[i])
      if ax > amax {
        amax = ax
        max = x[i]
      }
    }
    if amax < groupMaxEpsilon {
      for i in 0..<n { L[i] = 0 }
      return 0
    }
    let nmaxF = Float(nmax)
    var iscale = Float(-nmax) / max
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
      var l = Int(GGMLScalars.nearestInt(iscale * x[i]))
      l = Swift.max(-nmax, Swift.min(nmax - 1, l))
      L[i] = Int8(truncatingIfNeeded: l + nmax)
      let w = qw?[i] ?? x[i] * x[i]
      sumlx += w * x[i] * Float(l)
      suml2 += w * Float(l) * Float(l)
    }
    var scale = suml2 != 0 ? sumlx / suml2 : 0
    var best = scale * sumlx
    for step in -9...9 where step != 0 {
      iscale = -(nmaxF + 0.1 * Float(step)) / max
      sumlx = 0
      suml2 = 0
      for i in 0..<n {
        var l = Int(GGMLScalars.nearestInt(iscale * x[i]))
        l = Swift.max(-nmax, Swift.min(nmax - 1, l))
        let w = qw?[i] ?? x[i] * x[i]
        sumlx += w * x[i] * Float(l)
        suml2 += w * Float(l) * Float(l)
      }
      if suml2 > 0 && sumlx * sumlx > best * suml2 {
        for i in 0..<n {
          let l = Int(GGMLScalars.nearestInt(iscale * x[i]))
          L[i] = Int8(truncatingIfNeeded: nmax + Swift.max(-nmax, Swift.min(nmax - 1, l)))
        }
        scale = sumlx / suml2
        best = scale * sumlx
      }
    }
    return scale
  }

  /// `make_q3_quants(n, nmax, x, L, do_rmse = true)`: Q3_K's reference scale, refined element by element
  /// (up to five passes) with `x²` weights. `L` ends in `0 ..< 2·nmax`.
  static func q3Scale(count n: Int, maxLevel nmax: Int, _ x: UnsafePointer<Float>, levels L: UnsafeMutablePointer<Int8>)
    -> Float
  {
    var max: Float = 0
    var amax: Float = 0
    for i in 0..<n {
      let ax = abs(x[i])
      if ax > amax {
        amax = ax
        max = x[i]
      }
    }
    if amax < groupMaxEpsilon {
      for i in 0..<n { L[i] = 0 }
      return 0
    }
    let iscale = Float(-nmax) / max
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
      var l = Int(GGMLScalars.nearestInt(iscale * x[i]))
      l = Swift.max(-nmax, Swift.min(nmax - 1, l))
      L[i] = Int8(truncatingIfNeeded: l)
      let w = x[i] * x[i]
      sumlx += w * x[i] * Float(l)
      suml2 += w * Float(l) * Float(l)
    }
    for _ in 0..<5 {
      var changed = 0
      for i in 0..<n {
        let w = x[i] * x[i]
        var slx = sumlx - w * x[i] * Float(L[i])
        if slx > 0 {
          var sl2 = suml2 - w * Float(L[i]) * Float(L[i])
          var newL = Int(GGMLScalars.nearestInt(x[i] * sl2 / slx))
          newL = Swift.max(-nmax, Swift.min(nmax - 1, newL))
          if newL != Int(L[i]) {
            slx += w * x[i] * Float(newL)
            sl2 += w * Float(newL) * Float(newL)
            if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
              L[i] = Int8(truncatingIfNeeded: newL)
              sumlx = slx
              suml2 = sl2
              changed += 1
            }
          }
        }
      }
      if changed == 0 { break }
    }
    for i in 0..<n { L[i] = L[i] &+ Int8(truncatingIfNeeded: nmax) }
    return suml2 > 0 ? sumlx / suml2 : 0
  }

  /// The parameters of ggml's asymmetric (scale + min) searches `make_qkx2_quants` / `make_qkx3_quants`.
  struct AffineSearch {
    var rmin: Float
    var rdelta: Float
    var steps: Int
    var useMAD: Bool
  }

  /// `make_qkx2_quants` / `make_qkx3_quants` (with weights): levels `L` in `0...nmax` for
  /// `x ≈ scale·L − theMin`; tries `steps + 1` candidate scales and keeps the least weighted error. (The two
  /// differ only in the flat-group test, `max == min` against `max <= min`, which agree for finite input.)
  /// Returns `(scale, theMin)` where `theMin = −min ≥ 0`.
  static func affineScale(
    count n: Int, maxLevel nmax: Int, _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>,
    levels L: UnsafeMutablePointer<UInt8>, scratch Laux: UnsafeMutablePointer<UInt8>, _ search: AffineSearch
  ) -> (scale: Float, theMin: Float) {
    var min = x[0]
    var max = x[0]
    var sumW = weights[0]
    var sumX = sumW * x[0]
    for i in 1..<n {
      if x[i] < min { min = x[i] }
      if x[i] > max { max = x[i] }
      let w = weights[i]
      sumW += w
      sumX += w * x[i]
    }
    if min > 0 { min = 0 }
    if max <= min {
      for i in 0..<n { L[i] = 0 }
      return (0, -min)
    }
    let nmaxF = Float(nmax)
    var iscale = nmaxF / (max - min)
    var scale = 1 / iscale
    var bestError: Float = 0
    for i in 0..<n {
      let l = Int(GGMLScalars.nearestInt(iscale * (x[i] - min)))
      L[i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, l)))
      var diff = scale * Float(L[i]) + min - x[i]
      diff = search.useMAD ? abs(diff) : diff * diff
      bestError += weights[i] * diff
    }
    if search.steps < 1 { return (scale, -min) }
    for step in 0...search.steps {
      iscale = (search.rmin + search.rdelta * Float(step) + nmaxF) / (max - min)
      var sumL: Float = 0
      var sumL2: Float = 0
      var sumXL: Float = 0
      for i in 0..<n {
        var l = Int(GGMLScalars.nearestInt(iscale * (x[i] - min)))
        l = Swift.max(0, Swift.min(nmax, l))
        Laux[i] = UInt8(truncatingIfNeeded: l)
        let w = weights[i]
        sumL += w * Float(l)
        sumL2 += w * Float(l) * Float(l)
        sumXL += w * Float(l) * x[i]
      }
      let D = sumW * sumL2 - sumL * sumL
      if D > 0 {
        var thisScale = (sumW * sumXL - sumX * sumL) / D
        var thisMin = (sumL2 * sumX - sumL * sumXL) / D
        if thisMin > 0 {
          thisMin = 0
          thisScale = sumXL / sumL2
        }
        var error: Float = 0
        for i in 0..<n {
          var diff = thisScale * Float(Laux[i]) + thisMin - x[i]
          diff = search.useMAD ? abs(diff) : diff * diff
          error += weights[i] * diff
        }
        if error < bestError {
          for i in 0..<n { L[i] = Laux[i] }
          bestError = error
          scale = thisScale
          min = thisMin
        }
      }
    }
    return (scale, -min)
  }

  /// `make_qp_quants(n, nmax, x, L, quant_weights)`: a positive scale for the sub-block scales (or mins)
  /// of a K-quant super-block under an importance matrix. `L` in `0...nmax` (as ggml stores it in `uint8_t`).
  static func positiveScale(
    count n: Int, maxLevel nmax: Int, _ x: UnsafePointer<Float>, levels L: UnsafeMutablePointer<UInt8>,
    weights: UnsafePointer<Float>
  ) -> Float {
    var max: Float = 0
    for i in 0..<n { max = max > x[i] ? max : x[i] }  // MAX(max, x[i])
    if max < groupMaxEpsilon {
      for i in 0..<n { L[i] = 0 }
      return 0
    }
    let nmaxF = Float(nmax)
    var iscale = nmaxF / max
    for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: GGMLScalars.nearestInt(iscale * x[i])) }
    let scale = 1 / iscale
    var bestMSE: Float = 0
    for i in 0..<n {
      let diff = x[i] - scale * Float(L[i])
      bestMSE += weights[i] * diff * diff
    }
    for step in -4...4 where step != 0 {
      let iscaleStep = (0.1 * Float(step) + nmaxF) / max
      let scaleStep = 1 / iscaleStep
      var mse: Float = 0
      for i in 0..<n {
        let l = Swift.min(nmax, Int(GGMLScalars.nearestInt(iscaleStep * x[i])))
        let diff = x[i] - scaleStep * Float(l)
        mse += weights[i] * diff * diff
      }
      if mse < bestMSE {
        bestMSE = mse
        iscale = iscaleStep
      }
    }
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
      let l = Swift.min(nmax, Int(GGMLScalars.nearestInt(iscale * x[i])))
      L[i] = UInt8(truncatingIfNeeded: l)
      let w = weights[i]
      sumlx += w * x[i] * Float(l)
      suml2 += w * Float(l) * Float(l)
    }
    for _ in 0..<5 {
      var changed = 0
      for i in 0..<n {
        let w = weights[i]
        var slx = sumlx - w * x[i] * Float(L[i])
        var sl2 = suml2 - w * Float(L[i]) * Float(L[i])
        if slx > 0 && sl2 > 0 {
          let newL = Swift.min(nmax, Int(GGMLScalars.nearestInt(x[i] * sl2 / slx)))
          if newL != Int(L[i]) {
            slx += w * x[i] * Float(newL)
            sl2 += w * Float(newL) * Float(newL)
            if slx * slx * suml2 > sumlx * sumlx * sl2 {
              L[i] = UInt8(truncatingIfNeeded: newL)
              sumlx = slx
              suml2 = sl2
              changed += 1
            }
          }
        }
      }
      if changed == 0 { break }
    }
    return suml2 > 0 ? sumlx / suml2 : 0
  }

  /// `sqrtf(sigma2 + x²)·qw`: the weight the importance-matrix paths give each element.
  @inline(__always)
  static func importanceWeight(_ qw: Float, sigma2: Float, _ x: Float) -> Float {
    qw * (sigma2 + x * x).squareRoot()
  }
}
