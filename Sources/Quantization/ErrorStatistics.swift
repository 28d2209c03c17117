import CMath
import TensorCore

/// How far a candidate (a converted, dequantized tensor) is from its reference, element by element: the one
/// statistic behind convert's round-trip report and validate's comparisons, so both print the same figures for
/// the same pair.
///
/// **Non-finite policy.** An element whose reference *or* candidate is NaN or infinite is counted in
/// `nonFiniteCount` (and in `elementCount`) and left out of every sum and maximum: the figures describe the
/// finite elements, and the count says how many were not (a quantizer refuses non-finite input; a cast
/// carries it and reports it; validation fails a candidate with any).
///
/// **Arithmetic.** Elements are widened to `Double` and their products summed in SIMD lanes (`Lanes`) over runs
/// of at most 1024 elements; every producer — the fused FP8 kernels, the byte-level pass over BF16/F16/F32
/// buffers, the F32 pass — uses the same lanes, so results differ only by `Double` summation order.
public struct ErrorStatistics: Sendable, Equatable {
  /// Elements compared (non-finite ones included).
  public private(set) var elementCount = 0
  /// `Σ ref²`.
  public private(set) var signalEnergy: Double = 0
  /// `Σ (cand − ref)²`.
  public private(set) var errorEnergy: Double = 0
  /// `Σ ref·cand`.
  public private(set) var crossEnergy: Double = 0
  /// `Σ cand²`.
  public private(set) var candidateEnergy: Double = 0
  /// `max |cand − ref|`.
  public private(set) var maxAbsoluteError: Double = 0
  /// `max |cand − ref| / |ref|` over elements whose reference is non-zero.
  public private(set) var maxRelativeError: Double = 0
  /// `max |ref|`.
  public private(set) var referenceMaxAbsolute: Double = 0
  /// Elements left out because the reference or the candidate is NaN or infinite.
  public private(set) var nonFiniteCount = 0

  public init() {}

  /// Dtypes the byte-level pass reads.
  public static let dtypes: Set<DType> = [.float32, .bfloat16, .float16]

  /// Signal-to-noise ratio in dB: `+inf` for an exact match (an all-zero pair included), `-inf` for an all-zero
  /// reference with a non-zero candidate.
  public var snrDecibels: Double {
    if errorEnergy == 0 { return .infinity }
    if signalEnergy == 0 { return -.infinity }
    return 10 * CMath.log10(signalEnergy / errorEnergy)
  }

  /// `Σ ref·cand / (‖ref‖·‖cand‖)`; 1 when both are all zero, 0 when only one is.
  public var cosineSimilarity: Double {
    if signalEnergy == 0 && candidateEnergy == 0 { return 1 }
    if signalEnergy == 0 || candidateEnergy == 0 { return 0 }
    return crossEnergy / (signalEnergy.squareRoot() * candidateEnergy.squareRoot())
  }

  /// `sqrt(Σ (cand − ref)² / n)` over the finite elements.
  public var rootMeanSquareError: Double {
    let finite = elementCount - nonFiniteCount
    return finite == 0 ? 0 : (errorEnergy / Double(finite)).squareRoot()
  }

  /// Merges another chunk's statistics.
  public mutating func merge(_ other: ErrorStatistics) {
    elementCount += other.elementCount
    signalEnergy += other.signalEnergy
    errorEnergy += other.errorEnergy
    crossEnergy += other.crossEnergy
    candidateEnergy += other.candidateEnergy
    maxAbsoluteError = max(maxAbsoluteError, other.maxAbsoluteError)
    maxRelativeError = max(maxRelativeError, other.maxRelativeError)
    referenceMaxAbsolute = max(referenceMaxAbsolute, other.referenceMaxAbsolute)
    nonFiniteCount += other.nonFiniteCount
  }

  /// Adds one run of lanes (at most 1024 elements' worth) and `count` elements.
  @inline(__always)
  public mutating func add(_ lanes: Lanes, count: Int) {
    elementCount += count
    signalEnergy += lanes.signal.sum()
    errorEnergy += lanes.noise.sum()
    crossEnergy += lanes.cross.sum()
    candidateEnergy += lanes.candidate.sum()
    maxAbsoluteError = max(maxAbsoluteError, Lanes.largestLane(lanes.worst))
    maxRelativeError = max(maxRelativeError, Lanes.largestLane(lanes.relative))
    referenceMaxAbsolute = max(referenceMaxAbsolute, Lanes.largestLane(lanes.peak))
  }

  /// Adds one element (the tails of runs, and the non-finite policy).
  @inline(__always)
  public mutating func add(reference r: Float, candidate c: Float) {
    elementCount += 1
    guard r.isFinite, c.isFinite else {
      nonFiniteCount += 1
      return
    }
    var lanes = Lanes()
    lanes.add(reference: SIMD8(r, 0, 0, 0, 0, 0, 0, 0), candidate: SIMD8(c, 0, 0, 0, 0, 0, 0, 0))
    add(lanes, count: 0)
  }

