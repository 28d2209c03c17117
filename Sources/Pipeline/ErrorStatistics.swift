import Quantization
import TensorCore

/// The round-trip error statistics of a converted chunk in one SIMD pass, straight from the stored bytes.
///
/// `reference` and `approximation` are raw element buffers of F32, BF16 or F16 (any alignment, e.g. a
/// memory-mapped source next to an encoded output). Energies are summed in `Float` lanes over runs of at
/// most 1024 elements, then in `Double`, so they agree with the scalar `ErrorAccumulator.add` (which
/// sums every element in `Double`) to ~1e-6 relative; the maximum absolute error is exact.
enum ErrorStatistics {
  /// Dtypes the pass reads.
  static let dtypes: Set<DType> = [.float32, .bfloat16, .float16]

  /// The statistics of `approximation` against `reference`, `count` elements each.
  static func measure(
    reference: UnsafeRawBufferPointer, _ referenceDType: DType, approximation: UnsafeRawBufferPointer,
    _ approximationDType: DType, count: Int
  ) -> ErrorAccumulator {
    precondition(dtypes.contains(referenceDType) && dtypes.contains(approximationDType), "error statistics: dtype")
    precondition(
      reference.count >= count * (referenceDType.byteWidth ?? 0)
        && approximation.count >= count * (approximationDType.byteWidth ?? 0), "error statistics: buffer too small")
    guard count > 0, let r = reference.baseAddress, let a = approximation.baseAddress else { return ErrorAccumulator() }
    switch referenceDType {
    case .bfloat16: return measure(LoadBF16.self, r, approximationDType, a, count)
    case .float16: return measure(LoadF16.self, r, approximationDType, a, count)
    default: return measure(LoadF32.self, r, approximationDType, a, count)
    }
  }

  private static func measure<R: LaneLoader>(
    _: R.Type, _ r: UnsafeRawPointer, _ approximationDType: DType, _ a: UnsafeRawPointer, _ count: Int
  ) -> ErrorAccumulator {
    switch approximationDType {
    case .bfloat16: return accumulate(R.self, LoadBF16.self, r, a, count)
    case .float16: return accumulate(R.self, LoadF16.self, r, a, count)
    default: return accumulate(R.self, LoadF32.self, r, a, count)
    }
  }

  @inline(__always)
  private static func accumulate<R: LaneLoader, A: LaneLoader>(
    _: R.Type, _: A.Type, _ r: UnsafeRawPointer, _ a: UnsafeRawPointer, _ count: Int
  ) -> ErrorAccumulator {
    var signal: Double = 0
    var noise: Double = 0
    var worst = SIMD8<UInt32>(repeating: 0)
    let magnitude = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
    var index = 0
    let vectorEnd = count & ~7
    while index < vectorEnd {
      let runEnd = min(vectorEnd, index &+ 1024)
      var s = SIMD8<Float>(repeating: 0)
      var n = SIMD8<Float>(repeating: 0)
      while index < runEnd {
        let x = R.load8(r, index)
        let d = A.load8(a, index) - x
        s.addProduct(x, x)
        n.addProduct(d, d)
        // |d| as bits: for non-negative floats integer order is float order (NaN sorts above infinity).
        worst = pointwiseMax(worst, unsafeBitCast(d, to: SIMD8<UInt32>.self) & magnitude)
        index &+= 8
      }
      signal += Double(s.sum())
      noise += Double(n.sum())
    }
    var worstBits = worst.max()
    while index < count {
      let x = R.load(r, index)
      let d = A.load(a, index) - x
      signal += Double(x * x)
      noise += Double(d * d)
      worstBits = max(worstBits, d.bitPattern & 0x7FFF_FFFF)
      index &+= 1
    }
    return ErrorAccumulator(
      elementCount: count, signalEnergy: signal, errorEnergy: noise, maxAbsoluteError: Double(Float(bitPattern: worstBits)))
  }
}

/// Loads elements of one dtype as `Float` from raw, possibly unaligned bytes.
protocol LaneLoader {
  static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float
  static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float>
}

enum LoadF32: LaneLoader {
  @inline(__always) static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
    base.loadUnaligned(fromByteOffset: index &* 4, as: Float.self)
  }
  @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
    base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD8<Float>.self)
  }
}

enum LoadBF16: LaneLoader {
  @inline(__always) static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
    BFloat16.float(fromBits: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self))
  }
  @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
    let bits = base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self)
    return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: bits) &<< 16, to: SIMD8<Float>.self)
  }
}

enum LoadF16: LaneLoader {
  @inline(__always) static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
    Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)))
  }
  @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
    let bits = base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self)
    return SIMD8<Float>(unsafeBitCast(bits, to: SIMD8<Float16>.self))
  }
}
