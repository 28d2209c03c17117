import TensorCore

/// Single-pass FP8 E4M3 block kernels for the conversion runner: the value work and the round-trip error
/// statistics of a chunk in one sweep over its bytes, instead of a dequantize pass into an F32 scratch
/// followed by an encode pass and a statistics pass.
///
/// - `dequantizeToBF16`: `out = BF16(f32(q) * scale)` — bit-identical to
///   `BlockFP8.dequantize(to: .bfloat16)` (DeepSeek's `weight_dequant`) — plus the error of the BF16
///   rounding against that F32 value.
/// - `quantizationError`: the error of `f32(q) * scale` — rounded to `readDType` as the consumer's decompressor
///   does (compressed-tensors multiplies in its BF16/F16 scale dtype) — against the quantizer's source values.
///
/// Layout as in `BlockFP8`: `rows × columns` codes row-major, F32 scales `[ceil(rows / blockRows),
/// scaleColumns]`; the caller checks sizes (the runner sizes every buffer from the same layout). Each has
/// a scalar `...Reference` twin built on the Quantization module's own decoders; tests compare them.
public enum FusedFP8 {
  /// `BF16(decode(q) * scale)` for every element of `layout`, written to `output` (2 bytes each), and the
  /// rounding error statistics.
  public static func dequantizeToBF16(
    _ codes: UnsafeRawBufferPointer, scales: UnsafeBufferPointer<Float>, layout: FP8BlockLayout,
    into output: UnsafeMutableRawBufferPointer
  ) -> ErrorStatistics {
    precondition(
      codes.count >= layout.elementCount && scales.count >= layout.scaleCount && output.count >= layout.elementCount * 2,
      "fused dequantize: buffer sizes")
    guard let codeBase = codes.baseAddress, let scaleBase = scales.baseAddress, let outBase = output.baseAddress else {
      return ErrorStatistics()
    }
    var totals = ErrorStatistics()
    for row in 0..<layout.rows {
      let scaleRow = scaleBase + (row / layout.blockRows) &* layout.scaleColumns
      let rowCodes = codeBase + row &* layout.columns
      let rowOut = outBase + row &* layout.columns &* 2
      for block in 0..<layout.scaleColumns {
        let scale = scaleRow[block]
        let multiplier = SIMD8<Float>(repeating: scale)
        var column = block &* layout.blockColumns
        let end = min(layout.columns, column &+ layout.blockColumns)
        // A source block row is at most 1024 wide in practice (128): one run of Float lane sums.
        var lanes = ErrorStatistics.Lanes()
        let runStart = column
        while column &+ 8 <= end {
          let value = E4M3Lanes.decode(rowCodes.loadUnaligned(fromByteOffset: column, as: SIMD8<UInt8>.self)) * multiplier
          let bits = BF16Lanes.bits(from: value)
          rowOut.storeBytes(of: bits, toByteOffset: column &* 2, as: SIMD8<UInt16>.self)
          lanes.add(reference: value, candidate: BF16Lanes.floats(fromBits: bits))
          column &+= 8
        }
        totals.add(lanes, count: column - runStart)
        while column < end {
          let value = Float8E4M3FN.float(fromBits: rowCodes.load(fromByteOffset: column, as: UInt8.self)) * scale
          let bits = BFloat16.bits(from: value)
          rowOut.storeBytes(of: bits, toByteOffset: column &* 2, as: UInt16.self)
          totals.add(reference: value, candidate: BFloat16.float(fromBits: bits))
          column &+= 1
        }
      }
    }
    return totals
  }

  /// Scalar twin of `dequantizeToBF16`, from the Quantization module's table decoder and scalar rounding.
  public static func dequantizeToBF16Reference(
    _ codes: UnsafeRawBufferPointer, scales: UnsafeBufferPointer<Float>, layout: FP8BlockLayout,
    into output: UnsafeMutableRawBufferPointer
  ) -> ErrorStatistics {
    var reference = [Float](repeating: 0, count: layout.elementCount)
    var back = [Float](repeating: 0, count: layout.elementCount)
    for row in 0..<layout.rows {
      for column in 0..<layout.columns {
        let index = row * layout.columns + column
        let scale = scales[(row / layout.blockRows) * layout.scaleColumns + column / layout.blockColumns]
        let value = Float8E4M3FN.float(fromBits: codes[index]) * scale
        let bits = BFloat16.bitsReference(from: value)
        output.storeBytes(of: bits, toByteOffset: index * 2, as: UInt16.self)
        reference[index] = value
        back[index] = BFloat16.float(fromBits: bits)
      }
    }
    return reference.withUnsafeBufferPointer { r in back.withUnsafeBufferPointer { ErrorStatistics.reference(reference: r, candidate: $0) } }
  }

