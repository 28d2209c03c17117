import TensorCore

/// Symmetric (zero fixed at the grid centre) or asymmetric (stored zero point) integer grids.
public enum Int4Symmetry: String, Sendable, CaseIterable {
  case symmetric
  case asymmetric
}

/// Where compressed-tensors does its `x / scale (+ zero)` arithmetic.
public enum CompressedTensorsArithmetic: Sendable {
  /// The torch CPU path (`forward_helpers._quantize`): every op in the weight dtype, so BF16/F16 weights round
  /// after the division and after adding the zero point. Verified against compressed-tensors 0.20.0.
  case weightDType
  /// The Triton GPU path (`_quantize_kernel`): the division and zero add in F32 (`tl.div_rn`). Transcribed,
  /// not run (no GPU here). Scales and zero points are computed in the weight dtype either way.
  case float32
}

/// int4 group quantization in logical form, before any checkpoint layout.
public struct Int4GroupResult: Sendable, Equatable {
  /// Output channels.
  public var rowCount: Int
  /// Input channels.
  public var columnCount: Int
  /// Elements per group along the input channels.
  public var groupSize: Int
  /// Unsigned codes `q + 8` in 0...15, `[rowCount, columnCount]` (the nibble every layout stores).
  public var codes: [UInt8]
  /// Scales `[rowCount, columnCount / groupSize]`, exactly representable in `scaleDType`.
  public var scales: [Float]
  /// Signed compressed-tensors zero points (−8...7) `[rowCount, groups]`, asymmetric only.
  public var zeroPoints: [Int8]?
  /// The dtype the scales are stored in (the weight dtype for compressed-tensors).
  public var scaleDType: DType

  /// Groups per row.
  public var groupCount: Int { columnCount / groupSize }
}

/// int4 group quantization with compressed-tensors' own rule (`calculate_qparams` + `_quantize`).
///
/// Symmetric: `scale = amax / 7.5`, `q = clamp(rint(x / scale), −8, 7)`. Asymmetric: min/max widened to
/// include 0, `scale = (max − min) / 15`, `zp = clamp(rint(−8 − min / scale), −8, 7)`,
/// `q = clamp(rint(x / scale + zp), −8, 7)`. Intermediates are rounded to the weight dtype as torch does;
/// a zero scale becomes the dtype's epsilon; a NaN zero point (all-zero group) becomes 0.
///
/// `scaleDType` (default: the weight dtype) rounds the scale for storage before the elements use it, which is
/// what llm-compressor does when the `weight_scale` parameter's dtype differs from the weight's (for example F32
/// weights from an FP8 dequantization served with BF16 scales); the zero point keeps the unrounded scale.
public enum Int4GroupQuantizer {
  static let format = "int4 group (compressed-tensors)"

  /// Checks the group size (a positive multiple of 8 dividing the columns), the scale dtype and the input;
  /// returns the scale storage dtype.
  @discardableResult
  static func validate(_ weight: WeightMatrix, groupSize: Int, scaleDType: DType? = nil) throws(FormatQuantizationError)
    -> DType
  {
    let storage = scaleDType ?? weight.dtype
    guard storage == .float32 || storage == .bfloat16 || storage == .float16 else {
      throw .unsupportedSourceDType(format: format + " scale", dtype: storage)
    }
    guard groupSize > 0, groupSize % 8 == 0 else {
      throw .unsupportedGroupSize(format: format, groupSize: groupSize, supported: [32, 64, 128])
    }
    try weight.validate(format: format, groupSize: groupSize)
    return storage
  }

  /// Scale and zero point of one group from its (widened) min and max, in the weight dtype.
  @inline(__always)
  static func groupParameters(
    minimum: Float, maximum: Float, symmetry: Int4Symmetry, dtype: DType, storage: DType
  ) -> (scale: Float, zeroPoint: Int8) {
    let mn = min(minimum, 0)
    let mx = max(maximum, 0)
    switch symmetry {
    case .symmetric:
      var scale = GroupQuantRounding.round(max(-mn, mx) / 7.5, to: dtype)
      if scale == 0 { scale = GroupQuantRounding.epsilon(dtype) }
      return (GroupQuantRounding.round(scale, to: storage), 0)
    case .asymmetric:
      var scale = GroupQuantRounding.round(GroupQuantRounding.round(mx - mn, to: dtype) / 15, to: dtype)
      let ratio = GroupQuantRounding.round(mn / scale, to: dtype)
      let zeroFloat = min(max(GroupQuantRounding.round(-8 - ratio, to: dtype), -8), 7)
      // torch casts the NaN of an all-zero group (0/0) to int8 0.
      let zeroPoint: Int8 = zeroFloat.isNaN ? 0 : Int8(zeroFloat.rounded(.toNearestOrEven))
      if scale == 0 { scale = GroupQuantRounding.epsilon(dtype) }
      return (GroupQuantRounding.round(scale, to: storage), zeroPoint)
    }
  }

