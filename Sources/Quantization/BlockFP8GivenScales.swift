import TensorCore

extension BlockFP8 {
  /// Quantizes `source` with caller-provided `scales` instead of computing them:
  /// `q = RNE(clamp(x / scale, ±448))`. Use it to re-quantize a fine-tuned or dequantized checkpoint onto the
  /// release's own scales (an exact FP8 -> F32 -> FP8 round trip for any scale, fixed point of `amax/448` or
  /// not), or to share scales between tensors. Elements above `448 · scale` saturate.
  ///
  /// - Throws: `.nonFiniteInput`, `.nonFiniteScale` / `.zeroScale` for an unusable scale,
  ///   `.unsupportedDType`, `.bufferSizeMismatch`.
  public static func quantize(
    _ source: UnsafeRawBufferPointer, dtype: DType, layout: FP8BlockLayout, givenScales scales: UnsafeBufferPointer<Float>,
    weights: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    try checkGivenScales(source, dtype: dtype, layout: layout, scales: scales, weights: weights)
    let rowMaxima = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: layout.rows * layout.scaleColumns)
    defer { rowMaxima.deallocate() }
    switch dtype {
    case .float32:
      try findRowMaxima(BlockFP8SourceF32.self, source, layout, into: rowMaxima)
      encodeRows(BlockFP8SourceF32.self, source, layout, scales, weights)
    case .bfloat16:
      try findRowMaxima(BlockFP8SourceBF16.self, source, layout, into: rowMaxima)
      encodeRows(BlockFP8SourceBF16.self, source, layout, scales, weights)
    default:
      try findRowMaxima(BlockFP8SourceF16.self, source, layout, into: rowMaxima)
      encodeRows(BlockFP8SourceF16.self, source, layout, scales, weights)
    }
  }

  /// Scalar reference for `quantize(_:dtype:layout:givenScales:weights:)`.
  public static func quantizeReference(
    _ source: UnsafeRawBufferPointer, dtype: DType, layout: FP8BlockLayout, givenScales scales: UnsafeBufferPointer<Float>,
    weights: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    try checkGivenScales(source, dtype: dtype, layout: layout, scales: scales, weights: weights)
    for index in 0..<layout.elementCount {
      let value = ElementCodec.decodeElementReference(source, at: index, dtype: dtype)
      if !value.isFinite {
        throw .nonFiniteInput(
          elementIndex: index, row: index / layout.columns, column: index % layout.columns, value: value)
      }
    }
    for row in 0..<layout.rows {
      for column in 0..<layout.columns {
        let index = row * layout.columns + column
        let scale = scales[(row / layout.blockRows) * layout.scaleColumns + column / layout.blockColumns]
        let value = ElementCodec.decodeElementReference(source, at: index, dtype: dtype)
        let scaled = min(max(value / scale, -Float8E4M3FN.maxFinite), Float8E4M3FN.maxFinite)
        weights[index] = Float8E4M3FN.bitsSaturatingReference(from: scaled)
      }
    }
  }

  static func checkGivenScales(
    _ source: UnsafeRawBufferPointer, dtype: DType, layout: FP8BlockLayout, scales: UnsafeBufferPointer<Float>,
    weights: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    guard sourceDTypes.contains(dtype) else { throw .unsupportedDType(dtype, operation: "fp8 quantization") }
    try checkSourceSize(source, dtype: dtype, layout: layout)
    try checkWeightsAndScales(weightByteCount: weights.count, scaleCount: scales.count, layout: layout)
    for (index, scale) in scales.enumerated() {
      if !scale.isFinite { throw .nonFiniteScale(scaleIndex: index, value: scale) }
      if scale == 0 { throw .zeroScale(scaleIndex: index) }
    }
  }
}
