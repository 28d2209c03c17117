import TensorCore

extension BlockFP8 {
  /// Scalar reference for `quantize`: block by block, straight from the definition, single-threaded.
  public static func quantizeReference(
    _ source: UnsafeRawBufferPointer, dtype: DType, layout: FP8BlockLayout, rule: FP8ScaleRule = .deepSeek,
    weights: UnsafeMutableRawBufferPointer, scales: UnsafeMutableBufferPointer<Float>
  ) throws(QuantizationError) {
    try checkQuantize(source, dtype: dtype, layout: layout, rule: rule, weights: weights, scales: scales)
    func value(_ row: Int, _ column: Int) -> Float {
      ElementCodec.decodeElementReference(source, at: row * layout.columns + column, dtype: dtype)
    }
    for row in 0..<layout.rows {
      for column in 0..<layout.columns where !value(row, column).isFinite {
        throw .nonFiniteInput(
          elementIndex: row * layout.columns + column, row: row, column: column, value: value(row, column))
      }
    }
    for scaleRow in 0..<layout.scaleRows {
      for scaleColumn in 0..<layout.scaleColumns {
        let rowRange = scaleRow * layout.blockRows..<min(layout.rows, (scaleRow + 1) * layout.blockRows)
        let columnRange =
          scaleColumn * layout.blockColumns..<min(layout.columns, (scaleColumn + 1) * layout.blockColumns)
        var amax: Float = 0
        for row in rowRange {
          for column in columnRange { amax = max(amax, abs(value(row, column))) }
        }
        let scale = rule.scale(forAbsoluteMaximum: amax)
        scales[scaleRow * layout.scaleColumns + scaleColumn] = scale
        for row in rowRange {
          for column in columnRange {
            let scaled = min(max(value(row, column) / scale, -Float8E4M3FN.maxFinite), Float8E4M3FN.maxFinite)
            weights[row * layout.columns + column] = Float8E4M3FN.bitsSaturatingReference(from: scaled)
          }
        }
      }
    }
  }
}