  /// Scalar reference: mirrors compressed-tensors step by step.
  public static func quantizeReference(
    _ weight: WeightMatrix, groupSize: Int, symmetry: Int4Symmetry,
    arithmetic: CompressedTensorsArithmetic = .weightDType,
    scaleDType: DType? = nil
  ) throws(FormatQuantizationError) -> Int4GroupResult {
    let storage = try validate(weight, groupSize: groupSize, scaleDType: scaleDType)
    let rows = weight.rowCount
    let cols = weight.columnCount
    let groups = cols / groupSize
    let dtype = weight.dtype
    var codes = [UInt8](repeating: 0, count: rows * cols)
    var scales = [Float](repeating: 0, count: rows * groups)
    var zeros = [Int8](repeating: 0, count: rows * groups)
    for r in 0..<rows {
      for g in 0..<groups {
        let start = r * cols + g * groupSize
        var mn = Float.infinity
        var mx = -Float.infinity
        for i in start..<start + groupSize {
          mn = min(mn, weight.values[i])
          mx = max(mx, weight.values[i])
        }
        let (scale, zp) = groupParameters(minimum: mn, maximum: mx, symmetry: symmetry, dtype: dtype, storage: storage)
        scales[r * groups + g] = scale
        zeros[r * groups + g] = zp
        for i in start..<start + groupSize {
          var v: Float
          switch arithmetic {
          case .weightDType:
            v = GroupQuantRounding.round(weight.values[i] / scale, to: dtype)
            if symmetry == .asymmetric { v = GroupQuantRounding.round(v + Float(zp), to: dtype) }
          case .float32:
            v = weight.values[i] / scale
            if symmetry == .asymmetric { v += Float(zp) }
          }
          let q = min(max(v, -8), 7).rounded(.toNearestOrEven)
          codes[i] = UInt8(Int(q) + 8)
        }
      }
    }
    return Int4GroupResult(
      rowCount: rows, columnCount: cols, groupSize: groupSize, codes: codes, scales: scales,
      zeroPoints: symmetry == .asymmetric ? zeros : nil, scaleDType: storage)
  }

  /// Fast path: rows in parallel, SIMD8 over each group. Bit-identical to `quantizeReference`.
  public static func quantize(
    _ weight: WeightMatrix, groupSize: Int, symmetry: Int4Symmetry,
    arithmetic: CompressedTensorsArithmetic = .weightDType,
    scaleDType: DType? = nil
  ) throws(FormatQuantizationError) -> Int4GroupResult {
    let storage = try validate(weight, groupSize: groupSize, scaleDType: scaleDType)
    let dtype = weight.dtype
    let (codes, scales, zeros) = GroupQuantDriver.quantizeGroups(weight, groupSize: groupSize) {
      x, start, codeOut -> (Float, Int8) in
      let (minimum, maximum) = GroupQuantScan.extrema(x, start: start, count: groupSize)
      let (scale, zp) = groupParameters(
        minimum: minimum, maximum: maximum, symmetry: symmetry, dtype: dtype, storage: storage)
      for i in stride(from: start, to: start + groupSize, by: 8) {
        let code = codes8(
          GroupQuantRounding.load8(x, i), scale: scale, zeroPoint: zp, symmetry: symmetry, arithmetic: arithmetic,
          dtype: dtype)
        GroupQuantRounding.store8(code, into: codeOut, at: i)
      }
      return (scale, zp)
    }
    return Int4GroupResult(
      rowCount: weight.rowCount, columnCount: weight.columnCount, groupSize: groupSize, codes: codes, scales: scales,
      zeroPoints: symmetry == .asymmetric ? zeros : nil, scaleDType: storage)
  }

  /// Eight unsigned codes under compressed-tensors' arithmetic (the fast paths' element kernel): the division
  /// and zero add rounded to the weight dtype or not, then rint after the clamp, as torch does; the nibble is
  /// rint(v) + 8.
  @inline(__always)
  static func codes8(
    _ x: SIMD8<Float>, scale: Float, zeroPoint: Int8, symmetry: Int4Symmetry, arithmetic: CompressedTensorsArithmetic,
    dtype: DType
  ) -> SIMD8<UInt32> {
    var v = x / SIMD8(repeating: scale)
    let zero = SIMD8<Float>(repeating: Float(zeroPoint))
    switch arithmetic {
    case .weightDType:
      v = GroupQuantRounding.round(v, to: dtype)
      if symmetry == .asymmetric { v = GroupQuantRounding.round(v + zero, to: dtype) }
    case .float32:
      if symmetry == .asymmetric { v += zero }
    }
    let clamped = GroupQuantRounding.minimum(GroupQuantRounding.maximum(v, SIMD8(repeating: -8)), SIMD8(repeating: 7))
    return (GroupQuantRounding.roundedBits(clamped) &+ 8) & 0xF
  }
}
