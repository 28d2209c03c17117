/// ggml's scalar helpers lane by lane, for any float vector width (`SIMD8<Float>` in the elementwise kernels,
/// `SIMD16<Float>` in the lane searches). Always inlined, so they compile for the concrete width.
extension SIMD where Scalar == Float, MaskStorage.Scalar == Int32 {
  /// `fabsf` per lane (clears the sign bit).
  @inline(__always)
  var laneMagnitude: Self {
    unsafeBitCast(unsafeBitCast(self, to: MaskStorage.self) & MaskStorage(repeating: 0x7FFF_FFFF), to: Self.self)
  }

  /// IEEE negation (a sign flip; SIMD's prefix `-` computes `0 − x`, which turns −0 into +0).
  @inline(__always)
  var laneNegated: Self {
    unsafeBitCast(unsafeBitCast(self, to: MaskStorage.self) ^ MaskStorage(repeating: Int32.min), to: Self.self)
  }

  /// ggml's `nearest_int` per lane (`+12582912`, read back as bits: ties to even).
  @inline(__always)
  var laneNearestInt: MaskStorage {
    let bits = unsafeBitCast(self + Self(repeating: 12_582_912), to: MaskStorage.self)
    return (bits & MaskStorage(repeating: 0x007F_FFFF)) &- MaskStorage(repeating: 0x0040_0000)
  }
}

extension SIMD8 where Scalar == Int32 {
  /// `Float(x)` per lane, one vector conversion. (`SIMD8<Float>(_: SIMD8<Int32>)` is the standard library's
  /// generic initializer, not specialized here: an out-of-line loop over lanes that took 12 % of a Q4_K_M
  /// conversion.) Exact for every code a quantizer produces; rounds to nearest like `Float(_:)` beyond 2^24.
  @inline(__always)
  var laneFloats: SIMD8<Float> {
    SIMD8<Float>(
      Float(self[0]), Float(self[1]), Float(self[2]), Float(self[3]), Float(self[4]), Float(self[5]), Float(self[6]),
      Float(self[7]))
  }
}
