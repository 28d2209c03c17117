import TensorCore

/// MLX affine quantization (`mx.quantize`, mode "affine"), bits 4 and 8, as mlx-lm and mlx-swift load it.
///
/// Rule of MLX's CPU kernel (`mlx/backend/cpu/quantized.cpp`, `quantize`), in F32: `scale = max((max − min) / n,
/// 1e-7)`, negated unless |min| > |max|; the larger-magnitude extreme is the edge; `q0 = rint(edge / scale)`;
/// if q0 ≠ 0 then `scale = edge / q0`, `bias = edge`, else `bias = 0`. Elements use the unrounded F32 scale and
/// bias: `q = clamp(rint((w − bias) / scale), 0, n)`; scale and bias are rounded to the weight dtype on store.
public enum MLXAffine {
  static let format = "mlx affine"
  /// Bit widths supported here.
  public static let supportedBits = [4, 8]
  /// Group sizes MLX supports.
  public static let supportedGroupSizes = [32, 64, 128]

  /// MLX affine quantization in logical form.
  public struct Result: Sendable, Equatable {
    public var rowCount: Int
    public var columnCount: Int
    public var groupSize: Int
    public var bits: Int
    /// Unsigned codes 0...2^bits−1, `[rowCount, columnCount]`.
    public var codes: [UInt8]
    /// Scales `[rowCount, groups]`, rounded to `scaleDType` (may be negative).
    public var scales: [Float]
    /// Biases `[rowCount, groups]`, rounded to `scaleDType`.
    public var biases: [Float]
    /// The weight dtype, which scales and biases are stored in.
    public var scaleDType: DType
  }

  static func validate(_ weight: WeightMatrix, groupSize: Int, bits: Int) throws(FormatQuantizationError) {
    guard supportedBits.contains(bits) else {
      throw .unsupportedBits(format: format, bits: bits, supported: supportedBits)
    }
    guard supportedGroupSizes.contains(groupSize) else {
      throw .unsupportedGroupSize(format: format, groupSize: groupSize, supported: supportedGroupSizes)
    }
    try weight.validate(format: format, groupSize: groupSize)
  }

  /// The F32 scale and bias of one group from its true min and max (MLX CPU rule).
  @inline(__always)
  static func groupParameters(minimum wMin: Float, maximum wMax: Float, levels: Float) -> (scale: Float, bias: Float) {
    let edgeIsMin = abs(wMin) > abs(wMax)
    var scale = max((wMax - wMin) / levels, Float(1e-7))
    scale = edgeIsMin ? scale : -scale
    let edge = edgeIsMin ? wMin : wMax
    let q0 = (edge / scale).rounded(.toNearestOrEven)
    var bias: Float = 0
    if q0 != 0 {
      scale = edge / q0
      bias = edge
    }
    return (scale, bias)
  }

  /// Scalar reference: MLX's CPU `quantize` loop.
  public static func quantizeReference(_ weight: WeightMatrix, groupSize: Int, bits: Int)
    throws(FormatQuantizationError) -> Result
  {
    try validate(weight, groupSize: groupSize, bits: bits)
    let rows = weight.rowCount
    let cols = weight.columnCount
    let groups = cols / groupSize
    let levels = Float((1 << bits) - 1)
    var codes = [UInt8](repeating: 0, count: rows * cols)
    var scales = [Float](repeating: 0, count: rows * groups)
    var biases = [Float](repeating: 0, count: rows * groups)
    for r in 0..<rows {
      for g in 0..<groups {
        let start = r * cols + g * groupSize
        var wMin = Float.infinity
        var wMax = -Float.infinity
        for i in start..<start + groupSize {
          wMax = max(wMax, weight.values[i])
          wMin = min(wMin, weight.values[i])
        }
        let (scale, bias) = groupParameters(minimum: wMin, maximum: wMax, levels: levels)
        for i in start..<start + groupSize {
          let q = ((weight.values[i] - bias) / scale).rounded(.toNearestOrEven)
          codes[i] = UInt8(min(max(q, 0), levels))
        }
        scales[r * groups + g] = GroupQuantRounding.round(scale, to: weight.dtype)
        biases[r * groups + g] = GroupQuantRounding.round(bias, to: weight.dtype)
      }
    }
    return Result(
      rowCount: rows, columnCount: cols, groupSize: groupSize, bits: bits, codes: codes, scales: scales,
      biases: biases, scaleDType: weight.dtype)
  }

