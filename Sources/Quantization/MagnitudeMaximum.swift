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
    magnitudeMaximum(L.self, base, 0, count)
  }
}
