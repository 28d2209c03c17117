import TensorCore

extension BlockFP8 {
  /// Dequantizes E4M3FN `weights` (`layout.elementCount` bytes) with F32 `scales` (`layout.scaleCount`) into
  /// `destination` as F32, BF16 or F16 (`elementCount` elements, any alignment).
  ///
  /// Each element is `Float(q) * scale` in F32 — DeepSeek's `weight_dequant` — then rounded to the output
  /// dtype (RNE). Edge blocks are cropped. Multithreaded over rows; bit-identical to `dequantizeReference`.
  /// With blocks of at least 4096 elements every block's 256 possible outputs are tabulated once, so the
  /// inner loop is a byte -> output lookup.
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
    guard weights.count == layout.elementCount else {
      throw .bufferSizeMismatch(
        buffer: "fp8 weights", expectedByteCount: layout.elementCount, actualByteCount: weights.count)
    }
    guard scales.count == layout.scaleCount else {
      throw .bufferSizeMismatch(
        buffer: "fp8 scales", expectedByteCount: layout.scaleCount * 4, actualByteCount: scales.count * 4)
    }
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
    let useTables = layout.blockRows * layout.blockColumns >= 4096
    Parallel.forEachChunk(count: layout.rows, minimumChunk: max(1, 8192 / layout.columns)) { rowRange in
      guard let codes = input.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
        let scaleBase = scaleBuffer.bytes.baseAddress?.assumingMemoryBound(to: Float.self),
        let out = output.buffer.baseAddress
      else { return }
      if useTables {
        dequantizeRowsWithTables(O.self, codes, scaleBase, layout, rowRange, UnsafeMutableRawPointer(out))
      } else {
        dequantizeRowsDirect(O.self, codes, scaleBase, layout, rowRange, UnsafeMutableRawPointer(out))
      }
    }
  }
}

/// Per block-row, tabulates `O(decode(q) * scale)` for all 256 codes of every block column, then maps bytes.
func dequantizeRowsWithTables<O: BlockFP8Output>(
  _: O.Type, _ codes: UnsafePointer<UInt8>, _ scales: UnsafePointer<Float>, _ layout: FP8BlockLayout,
  _ rowRange: Range<Int>, _ out: UnsafeMutableRawPointer
) {
  let scaleColumns = layout.scaleColumns
  let tables = UnsafeMutablePointer<O.Bits>.allocate(capacity: scaleColumns * 256)
  defer { tables.deallocate() }
  Float8E4M3FN.decodeTable.withUnsafeBufferPointer { decode in
    guard let decode = decode.baseAddress else { return }
    var tabulatedScaleRow = -1
    for row in rowRange {
      let scaleRow = row / layout.blockRows
      if scaleRow != tabulatedScaleRow {
        for block in 0..<scaleColumns {
          let scale = scales[scaleRow &* scaleColumns &+ block]
          let table = tables + block &* 256
          for code in 0..<256 { table[code] = O.bits(from: decode[code] * scale) }
        }
        tabulatedScaleRow = scaleRow
      }
      let rowCodes = codes + row &* layout.columns
      let rowOut = out + row &* layout.columns &* MemoryLayout<O.Bits>.size
      for block in 0..<scaleColumns {
        let table = tables + block &* 256
        let start = block &* layout.blockColumns
        let end = min(layout.columns, start &+ layout.blockColumns)
        for column in start..<end {
          rowOut.storeBytes(
            of: table[Int(rowCodes[column])], toByteOffset: column &* MemoryLayout<O.Bits>.size, as: O.Bits.self)
        }
      }
    }
  }
}

/// Small blocks (1×128, channel): one multiply per element, no tables.
func dequantizeRowsDirect<O: BlockFP8Output>(
  _: O.Type, _ codes: UnsafePointer<UInt8>, _ scales: UnsafePointer<Float>, _ layout: FP8BlockLayout,
  _ rowRange: Range<Int>, _ out: UnsafeMutableRawPointer
) {
  Float8E4M3FN.decodeTable.withUnsafeBufferPointer { decode in
    guard let decode = decode.baseAddress else { return }
    for row in rowRange {
      let scaleRow = scales + (row / layout.blockRows) &* layout.scaleColumns
      let rowCodes = codes + row &* layout.columns
      let rowOut = out + row &* layout.columns &* MemoryLayout<O.Bits>.size
      for block in 0..<layout.scaleColumns {
        let scale = scaleRow[block]
        let start = block &* layout.blockColumns
        let end = min(layout.columns, start &+ layout.blockColumns)
        for column in start..<end {
          let value = decode[Int(rowCodes[column])] * scale
          rowOut.storeBytes(
            of: O.bits(from: value), toByteOffset: column &* MemoryLayout<O.Bits>.size, as: O.Bits.self)
        }
      }
    }
  }
}

/// Output element encodings for the dequantizer.
protocol BlockFP8Output: SendableMetatype {
  associatedtype Bits: FixedWidthInteger & BitwiseCopyable
  static func bits(from value: Float) -> Bits
}

enum BlockFP8OutputF32: BlockFP8Output {
  @inline(__always) static func bits(from value: Float) -> UInt32 { value.bitPattern }
}

enum BlockFP8OutputBF16: BlockFP8Output {
  @inline(__always) static func bits(from value: Float) -> UInt16 { BFloat16.bits(from: value) }
}

enum BlockFP8OutputF16: BlockFP8Output {
  @inline(__always) static func bits(from value: Float) -> UInt16 { Float16Conversion.bits(from: value) }
}
