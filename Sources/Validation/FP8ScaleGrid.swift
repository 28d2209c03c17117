import Quantization

/// Works out how an FP8 weight's scales are laid out from the scale tensor's shape.
enum FP8ScaleGrid {
  /// The scheme of a `[rows, columns]` FP8 weight whose scale tensor has shape `scaleShape`:
  /// `[]`/`[1]`/`[1, 1]` → tensor (unless a configured block covers the whole weight), `[rows, 1]` → channel
  /// (when no block size says otherwise), `[sr, sc]` → blocks whose size comes from `configuredBlock`
  /// (`weight_block_size`), else 128, else the exact quotient — whichever gives `ceil(rows/br) == sr` and
  /// `ceil(columns/bc) == sc`.
  static func scheme(
    rows: Int, columns: Int, scaleShape: [Int], scaleTensor: String, configuredBlock: [Int]?
  ) throws(ValidationError) -> FP8Scheme {
    let elementCount = scaleShape.reduce(1, *)
    if elementCount == 1 && scaleShape.count <= 2 {
      return .tensor
    }
    guard scaleShape.count == 2 else {
      throw .badShape(
        tensor: scaleTensor, shape: scaleShape, expected: "[1], [\(rows), 1] or a 2-D block grid for a [\(rows), \(columns)] weight")
    }
    let scaleRows = scaleShape[0], scaleColumns = scaleShape[1]
    func blockSize(extent: Int, count: Int, configured: Int?) -> Int? {
      var candidates: [Int] = []
      if let configured { candidates.append(configured) }
      candidates.append(128)
      if count > 0, extent % count == 0 { candidates.append(extent / count) }
      return candidates.first { $0 > 0 && (extent - 1) / $0 + 1 == count }
    }
    let configuredRows = configuredBlock.flatMap { $0.count == 2 ? $0[0] : nil }
    let configuredColumns = configuredBlock.flatMap { $0.count == 2 ? $0[1] : nil }
    if scaleColumns == 1, scaleRows == rows, configuredBlock == nil || configuredRows == 1 {
      return .channel
    }
    guard let blockRows = blockSize(extent: rows, count: scaleRows, configured: configuredRows),
      let blockColumns = blockSize(extent: columns, count: scaleColumns, configured: configuredColumns)
    else {
      throw .badShape(
        tensor: scaleTensor, shape: scaleShape,
        expected: "a block grid [ceil(\(rows)/br), ceil(\(columns)/bc)] (block size from weight_block_size or 128)")
    }
    return .block(rows: blockRows, columns: blockColumns)
  }
}
