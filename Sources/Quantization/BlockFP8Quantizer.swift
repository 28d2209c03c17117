import TensorCore

/// FP8 E4M3FN quantization of 2-D weights with block, channel or tensor scales, and dequantization.
///
/// Quantization, per block (edge blocks cropped to the real elements):
/// `amax = max |x|`, `scale = rule.scale(forAbsoluteMaximum: amax)` (normally `amax / 448` in F32),
/// `q = RNE(clamp(x / scale, ±448))` — a true F32 division by the scale exactly as stored (DeepSeek,
/// compressed-tensors), never a multiplication by a reciprocal. NaN or infinite inputs are reported, not
/// quantized. See `formats/fp8.md`.
///
/// Layouts are row-major: weights `[rows, columns]` as F8_E4M3 bytes, scales `[scaleRows, scaleColumns]` F32.
/// A tensor can be processed in row ranges that start on a block-row boundary (pass the sub-buffers and a
/// layout with the range's row count).
public enum BlockFP8 {
  /// Dtypes `quantize` reads.
  public static let sourceDTypes: Set<DType> = [.float32, .bfloat16, .float16]
  /// Dtypes `dequantize` writes.
  public static let outputDTypes: Set<DType> = [.float32, .bfloat16, .float16]

  /// Quantizes `source` (`layout.rows × layout.columns` elements of `dtype`: F32, BF16 or F16, any alignment)
  /// into E4M3FN `weights` (`elementCount` bytes) and F32 `scales` (`scaleCount`, already rounded to
  /// `rule.storageDType`). Multithreaded over rows; bit-identical to `quantizeReference`.
  ///
  /// - Throws: `.nonFiniteInput` for the first NaN/infinity in row-major order (the outputs are then
  ///   unspecified), `.unsupportedDType`, `.bufferSizeMismatch`.
  public static func quantize(
    _ source: UnsafeRawBufferPointer, dtype: DType, layout: FP8BlockLayout, rule: FP8ScaleRule = .deepSeek,
    weights: UnsafeMutableRawBufferPointer, scales: UnsafeMutableBufferPointer<Float>
  ) throws(QuantizationError) {
    try checkQuantize(source, dtype: dtype, layout: layout, rule: rule, weights: weights, scales: scales)
    switch dtype {
    case .float32:
      try quantize(BlockFP8SourceF32.self, source, layout, rule, weights, scales)
    case .bfloat16:
      try quantize(BlockFP8SourceBF16.self, source, layout, rule, weights, scales)
    default:
      try quantize(BlockFP8SourceF16.self, source, layout, rule, weights, scales)
    }
  }

  static func checkQuantize(
    _ source: UnsafeRawBufferPointer, dtype: DType, layout: FP8BlockLayout, rule: FP8ScaleRule,
    weights: UnsafeMutableRawBufferPointer, scales: UnsafeMutableBufferPointer<Float>
  ) throws(QuantizationError) {
    guard sourceDTypes.contains(dtype) else { throw .unsupportedDType(dtype, operation: "fp8 quantization") }
    guard [.float32, .bfloat16, .float16].contains(rule.storageDType) else {
      throw .unsupportedDType(rule.storageDType, operation: "fp8 scale storage")
    }
    try checkSourceSize(source, dtype: dtype, layout: layout)
    try checkWeightsAndScales(weightByteCount: weights.count, scaleCount: scales.count, layout: layout)
  }

  /// `source` holds `layout.elementCount` elements of `dtype` (one of `sourceDTypes`).
  static func checkSourceSize(_ source: UnsafeRawBufferPointer, dtype: DType, layout: FP8BlockLayout)
    throws(QuantizationError)
  {
    let (sourceBytes, overflow) = layout.elementCount.multipliedReportingOverflow(by: dtype.byteWidth ?? 0)
    guard !overflow, source.count == sourceBytes else {
      throw .bufferSizeMismatch(
        buffer: "fp8 quantizer source", expectedByteCount: overflow ? Int.max : sourceBytes,
        actualByteCount: source.count)
    }
  }

