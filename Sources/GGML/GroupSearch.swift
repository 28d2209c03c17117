/// Which implementation of ggml's per-group scale searches to run: the scalar port, or eight groups at a
/// time in SIMD lanes. Both give identical results; every quantizer that searches takes one, so the
/// reference and fast kernels of a type share all code but the search itself.
enum SearchKernel: Sendable {
  case scalar
  case lanes

  init(_ implementation: GGMLKernels.Implementation) {
    self = implementation == .fast ? .lanes : .scalar
  }
}

/// Runs a scale search over `groupCount` consecutive groups of `groupLength` floats: scalar group by group,
/// or eight groups per lane batch (a last, partial batch fills its spare lanes with a copy and discards
/// them). Owns the scratch vectors of one batch; not shared between threads.
final class GroupSearch {
  let kernel: SearchKernel
  let groupLength: Int
  /// Transposed inputs, weights, levels and scratch levels of one batch of eight groups.
  private let xs: UnsafeMutablePointer<QuantSearchLanes.Floats>
  private let ws: UnsafeMutablePointer<QuantSearchLanes.Floats>
  private let levels: UnsafeMutablePointer<QuantSearchLanes.Ints>
  private let scratch: UnsafeMutablePointer<QuantSearchLanes.Ints>
  private let scalarScratch: UnsafeMutablePointer<UInt8>

  init(_ kernel: SearchKernel, groupLength: Int) {
    self.kernel = kernel
    self.groupLength = groupLength
    xs = .allocate(capacity: groupLength)
    ws = .allocate(capacity: groupLength)
    levels = .allocate(capacity: groupLength)
    scratch = .allocate(capacity: groupLength)
    scalarScratch = .allocate(capacity: groupLength)
  }

  deinit {
    xs.deallocate()
    ws.deallocate()
    levels.deallocate()
    scratch.deallocate()
    scalarScratch.deallocate()
  }

  /// `make_qkx2_quants` / `make_qkx3_quants` for each group: `scales[g]`, `theMins[g]` and levels `L`
  /// (0...nmax, laid out like `x`).
  func affine(
    _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, groupCount: Int, maxLevel: Int,
    _ search: QuantSearch.AffineSearch, scales: UnsafeMutablePointer<Float>, theMins: UnsafeMutablePointer<Float>,
    levels L: UnsafeMutablePointer<UInt8>
  ) {
    let n = groupLength
    var g = 0
    if kernel == .lanes {
      while g < groupCount {
        let base = g * n
        let count = min(QuantSearchLanes.width, groupCount - g)
        QuantSearchLanes.transpose(x + base, count: count, length: n, into: xs)
        QuantSearchLanes.transpose(weights + base, count: count, length: n, into: ws)
        let (scale, theMin) = QuantSearchLanes.affineScale(
          count: n, maxLevel: maxLevel, xs, weights: ws, levels: levels, scratch: scratch, search)
        QuantSearchLanes.untranspose(levels, count: count, length: n, into: L + base)
        for k in 0..<count {
          scales[g + k] = scale[k]
          theMins[g + k] = theMin[k]
        }
        g += count
      }
    }
    while g < groupCount {
      (scales[g], theMins[g]) = QuantSearch.affineScale(
        count: n, maxLevel: maxLevel, x + g * n, weights: weights + g * n, levels: L + g * n, scratch: scalarScratch, search)
      g += 1
    }
  }

  /// `make_qx_quants(rmse_type 1)` for each group (weights nil: `x²`); levels `nmax + l` laid out like `x`.
  func symmetric(
    _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>?, groupCount: Int, maxLevel: Int,
    scales: UnsafeMutablePointer<Float>, levels L: UnsafeMutablePointer<Int8>
  ) {
    let n = groupLength
    var g = 0
    if kernel == .lanes {
      while g < groupCount {
        let base = g * n
        let count = min(QuantSearchLanes.width, groupCount - g)
        QuantSearchLanes.transpose(x + base, count: count, length: n, into: xs)
        if let weights { QuantSearchLanes.transpose(weights + base, count: count, length: n, into: ws) }
        let scale = QuantSearchLanes.symmetricScale(
          count: n, maxLevel: maxLevel, xs, levels: levels, scratch: scratch, weights: weights == nil ? nil : UnsafePointer(ws))
        untranspose(count, into: L + base)
        for k in 0..<count { scales[g + k] = scale[k] }
        g += count
      }
    }
    while g < groupCount {
      scales[g] = QuantSearch.symmetricScale(count: n, maxLevel: maxLevel, x + g * n, levels: L + g * n, weights: weights.map { $0 + g * n })
      g += 1
    }
  }

  /// `make_q3_quants(do_rmse)` for each group; levels `nmax + l` laid out like `x`.
  func q3(_ x: UnsafePointer<Float>, groupCount: Int, maxLevel: Int, scales: UnsafeMutablePointer<Float>, levels L: UnsafeMutablePointer<Int8>) {
    let n = groupLength
    var g = 0
    if kernel == .lanes {
      while g < groupCount {
        let base = g * n
        let count = min(QuantSearchLanes.width, groupCount - g)
        QuantSearchLanes.transpose(x + base, count: count, length: n, into: xs)
        let scale = QuantSearchLanes.q3Scale(count: n, maxLevel: maxLevel, xs, levels: levels)
        untranspose(count, into: L + base)
        for k in 0..<count { scales[g + k] = scale[k] }
        g += count
      }
    }
    while g < groupCount {
      scales[g] = QuantSearch.q3Scale(count: n, maxLevel: maxLevel, x + g * n, levels: L + g * n)
      g += 1
    }
  }

  /// The batch's first `count` groups of levels back into element order.
  private func untranspose(_ count: Int, into L: UnsafeMutablePointer<Int8>) {
    QuantSearchLanes.untranspose(levels, count: count, length: groupLength, into: L)
  }
}
