import TensorCore

/// The largest `|x|` of F32/BF16/F16 elements as an F32 bit pattern (>= 0x7F800000 if any is NaN/inf).
public enum MagnitudeMaximum {
  public static func bits(_ source: UnsafeRawBufferPointer, _ dtype: DType, count: Int) -> UInt32 {
    guard count > 0, let base = source.baseAddress else { return 0 }
    switch dtype {
    case .bfloat16: return bits(LoadBF16.self, base, count)
    case .float16: return bits(LoadF16.self, base, count)
    default: return bits(LoadF32.self, base, count)
    }
  }

  private static func bits<L: LaneLoader>(_: L.Type, _ base: UnsafeRawPointer, _ count: Int) -> UInt32 {
    var lanes = SIMD8<UInt32>(repeating: 0)
    let magnitude = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
    var index = 0
    while index &+ 8 <= count {
      lanes = pointwiseMax(lanes, unsafeBitCast(L.load8(base, index), to: SIMD8<UInt32>.self) & magnitude)
      index &+= 8
    }
    var result = lanes.max()
    while index < count {
      result = max(result, L.load(base, index).bitPattern & 0x7FFF_FFFF)
      index &+= 1
    }
    return result
  }
}