  /// The FP8 weights (one byte per element) and F32 scales (one per block) have the layout's sizes.
  static func checkWeightsAndScales(weightByteCount: Int, scaleCount: Int, layout: FP8BlockLayout)
    throws(QuantizationError)
  {
    guard weightByteCount == layout.elementCount else {
      throw .bufferSizeMismatch(
        buffer: "fp8 weights", expectedByteCount: layout.elementCount, actualByteCount: weightByteCount)
    }
    guard scaleCount == layout.scaleCount else {
      throw .bufferSizeMismatch(
        buffer: "fp8 scales", expectedByteCount: layout.scaleCount &* 4, actualByteCount: scaleCount &* 4)
    }
  }

  /// Two parallel passes over rows: (1) each row's |x| maximum per block column, kept as F32 bit patterns
  /// (for non-negative floats integer order is float order, and NaN/inf are the patterns >= 0x7F800000,
  /// so one integer max finds both); (2) after the scales are set, `x / scale` encoded 8 lanes at a time.
  static func quantize<S: BlockFP8Source>(
    _: S.Type, _ source: UnsafeRawBufferPointer, _ layout: FP8BlockLayout, _ rule: FP8ScaleRule,
    _ weights: UnsafeMutableRawBufferPointer, _ scales: UnsafeMutableBufferPointer<Float>
  ) throws(QuantizationError) {
    let rowMaxima = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: layout.rows * layout.scaleColumns)
    defer { rowMaxima.deallocate() }
    try findRowMaxima(S.self, source, layout, into: rowMaxima)
    let scaleColumns = layout.scaleColumns
    for scaleRow in 0..<layout.scaleRows {
      let firstRow = scaleRow * layout.blockRows
      let endRow = min(layout.rows, firstRow + layout.blockRows)
      for block in 0..<scaleColumns {
        var amax: UInt32 = 0
        for row in firstRow..<endRow { amax = max(amax, rowMaxima[row * scaleColumns + block]) }
        scales[scaleRow * scaleColumns + block] = rule.scale(forAbsoluteMaximum: Float(bitPattern: amax))
      }
    }
    encodeRows(S.self, source, layout, UnsafeBufferPointer(scales), weights)
  }

  /// Smallest row count worth a task: small tensors still split (and the tests exercise the split).
  static func minimumRowsPerTask(_ layout: FP8BlockLayout) -> Int { max(1, 8192 / layout.columns) }

  /// Pass 1: `rowMaxima[row * scaleColumns + block]` = largest |x| bit pattern of that row segment, in
  /// parallel; then reports the first non-finite element in row-major order.
  static func findRowMaxima<S: BlockFP8Source>(
    _: S.Type, _ source: UnsafeRawBufferPointer, _ layout: FP8BlockLayout,
    into rowMaxima: UnsafeMutableBufferPointer<UInt32>
  ) throws(QuantizationError) {
    guard let sourceBase = source.baseAddress else { return }
    let (columns, scaleColumns, blockColumns) = (layout.columns, layout.scaleColumns, layout.blockColumns)
    let input = SharedRawBuffer(source)
    let maxima = DisjointMutableBuffer(rowMaxima)
    Parallel.forEachChunk(count: layout.rows, minimumChunk: minimumRowsPerTask(layout)) { rowRange in
      guard let base = input.bytes.baseAddress, let out = maxima.buffer.baseAddress else { return }
      for row in rowRange {
        let rowBase = base + row &* columns &* S.byteWidth
        for block in 0..<scaleColumns {
          let start = block &* blockColumns
          let end = min(columns, start &+ blockColumns)
          out[row &* scaleColumns &+ block] = magnitudeMaximum(S.self, rowBase, start, end)
        }
      }
    }
    for row in 0..<layout.rows {
      for block in 0..<scaleColumns where rowMaxima[row * scaleColumns + block] >= 0x7F80_0000 {
        let rowBase = sourceBase + row * columns * S.byteWidth
        for column in 0..<columns where !S.load(rowBase, column).isFinite {
          throw .nonFiniteInput(
            elementIndex: row * columns + column, row: row, column: column, value: S.load(rowBase, column))
        }
      }
    }
  }

  /// Pass 2: `weights = E4M3(clamp(x / scale, ±448))` for every row, in parallel (inputs known finite,
  /// scales finite and non-zero).
  static func encodeRows<S: BlockFP8Source>(
    _: S.Type, _ source: UnsafeRawBufferPointer, _ layout: FP8BlockLayout, _ scales: UnsafeBufferPointer<Float>,
    _ weights: UnsafeMutableRawBufferPointer
  ) {
    guard let weightBase = weights.baseAddress else { return }
    let (columns, scaleColumns, blockColumns, blockRows) =
      (layout.columns, layout.scaleColumns, layout.blockColumns, layout.blockRows)
    let input = SharedRawBuffer(source)
    let output = DisjointMutableBuffer(
      UnsafeMutableBufferPointer(
        start: weightBase.bindMemory(to: UInt8.self, capacity: layout.elementCount), count: layout.elementCount))
    let scaleBuffer = SharedRawBuffer(UnsafeRawBufferPointer(scales))
    Parallel.forEachChunk(count: layout.rows, minimumChunk: minimumRowsPerTask(layout)) { rowRange in
      guard let base = input.bytes.baseAddress, let out = output.buffer.baseAddress,
        let scaleBase = scaleBuffer.bytes.baseAddress
      else { return }
      let blockScales = scaleBase.assumingMemoryBound(to: Float.self)
      for row in rowRange {
        let rowBase = base + row &* columns &* S.byteWidth
        let rowOut = out + row &* columns
        let scaleRowBase = blockScales + (row / blockRows) &* scaleColumns
        for block in 0..<scaleColumns {
          let start = block &* blockColumns
          let end = min(columns, start &+ blockColumns)
          encodeScaled(S.self, rowBase, rowOut, start, end, scale: scaleRowBase[block])
        }
      }
    }
  }
}

