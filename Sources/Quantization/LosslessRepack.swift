import TensorCore

/// Lossless repacks: moving a quantized weight's codes and scales into another layout that can hold the same
/// values exactly, instead of dequantizing and re-rounding. Pure functions over logical codes; the formats'
/// tensor names and dtypes live in the WeightFormats registry entries that call them.
///
/// MXFP4 → FP8 E4M3 with power-of-two (ue8m0) block scales: an MXFP4 element is `m · 2^x` with `m ∈ {1, 1.5}`
/// (or zero), and E4M3 holds `m · 2^r` exactly for `r ∈ -6...8` (normal) and `k · 2^-9`, `k ∈ 1...7`
/// (subnormal). So a block of any size is exact under the scale `2^S`, `S = max(x) − 8` (the largest element
/// lands at most at 384 < 448), when every element's `x − S` is at least `−9` (`−8` for `m = 1.5`): when the
/// block's exponent spread (MXFP4 scales differ by up to 254 between 32-blocks) fits E4M3's 17 binades.
/// Blocks where it does not are listed; their smallest elements are rounded to nearest even.
extension MXFP4 {
  /// An MXFP4 weight moved into FP8 E4M3 blocks with power-of-two scales.
  public struct FP8Repack: Sendable, Equatable {
    public var rowCount: Int
    public var columnCount: Int
    public var blockRows: Int
    public var blockColumns: Int
    /// E4M3FN bytes, `[rowCount, columnCount]`.
    public var codes: [UInt8]
    /// Per block, the exponent `S` of its scale `2^S` (multiplier convention: `x = e4m3 · 2^S`), row-major over
    /// `[ceil(rows / blockRows), ceil(columns / blockColumns)]`; within E8M0's range `−127...127`.
    public var scaleExponents: [Int]
    /// Flat indices (into the scale grid) of the blocks whose values do not all fit E4M3 at one power-of-two
    /// scale; ascending. Empty: the repack is exact.
    public var inexactBlocks: [Int]
    /// Elements rounded (nonzero elements of the inexact blocks that E4M3 could not hold at the block's scale).
    public var roundedElementCount: Int

    /// The scales as F32 values (`weight_scale_inv` multipliers), exact powers of two.
    public var scales: [Float] { scaleExponents.map { Float(sign: .plus, exponent: $0, significand: 1) } }
    public var scaleShape: [Int] {
      [(rowCount + blockRows - 1) / blockRows, (columnCount + blockColumns - 1) / blockColumns]
    }
  }

  /// E2M1 magnitude codes 1...7 as `(exponent, has half)`: 0.5, 1, 1.5, 2, 3, 4, 6.
  private static let e2m1Exponent: [Int] = [0, -1, 0, 0, 1, 1, 2, 2]
  private static let e2m1Half: [Int] = [0, 0, 0, 1, 0, 1, 0, 1]

  /// Moves `weight` (E2M1 codes + E8M0 scales per 32) into FP8 E4M3 with one power-of-two scale per
  /// `blockRows × blockColumns` block (edge blocks cropped). Exact wherever `inexactBlocks` does not say
  /// otherwise: `f32(e4m3) · 2^S` equals `fp4(code) · 2^(e − 127)` bit for bit. A NaN scale (0xFF) makes its
  /// block inexact (its elements become NaN).
  public static func repackToFP8Blocks(_ weight: Result, blockRows: Int = 128, blockColumns: Int = 128) -> FP8Repack {
    let rows = weight.rowCount, columns = weight.columnCount
    let blockRows = max(1, blockRows), blockColumns = max(1, blockColumns)
    let gridRows = (rows + blockRows - 1) / blockRows, gridColumns = (columns + blockColumns - 1) / blockColumns
    let scalesPerRow = columns / blockSize
    var codes = [UInt8](repeating: 0, count: rows * columns)
    var exponents = [Int](repeating: 0, count: gridRows * gridColumns)
    var inexact: [Int] = []
    var rounded = 0
    /// The element's binary exponent `x` (value `m · 2^x`), or nil for zero.
    func exponent(_ r: Int, _ c: Int) -> (x: Int, half: Int, nan: Bool)? {
      let code = weight.codes[r * columns + c] & 7
      guard code != 0 else { return nil }
      let e = weight.scales[r * scalesPerRow + c / blockSize]
      return (e2m1Exponent[Int(code)] + Int(e) - 127, e2m1Half[Int(code)], e == 0xFF)
    }
    for gr in 0..<gridRows {
      for gc in 0..<gridColumns {
        let rowRange = (gr * blockRows)..<min(rows, (gr + 1) * blockRows)
        let columnRange = (gc * blockColumns)..<min(columns, (gc + 1) * blockColumns)
        var largest = Int.min
        var hasNaN = false
        for r in rowRange {
          for c in columnRange {
            guard let element = exponent(r, c) else { continue }
            largest = max(largest, element.x)
            hasNaN = hasNaN || element.nan
          }
        }
        let s = largest == Int.min ? 0 : min(127, max(-127, largest - 8))
        exponents[gr * gridColumns + gc] = s
        var exact = !hasNaN
        for r in rowRange {
          for c in columnRange {
            let code = weight.codes[r * columns + c]
            let sign = UInt8(code & 8) << 4
            guard let element = exponent(r, c) else {
              codes[r * columns + c] = sign
              continue
            }
            let relative = element.x - s
            if element.nan {
              codes[r * columns + c] = sign | Float8E4M3FN.nanBits
            } else if relative >= -6 {
              codes[r * columns + c] = sign | UInt8(relative + 7) << 3 | UInt8(element.half << 2)
            } else if relative >= -9 + element.half {
              // Subnormal: (1 + h/2)·2^r = k·2^-9, k = (2 + h)·2^(r + 8).
              codes[r * columns + c] = sign | UInt8(((2 + element.half) << (relative + 9)) >> 1)
            } else {
              exact = false
              rounded += 1
              let value = Float(sign: .plus, exponent: relative, significand: element.half == 1 ? 1.5 : 1)
              codes[r * columns + c] = sign | e4m3RoundedSubnormal(value)
            }
          }
        }
        if !exact { inexact.append(gr * gridColumns + gc) }
      }
    }
    return FP8Repack(
      rowCount: rows, columnCount: columns, blockRows: blockRows, blockColumns: blockColumns, codes: codes,
      scaleExponents: exponents, inexactBlocks: inexact, roundedElementCount: rounded)
  }