  /// Lane partial sums of one run: what every kernel accumulates per 8 elements. Elements are widened to
  /// `Double` before the products (as a scalar `Double` loop would), so the sums do not depend on how a tensor
  /// is cut into runs or chunks beyond `Double` rounding.
  public struct Lanes {
    var signal = SIMD8<Double>(repeating: 0)
    var noise = SIMD8<Double>(repeating: 0)
    var cross = SIMD8<Double>(repeating: 0)
    var candidate = SIMD8<Double>(repeating: 0)
    var worst = SIMD8<Double>(repeating: 0)
    var peak = SIMD8<Double>(repeating: 0)
    var relative = SIMD8<Double>(repeating: 0)

    public init() {}

    /// Eight (reference, candidate) pairs, unchecked (see `isFinite`).
    @inline(__always)
    public mutating func add(reference x: SIMD8<Float>, candidate y: SIMD8<Float>) {
      let r = Self.widened(x)
      let c = Self.widened(y)
      let d = c - r
      signal.addProduct(r, r)
      noise.addProduct(d, d)
      cross.addProduct(r, c)
      candidate.addProduct(c, c)
      let error = d.replacing(with: -d, where: d .< 0)
      let magnitude = r.replacing(with: -r, where: r .< 0)
      worst = Self.larger(worst, error)
      peak = Self.larger(peak, magnitude)
      relative = Self.larger(relative, (error / magnitude).replacing(with: 0, where: magnitude .== 0))
    }

    // The standard library's `pointwiseMax` and `SIMD8<Double>(_: SIMD8<Float>)` are generic and not inlined
    // here: out-of-line loops over lanes that took 60 % of an FP8 -> BF16 conversion's time. These are single
    // vector instructions. (`larger` drops a NaN `b` where `pointwiseMax` would keep `a` as well; a NaN input
    // makes the sums non-finite either way, which `isFinite` reports.)
    @inline(__always) static func larger(_ a: SIMD8<Double>, _ b: SIMD8<Double>) -> SIMD8<Double> {
      a.replacing(with: b, where: b .> a)
    }

    /// The largest lane, by halving (`SIMD.max()` is a generic out-of-line loop).
    @inline(__always) static func largestLane(_ v: SIMD8<Double>) -> Double {
      let four = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
      let two = four.lowHalf.replacing(with: four.highHalf, where: four.highHalf .> four.lowHalf)
      return two[1] > two[0] ? two[1] : two[0]
    }

    @inline(__always) static func widened(_ x: SIMD8<Float>) -> SIMD8<Double> {
      SIMD8<Double>(Double(x[0]), Double(x[1]), Double(x[2]), Double(x[3]), Double(x[4]), Double(x[5]), Double(x[6]), Double(x[7]))
    }

    /// Whether every pair added was finite (a NaN or infinity makes a sum non-finite).
    public var isFinite: Bool { (signal + noise + candidate + worst).sum().isFinite }
  }

  /// Scalar twin of the lane passes (same policy): every element's products in `Double`, one at a time. The
  /// lane passes agree with it to `Double` rounding in the sums and exactly in the maxima.
  public static func reference(reference: UnsafeBufferPointer<Float>, candidate: UnsafeBufferPointer<Float>) -> ErrorStatistics {
    precondition(reference.count == candidate.count, "error statistics: buffer lengths differ")
    var result = ErrorStatistics()
    result.elementCount = reference.count
    for i in 0..<reference.count {
      let x = reference[i], y = candidate[i]
      guard x.isFinite, y.isFinite else {
        result.nonFiniteCount += 1
        continue
      }
      let r = Double(x), c = Double(y), d = c - r
      result.signalEnergy += r * r
      result.errorEnergy += d * d
      result.crossEnergy += r * c
      result.candidateEnergy += c * c
      result.maxAbsoluteError = max(result.maxAbsoluteError, abs(d))
      result.referenceMaxAbsolute = max(result.referenceMaxAbsolute, abs(r))
      if x != 0 { result.maxRelativeError = max(result.maxRelativeError, abs(d) / abs(r)) }
    }
    return result
  }

  /// Convenience over arrays (the lane pass).
  public init(reference: [Float], candidate: [Float]) {
    self.init()
    reference.withUnsafeBufferPointer { r in candidate.withUnsafeBufferPointer { add(reference: r, candidate: $0) } }
  }

  // MARK: measuring