  /// The error statistics of `decode(codes) * scale` against `source` (F32, BF16 or F16 elements, any
  /// alignment): what quantizing `source` onto those codes and scales lost.
  public static func quantizationError(
    source: UnsafeRawBufferPointer, _ dtype: DType, codes: UnsafeRawBufferPointer, scales: UnsafeBufferPointer<Float>,
    layout: FP8BlockLayout, readDType: DType = .float32
  ) -> ErrorStatistics {
    precondition(ErrorStatistics.dtypes.contains(dtype), "fused quantization error: dtype \(dtype)")
    precondition(
      codes.count >= layout.elementCount && scales.count >= layout.scaleCount
        && source.count >= layout.elementCount * (dtype.byteWidth ?? 0), "fused quantization error: buffer sizes")
    guard let sourceBase = source.baseAddress, let codeBase = codes.baseAddress, let scaleBase = scales.baseAddress else {
      return ErrorStatistics()
    }
    switch dtype {
    case .bfloat16: return quantizationError(LoadBF16.self, sourceBase, codeBase, scaleBase, layout, readDType)
    case .float16: return quantizationError(LoadF16.self, sourceBase, codeBase, scaleBase, layout, readDType)
    default: return quantizationError(LoadF32.self, sourceBase, codeBase, scaleBase, layout, readDType)
    }
  }

  private static func quantizationError<L: LaneLoader>(
    _: L.Type, _ source: UnsafeRawPointer, _ codes: UnsafeRawPointer, _ scales: UnsafePointer<Float>, _ layout: FP8BlockLayout,
    _ readDType: DType
  ) -> ErrorStatistics {
    @inline(__always) func read(_ v: SIMD8<Float>) -> SIMD8<Float> {
      switch readDType {
      case .bfloat16: return BF16Lanes.floats(fromBits: BF16Lanes.bits(from: v))
      case .float16: return SIMD8<Float>(SIMD8<Float16>(v))
      default: return v
      }
    }
    @inline(__always) func read(_ v: Float) -> Float {
      switch readDType {
      case .bfloat16: return BFloat16.float(fromBits: BFloat16.bits(from: v))
      case .float16: return Float(Float16(v))
      default: return v
      }
    }
    var totals = ErrorStatistics()
    for row in 0..<layout.rows {
      let scaleRow = scales + (row / layout.blockRows) &* layout.scaleColumns
      let rowCodes = codes + row &* layout.columns
      let rowStart = row &* layout.columns
      for block in 0..<layout.scaleColumns {
        let scale = scaleRow[block]
        let multiplier = SIMD8<Float>(repeating: scale)
        var column = block &* layout.blockColumns
        let end = min(layout.columns, column &+ layout.blockColumns)
        let vectorEnd = column &+ (end &- column) & ~7
        while column < vectorEnd {
          // Runs of at most 1024 elements in Float lanes (a 128-wide block is one run; channel rows several).
          let runEnd = min(vectorEnd, column &+ 1024)
          var lanes = ErrorStatistics.Lanes()
          let runStart = column
          while column < runEnd {
            let x = L.load8(source, rowStart &+ column)
            let back = E4M3Lanes.decode(rowCodes.loadUnaligned(fromByteOffset: column, as: SIMD8<UInt8>.self)) * multiplier
            lanes.add(reference: x, candidate: read(back))
            column &+= 8
          }
          totals.add(lanes, count: column - runStart)
        }
        while column < end {
          let back = Float8E4M3FN.float(fromBits: rowCodes.load(fromByteOffset: column, as: UInt8.self)) * scale
          totals.add(reference: L.load(source, rowStart &+ column), candidate: read(back))
          column &+= 1
        }
      }
    }
    return totals
  }
}