  /// Fast path: rows in parallel, SIMD8 over each group. Bit-identical to `quantizeReference`.
  public static func quantize(_ weight: WeightMatrix, groupSize: Int, bits: Int) throws(FormatQuantizationError)
    -> Result
  {
    try validate(weight, groupSize: groupSize, bits: bits)
    let levels = Float((1 << bits) - 1)
    let dtype = weight.dtype
    let (codes, scales, biases) = GroupQuantDriver.quantizeGroups(weight, groupSize: groupSize) {
      x, start, codeOut -> (Float, Float) in
      let (minimum, maximum) = GroupQuantScan.extrema(x, start: start, count: groupSize)
      let (scale, bias) = groupParameters(minimum: minimum, maximum: maximum, levels: levels)
      let scaleVector = SIMD8<Float>(repeating: scale)
      let biasVector = SIMD8<Float>(repeating: bias)
      let zero = SIMD8<Float>(repeating: 0)
      let top = SIMD8<Float>(repeating: levels)
      for i in stride(from: start, to: start + groupSize, by: 8) {
        // clamp(rint(v), 0, n) == rint(clamp(v, 0, n)) for integer bounds.
        let v = (GroupQuantRounding.load8(x, i) - biasVector) / scaleVector
        let code =
          GroupQuantRounding.roundedBits(GroupQuantRounding.minimum(GroupQuantRounding.maximum(v, zero), top)) & 0xFF
        GroupQuantRounding.store8(code, into: codeOut, at: i)
      }
      return (GroupQuantRounding.round(scale, to: dtype), GroupQuantRounding.round(bias, to: dtype))
    }
    return Result(
      rowCount: weight.rowCount, columnCount: weight.columnCount, groupSize: groupSize, bits: bits, codes: codes,
      scales: scales, biases: biases, scaleDType: dtype)
  }

  /// The checkpoint tensors: `weight` U32 `[out, in·bits/32]`, `scales` and `biases` `[out, in/g]`.
  public static func tensors(_ result: Result) -> [PackedTensor] {
    let rows = result.rowCount
    let cols = result.columnCount
    let words = Packing.packRowsIntoWords(result.codes, rowCount: rows, columnCount: cols, bits: result.bits)
    return [
      PackedTensor(
        nameSuffix: "weight", dtype: .uint32, shape: [rows, cols * result.bits / 32],
        bytes: GroupQuantRounding.encodeWords(words)),
      PackedTensor(
        nameSuffix: "scales", dtype: result.scaleDType, shape: [rows, cols / result.groupSize],
        bytes: GroupQuantRounding.encode(result.scales, as: result.scaleDType)),
      PackedTensor(
        nameSuffix: "biases", dtype: result.scaleDType, shape: [rows, cols / result.groupSize],
        bytes: GroupQuantRounding.encode(result.biases, as: result.scaleDType)),
    ]
  }

  /// What `mx.dequantize` returns on the CPU: `scale · q + bias`, each op rounded to the scale dtype.
  public static func dequantize(
    _ tensors: [PackedTensor], groupSize: Int, bits: Int
  ) throws(FormatQuantizationError) -> DequantizedMatrix {
    guard supportedBits.contains(bits) else {
      throw .unsupportedBits(format: format, bits: bits, supported: supportedBits)
    }
    let weight = try PackedTensorLookup.find("weight", in: tensors, format: format, dtypes: [.uint32], shape: nil)
    guard weight.shape.count == 2 else {
      throw .tensorMismatch(format: format, nameSuffix: "weight", expected: "rank 2", actual: "\(weight.shape)")
    }
    let rows = weight.shape[0]
    let (cols, overflow) = weight.shape[1].multipliedReportingOverflow(by: 32 / bits)
    guard !overflow else { throw .badShape(format: format, shape: weight.shape, elementCount: 0) }
    try PackedTensorLookup.matrixShape(rows: rows, columns: cols, format: format, groupSize: groupSize)
    let groups = cols / groupSize
    let scaleTensor = try PackedTensorLookup.find(
      "scales", in: tensors, format: format, dtypes: [.bfloat16, .float16, .float32], shape: [rows, groups])
    let biasTensor = try PackedTensorLookup.find(
      "biases", in: tensors, format: format, dtypes: [scaleTensor.dtype], shape: [rows, groups])
    let dtype = scaleTensor.dtype
    let scales = GroupQuantRounding.decode(scaleTensor.bytes, as: dtype)
    let biases = GroupQuantRounding.decode(biasTensor.bytes, as: dtype)
    let codes = Packing.unpackRowsFromWords(
      GroupQuantRounding.decodeWords(weight.bytes), rowCount: rows, columnCount: cols, bits: bits)
    var values = [Float](repeating: 0, count: rows * cols)
    for r in 0..<rows {
      for c in 0..<cols {
        let g = r * groups + c / groupSize
        let product = GroupQuantRounding.round(scales[g] * Float(codes[r * cols + c]), to: dtype)
        values[r * cols + c] = GroupQuantRounding.round(product + biases[g], to: dtype)
      }
    }
    return DequantizedMatrix(values: values, rowCount: rows, columnCount: cols, dtype: dtype)
  }
}
