import TensorCore

extension BlockFP8 {
  /// Scalar reference for `dequantize`: element by element, `Float(q) * scale` rounded by the reference
  /// encoders, single-threaded.
  public static func dequantizeReference(
    _ weights: UnsafeRawBufferPointer, scales: UnsafeBufferPointer<Float>, layout: FP8BlockLayout,
    to dtype: DType, into destination: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    try checkDequantize(weights, scales: scales, layout: layout, to: dtype, into: destination)
    for row in 0..<layout.rows {
      for column in 0..<layout.columns {
        let index = row * layout.columns + column
        let scale = scales[(row / layout.blockRows) * layout.scaleColumns + column / layout.blockColumns]
        let value = Float8E4M3FN.float(fromBits: weights[index]) * scale
        ElementCodec.encodeElementReference(value, at: index, dtype: dtype, into: destination)
      }
    }
  }
}
