import TensorCore

extension BlockFP8 {
  /// Dequantizes E4M3FN `weights` (`layout.elementCount` bytes) with F32 `scales` (`layout.scaleCount`) into
  /// `destination` as F32, BF16 or F16 (`elementCount` elements, any alignment).
  ///
  /// Each element is `Float(q) * scale` in F32 — DeepSeek's `weight_dequant` — then rounded to the output
  /// dtype (RNE). Edge blocks are cropped. Multithreaded over rows; bit-identical to `dequantizeReference`.
  /// The inner loop decodes eight codes with integer SIMD (no table lookups).
  ///
  /// - Throws: `.nonFiniteScale` for a NaN/infinite scale (a corrupt checkpoint), `.unsupportedDType`,
  ///   `.bufferSizeMismatch`.
  public static func dequantize(
    _ weights: UnsafeRawBufferPointer, scales: UnsafeBufferPointer<Float>, layout: FP8BlockLayout,
    to dtype: DType, into destination: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    try checkDequantize(weights, scales: scales, layout: layout, to: dtype, into: destination)
    switch dtype {
    case .float32: dequantize(BlockFP8OutputF32.self, weights, scales, layout, destination)
    case .bfloat16: dequantize(BlockFP8OutputBF16.self, weights, scales, layout, destination)
    default: dequantize(BlockFP8OutputF16.self, weights, scales, layout, destination)
    }
  }

  static func checkDequantize(
    _ weights: UnsafeRawBufferPointer, scales: UnsafeBufferPointer<Float>, layout: FP8BlockLayout,
    to dtype: DType, into destination: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    guard outputDTypes.contains(dtype), let width = dtype.byteWidth else {
      throw .unsupportedDType(dtype, operation: "fp8 dequantization")
    }
    try checkWeightsAndScales(weightByteCount: weights.count, scaleCount: scales.count, layout: layout)
    let (outputBytes, overflow) = layout.elementCount.multipliedReportingOverflow(by: width)
    guard !overflow, destination.count == outputBytes else {
      throw .bufferSizeMismatch(
        buffer: "dequantized output", expectedByteCount: overflow ? Int.max : outputBytes,
        actualByteCount: destination.count)
    }
    for (index, scale) in scales.enumerated() where !scale.isFinite {
      throw .nonFiniteScale(scaleIndex: index, value: scale)
    }
  }

  static func dequantize<O: BlockFP8Output>(
    _: O.Type, _ weights: UnsafeRawBufferPointer, _ scales: UnsafeBufferPointer<Float>, _ layout: FP8BlockLayout,
    _ destination: UnsafeMutableRawBufferPointer
  ) {
    guard let weightBase = weights.baseAddress, let outBase = destination.baseAddress else { return }
    let input = SharedRawBuffer(UnsafeRawBufferPointer(start: weightBase, count: weights.count))
    let scaleBuffer = SharedRawBuffer(UnsafeRawBufferPointer(scales))
    let output = DisjointMutableBuffer(
      UnsafeMutableBufferPointer(
        start: outBase.bindMemory(to: UInt8.self, capacity: destination.count), count: destination.count))
    Parallel.forEachChunk(count: layout.rows, minimumChunk: max(1, 8192 / layout.columns)) { rowRange in
      guard let codes = input.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
        let scaleBase = scaleBuffer.bytes.baseAddress?.assumingMemoryBound(to: Float.self),
        let out = output.buffer.baseAddress
      else { return }
      dequantizeRows(O.self, codes, scaleBase, layout, rowRange, UnsafeMutableRawPointer(out))
    }
  }
}

/// `out[r, c] = O(decode(q[r, c]) * scale[r / blockRows, c / blockColumns])`, eight lanes at a time.
func dequantizeRows<O: BlockFP8Output>(
  _: O.Type, _ codes: UnsafePointer<UInt8>, _ scales: UnsafePointer<Float>, _ layout: FP8BlockLayout,
  _ rowRange: Range<Int>, _ out: UnsafeMutableRawPointer
) {
  let width = MemoryLayout<O.Bits>.size
  for row in rowRange {
    let scaleRow = scales + (row / layout.blockRows) &* layout.scaleColumns
    let rowCodes = UnsafeRawPointer(codes + row &* layout.columns)
    let rowOut = out + row &* layout.columns &* width
    for block in 0..<layout.scaleColumns {
      let scale = scaleRow[block]
      let multiplier = SIMD8<Float>(repeating: scale)
      var column = block &* layout.blockColumns
      let end = min(layout.columns, column &+ layout.blockColumns)
      while column &+ 8 <= end {
        let values = Float8Kernel<Float8E4M3FN>.decode(rowCodes.loadUnaligned(fromByteOffset: column, as: SIMD8<UInt8>.self))
        O.store(values * multiplier, to: rowOut + column &* width)
        column &+= 8
      }
      while column < end {
        let value = Float8E4M3FN.float(fromBits: rowCodes.load(fromByteOffset: column, as: UInt8.self)) * scale
        rowOut.storeBytes(of: O.bits(from: value), toByteOffset: column &* width, as: O.Bits.self)
        column &+= 1
      }
    }
  }
}

/// Output element encodings for the dequantizer.
protocol BlockFP8Output: SendableMetatype {
  associatedtype Bits: FixedWidthInteger & BitwiseCopyable
  static func bits(from value: Float) -> Bits
  /// Stores eight converted values at `pointer` (unaligned).
  static func store(_ values: SIMD8<Float>, to pointer: UnsafeMutableRawPointer)
}

enum BlockFP8OutputF32: BlockFP8Output {
  @inline(__always) static func bits(from value: Float) -> UInt32 { value.bitPattern }
  @inline(__always) static func store(_ values: SIMD8<Float>, to pointer: UnsafeMutableRawPointer) {
    pointer.storeBytes(of: values, as: SIMD8<Float>.self)
  }
}

enum BlockFP8OutputBF16: BlockFP8Output {
  @inline(__always) static func bits(from value: Float) -> UInt16 { BFloat16.bits(from: value) }
  @inline(__always) static func store(_ values: SIMD8<Float>, to pointer: UnsafeMutableRawPointer) {
    pointer.storeBytes(of: BFloat16.bits(from: values), as: SIMD8<UInt16>.self)
  }
}

enum BlockFP8OutputF16: BlockFP8Output {
  @inline(__always) static func bits(from value: Float) -> UInt16 { Float16Conversion.bits(from: value) }
  @inline(__always) static func store(_ values: SIMD8<Float>, to pointer: UnsafeMutableRawPointer) {
    pointer.storeBytes(of: Float16Conversion.bits(from: values), as: SIMD8<UInt16>.self)
  }
}