  /// `value` (positive, below E4M3's smallest representable step pattern) as an E4M3 subnormal byte, rounded to
  /// nearest even: `k = rne(value · 2^9)`, 0 when it underflows.
  private static func e4m3RoundedSubnormal(_ value: Float) -> UInt8 {
    let scaled = value * 512
    let k = scaled.rounded(.toNearestOrEven)
    return UInt8(min(7, Int(k)))
  }

  /// The codes and scales of an MXFP4 weight whose leading dimensions fold into rows, from the packed bytes
  /// (two codes per byte, the even element in the low nibble — compressed-tensors, gpt-oss and DeepSeek-V4 all
  /// pack so) and the E8M0 scale bytes.
  public static func result(packed: [UInt8], scales: [UInt8], rows: Int, columns: Int) -> Result {
    Result(rowCount: rows, columnCount: columns, codes: Packing.unpackNibblePairs(packed), scales: scales)
  }

  /// What every MXFP4 reader decodes, in exact F32 (no BF16 rounding): `fp4(code) · 2^(e − 127)`.
  public static func exactValues(_ weight: Result) -> [Float] {
    (0..<(weight.rowCount * weight.columnCount)).map { i in
      let v = FP4E2M1.decode(weight.codes[i])
      let e = weight.scales[i / blockSize]
      if e == 0xFF { return .nan }
      return v == 0 ? v : Float(sign: v.sign, exponent: Int(e) - 127, significand: abs(v))
    }
  }
}

extension Int4PackQuantized {
  /// A symmetric int4 weight in logical form: the codes as stored (`q + 8`, 0...15, one per element) and one
  /// scale per group (exact F32 values of the stored BF16/F16/F32 scales).
  public struct SymmetricGroups: Sendable, Equatable {
    public var rowCount: Int
    public var columnCount: Int
    public var groupSize: Int
    /// `q + 8` per element, `[rowCount, columnCount]`.
    public var offsetCodes: [UInt8]
    /// `[rowCount, columnCount / groupSize]`.
    public var scales: [Float]
    /// The stored scale dtype.
    public var scaleDType: DType
  }

  /// The codes and scales of a symmetric compressed-tensors `pack-quantized` int4 weight (no zero point), for
  /// a lossless repack (GGUF Q4_0 for Kimi K2-Thinking's g32 experts: `GGMLRepack.q4_0`).
  public static func symmetricGroups(_ tensors: [PackedTensor], groupSize: Int) throws(FormatQuantizationError)
    -> SymmetricGroups
  {
    if tensors.contains(where: { $0.nameSuffix == "weight_zero_point" }) {
      throw .invalidStoredValue(format: format, nameSuffix: "weight_zero_point", detail: "asymmetric: no lossless repack")
    }
    let shapeTensor = try PackedTensorLookup.find("weight_shape", in: tensors, format: format, dtypes: [.int64], shape: [2])
    let dims = int64Values(shapeTensor.bytes)
    guard dims.count == 2, let rows = Int(exactly: dims[0]), let cols = Int(exactly: dims[1]), cols % 8 == 0 else {
      throw .invalidStoredValue(format: format, nameSuffix: "weight_shape", detail: "\(dims)")
    }
    try PackedTensorLookup.matrixShape(rows: rows, columns: cols, format: format, groupSize: groupSize)
    let packed = try PackedTensorLookup.find("weight_packed", in: tensors, format: format, dtypes: [.int32], shape: [rows, cols / 8])
    let scaleTensor = try PackedTensorLookup.find(
      "weight_scale", in: tensors, format: format, dtypes: [.bfloat16, .float16, .float32], shape: [rows, cols / groupSize])
    let codes = Packing.unpackRowsFromWords(GroupQuantRounding.decodeWords(packed.bytes), rowCount: rows, columnCount: cols, bits: 4)
    return SymmetricGroups(
      rowCount: rows, columnCount: cols, groupSize: groupSize, offsetCodes: codes,
      scales: GroupQuantRounding.decode(scaleTensor.bytes, as: scaleTensor.dtype), scaleDType: scaleTensor.dtype)
  }
}

extension MXFP4 {
  /// What compressed-tensors' MXFP4 decompressor, transformers' gpt-oss dequantizer and its FP4 + E8M0 path
  /// (DeepSeek-V4) return: `bf16(fp4(code) · 2^(e − 127))`.
  public static func dequantize(_ weight: Result) -> DequantizedMatrix {
    dequantize(codes: weight.codes, scales: weight.scales, rows: weight.rowCount, cols: weight.columnCount)
  }
}