/// Eight E4M3FN codes decoded exactly with integer SIMD (no tables, no subnormal float arithmetic).
enum E4M3Lanes {
  /// Normal codes (exponent field 1...15): the magnitude bits moved into F32 position with the exponent
  /// re-biased (+120). Subnormal codes (exponent 0, value `m * 2^-9`): `(1 + m/8) - 1` built from bits, times
  /// 2^-6, all normal floats. `S1111111` is NaN: the F32 quiet NaN with its sign (as the decode table has it).
  @inline(__always)
  static func decode(_ codes: SIMD8<UInt8>) -> SIMD8<Float> {
    let code = widen(codes)
    let magnitude = code & 0x7F
    let shifted = magnitude &<< 20
    let normal = shifted &+ (120 &<< 23)
    let fraction = unsafeBitCast(shifted | 0x3F80_0000, to: SIMD8<Float>.self) - 1
    let subnormal = unsafeBitCast(fraction * 0x1p-6, to: SIMD8<UInt32>.self)
    // All ones where the exponent field is 0 (magnitude < 8) / where the magnitude is 0x7F.
    let subnormalMask = ((magnitude &+ 0x78) &>> 7) &- 1
    let nanMask = SIMD8<UInt32>(repeating: 0) &- ((magnitude &+ 1) &>> 7)
    var bits = (normal & ~subnormalMask) | (subnormal & subnormalMask)
    bits = (bits & ~nanMask) | (0x7FC0_0000 & nanMask)
    return unsafeBitCast(bits | ((code & 0x80) &<< 24), to: SIMD8<Float>.self)
  }

  /// Zero-extends eight bytes to 32-bit lanes.
  @inline(__always)
  static func widen(_ bytes: SIMD8<UInt8>) -> SIMD8<UInt32> {
    SIMD8<UInt32>(
      UInt32(bytes[0]), UInt32(bytes[1]), UInt32(bytes[2]), UInt32(bytes[3]), UInt32(bytes[4]), UInt32(bytes[5]),
      UInt32(bytes[6]), UInt32(bytes[7]))
  }
}

/// BF16 rounding of eight lanes, as `BFloat16.bits(from:)`: RNE, NaN -> the canonical quiet NaN with sign.
enum BF16Lanes {
  @inline(__always)
  static func bits(from values: SIMD8<Float>) -> SIMD8<UInt16> {
    let word = unsafeBitCast(values, to: SIMD8<UInt32>.self)
    let nanMask = SIMD8<UInt32>(repeating: 0) &- ((0x7F80_0000 &- (word & 0x7FFF_FFFF)) &>> 31)
    let rounded = (word &+ 0x7FFF &+ ((word &>> 16) & 1)) &>> 16
    let nan = ((word &>> 16) & 0x8000) | UInt32(BFloat16.quietNaNBits)
    return narrow((rounded & ~nanMask) | (nan & nanMask))
  }

  @inline(__always)
  static func floats(fromBits bits: SIMD8<UInt16>) -> SIMD8<Float> {
    let wide = SIMD8<UInt32>(
      UInt32(bits[0]), UInt32(bits[1]), UInt32(bits[2]), UInt32(bits[3]), UInt32(bits[4]), UInt32(bits[5]),
      UInt32(bits[6]), UInt32(bits[7]))
    return unsafeBitCast(wide &<< 16, to: SIMD8<Float>.self)
  }

  @inline(__always)
  static func narrow(_ words: SIMD8<UInt32>) -> SIMD8<UInt16> {
    SIMD8<UInt16>(
      UInt16(truncatingIfNeeded: words[0]), UInt16(truncatingIfNeeded: words[1]), UInt16(truncatingIfNeeded: words[2]),
      UInt16(truncatingIfNeeded: words[3]), UInt16(truncatingIfNeeded: words[4]), UInt16(truncatingIfNeeded: words[5]),
      UInt16(truncatingIfNeeded: words[6]), UInt16(truncatingIfNeeded: words[7]))
  }
}