/// The largest `|x|` bit pattern of `row[start..<end]` (>= 0x7F800000 when any element is NaN or infinite).
@inline(__always)
func magnitudeMaximum<S: LaneLoader>(_: S.Type, _ row: UnsafeRawPointer, _ start: Int, _ end: Int) -> UInt32 {
  var lanes = SIMD8<UInt32>(repeating: 0)
  var column = start
  while column &+ 8 <= end {
    let bits = unsafeBitCast(S.load8(row, column), to: SIMD8<UInt32>.self) & 0x7FFF_FFFF
    lanes = pointwiseMax(lanes, bits)
    column &+= 8
  }
  var result = lanes.max()
  while column < end {
    result = max(result, S.load(row, column).bitPattern & 0x7FFF_FFFF)
    column &+= 1
  }
  return result
}

/// `out[c] = E4M3(clamp(row[c] / scale, ±448))` for `c` in `start..<end`.
@inline(__always)
func encodeScaled<S: BlockFP8Source>(
  _: S.Type, _ row: UnsafeRawPointer, _ out: UnsafeMutablePointer<UInt8>, _ start: Int, _ end: Int, scale: Float
) {
  let divisor = SIMD8<Float>(repeating: scale)
  var column = start
  while column &+ 8 <= end {
    let codes = Float8Kernel<Float8E4M3FN>.encodeSaturatingFinite(S.load8(row, column) / divisor)
    UnsafeMutableRawPointer(out + column).storeBytes(of: codes, as: SIMD8<UInt8>.self)
    column &+= 8
  }
  while column < end {
    out[column] = Float8Kernel<Float8E4M3FN>.encodeSaturating(S.load(row, column) / scale)
    column &+= 1
  }
}