  /// Adds two equally long F32 buffers using every core: fixed 64 Ki-element blocks summed in order, so the
  /// result does not depend on the thread count.
  public mutating func addParallel(reference: UnsafeBufferPointer<Float>, candidate: UnsafeBufferPointer<Float>) {
    precondition(reference.count == candidate.count, "error statistics: buffer lengths differ")
    let blockSize = 65_536
    let blockCount = (reference.count + blockSize - 1) / blockSize
    guard blockCount > 1 else {
      add(reference: reference, candidate: candidate)
      return
    }
    var partials = [ErrorStatistics](repeating: ErrorStatistics(), count: blockCount)
    partials.withUnsafeMutableBufferPointer { slots in
      let output = DisjointMutableBuffer(slots)
      let r = SharedRawBuffer(UnsafeRawBufferPointer(reference))
      let c = SharedRawBuffer(UnsafeRawBufferPointer(candidate))
      Parallel.forEachChunk(count: blockCount) { blocks in
        let reference = r.bytes.assumingMemoryBound(to: Float.self)
        let candidate = c.bytes.assumingMemoryBound(to: Float.self)
        for block in blocks {
          let range = (block * blockSize)..<min(reference.count, (block + 1) * blockSize)
          var partial = ErrorStatistics()
          partial.add(
            reference: UnsafeBufferPointer(rebasing: reference[range]), candidate: UnsafeBufferPointer(rebasing: candidate[range]))
          output.buffer[block] = partial
        }
      }
    }
    for partial in partials { merge(partial) }
  }

  /// Adds `reference[i]` vs `candidate[i]` for every `i`.
  public mutating func add(reference: UnsafeBufferPointer<Float>, candidate: UnsafeBufferPointer<Float>) {
    precondition(reference.count == candidate.count, "error statistics: buffer lengths differ")
    guard let r = reference.baseAddress, let c = candidate.baseAddress else { return }
    accumulate(LoadF32.self, LoadF32.self, UnsafeRawPointer(r), UnsafeRawPointer(c), reference.count)
  }

  /// Adds `count` elements of raw F32/BF16/F16 buffers (any alignment, e.g. a mapped source against an encoded
  /// output).
  public mutating func add(
    reference: UnsafeRawBufferPointer, _ referenceDType: DType, candidate: UnsafeRawBufferPointer,
    _ candidateDType: DType, count: Int
  ) {
    precondition(Self.dtypes.contains(referenceDType) && Self.dtypes.contains(candidateDType), "error statistics: dtype")
    precondition(
      reference.count >= count * (referenceDType.byteWidth ?? 0) && candidate.count >= count * (candidateDType.byteWidth ?? 0),
      "error statistics: buffer too small")
    guard count > 0, let r = reference.baseAddress, let c = candidate.baseAddress else { return }
    switch referenceDType {
    case .bfloat16: add(LoadBF16.self, r, candidateDType, c, count)
    case .float16: add(LoadF16.self, r, candidateDType, c, count)
    default: add(LoadF32.self, r, candidateDType, c, count)
    }
  }

  private mutating func add<R: LaneLoader>(_: R.Type, _ r: UnsafeRawPointer, _ candidateDType: DType, _ c: UnsafeRawPointer, _ count: Int) {
    switch candidateDType {
    case .bfloat16: accumulate(R.self, LoadBF16.self, r, c, count)
    case .float16: accumulate(R.self, LoadF16.self, r, c, count)
    default: accumulate(R.self, LoadF32.self, r, c, count)
    }
  }

  @inline(__always)
  private mutating func accumulate<R: LaneLoader, C: LaneLoader>(
    _: R.Type, _: C.Type, _ r: UnsafeRawPointer, _ c: UnsafeRawPointer, _ count: Int
  ) {
    var index = 0
    let vectorEnd = count & ~7
    while index < vectorEnd {
      let runStart = index
      let runEnd = min(vectorEnd, index &+ 1024)
      var lanes = Lanes()
      while index < runEnd {
        lanes.add(reference: R.load8(r, index), candidate: C.load8(c, index))
        index &+= 8
      }
      if lanes.isFinite {
        add(lanes, count: runEnd - runStart)
      } else {
        for i in runStart..<runEnd { add(reference: R.load(r, i), candidate: C.load(c, i)) }
      }
    }
    while index < count {
      add(reference: R.load(r, index), candidate: C.load(c, index))
      index &+= 1
    }
  }
}

/// Loads elements of one dtype as `Float` from raw, possibly unaligned bytes.
public protocol LaneLoader {
  static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float
  static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float>
}

public enum LoadF32: LaneLoader {
  @inline(__always) public static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
    base.loadUnaligned(fromByteOffset: index &* 4, as: Float.self)
  }
  @inline(__always) public static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
    base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD8<Float>.self)
  }
}

public enum LoadBF16: LaneLoader {
  @inline(__always) public static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
    BFloat16.float(fromBits: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self))
  }
  @inline(__always) public static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
    let bits = base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self)
    return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: bits) &<< 16, to: SIMD8<Float>.self)
  }
}

public enum LoadF16: LaneLoader {
  @inline(__always) public static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
    Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)))
  }
  @inline(__always) public static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
    let bits = base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self)
    return SIMD8<Float>(unsafeBitCast(bits, to: SIMD8<Float16>.self))
  }
}
