import TensorCore

/// GPTQ v1 checkpoints (AutoGPTQ / GPTQModel `checkpoint_format: gptq`; read by vLLM gptq/gptq_marlin,
/// transformers, ExLlama), written from round-to-nearest on GPTQ's own grid (no Hessian updates).
///
/// Grid (AutoGPTQ `quantizer.py find_params`, F32): min/max widened to include 0; symmetric
/// `scale = 2·max(|min|, max)/15`, zero 8; asymmetric `scale = (max − min)/15`, `zero = rint(−min/scale)`; an
/// all-zero group uses min −1, max 1. Codes `q = clamp(rint(x/scale) + zero, 0, 15)` with the F32 scale;
/// `scales` are stored as F16. v1 stores `zero − 1` in `qzeros`, which cannot hold zero 0, so an asymmetric
/// zero of 0 is raised to 1 (the group's top value then clips by one step) instead of writing a corrupt word.
public enum GPTQv1 {
  static let format = "gptq v1"

  /// GPTQ quantization in logical form.
  public struct Result: Sendable, Equatable {
    public var rowCount: Int
    public var columnCount: Int
    public var groupSize: Int
    /// Unsigned codes 0...15 `[rowCount (out), columnCount (in)]`.
    public var codes: [UInt8]
    /// F16-rounded scales `[out, groups]`.
    public var scales: [Float]
    /// Unsigned zero points 1...15 `[out, groups]` (8 for symmetric).
    public var zeros: [UInt8]
  }

  static func validate(_ weight: WeightMatrix, groupSize: Int) throws(FormatQuantizationError) {
    guard groupSize > 0, groupSize % 8 == 0 else {
      throw .unsupportedGroupSize(format: format, groupSize: groupSize, supported: [32, 64, 128])
    }
    guard weight.rowCount % 8 == 0 else {
      throw .outputChannelsNotMultiple(format: format, rowCount: weight.rowCount, multiple: 8)
    }
    try weight.validate(format: format, groupSize: groupSize)
  }

  @inline(__always)
  static func groupParameters(minimum: Float, maximum: Float, symmetry: Int4Symmetry) -> (scale: Float, zero: Float) {
    var xmin = min(minimum, 0)
    var xmax = max(maximum, 0)
    if symmetry == .symmetric {
      xmax = max(-xmin, xmax)
      xmin = -xmax
    }
    if xmin == 0 && xmax == 0 {
      xmin = -1
      xmax = 1
    }
    let scale = (xmax - xmin) / 15
    let zero: Float = symmetry == .symmetric ? 8 : max(min((-xmin / scale).rounded(.toNearestOrEven), 15), 1)
    return (scale, zero)
  }

  /// Scalar reference.
  public static func quantizeReference(_ weight: WeightMatrix, groupSize: Int, symmetry: Int4Symmetry)
    throws(FormatQuantizationError) -> Result
  {
    try validate(weight, groupSize: groupSize)
    let rows = weight.rowCount
    let cols = weight.columnCount
    let groups = cols / groupSize
    var codes = [UInt8](repeating: 0, count: rows * cols)
    var scales = [Float](repeating: 0, count: rows * groups)
    var zeros = [UInt8](repeating: 0, count: rows * groups)
    for r in 0..<rows {
      for g in 0..<groups {
        let start = r * cols + g * groupSize
        var mn = Float.infinity
        var mx = -Float.infinity
        for i in start..<start + groupSize {
          mn = min(mn, weight.values[i])
          mx = max(mx, weight.values[i])
        }
        let (scale, zero) = groupParameters(minimum: mn, maximum: mx, symmetry: symmetry)
        scales[r * groups + g] = GroupQuantRounding.float16(scale)
        zeros[r * groups + g] = UInt8(zero)
        for i in start..<start + groupSize {
          codes[i] = UInt8(min(max((weight.values[i] / scale).rounded(.toNearestOrEven) + zero, 0), 15))
        }
      }
    }
    return Result(rowCount: rows, columnCount: cols, groupSize: groupSize, codes: codes, scales: scales, zeros: zeros)
  }

  /// Fast path: rows in parallel, SIMD8 over each group. Bit-identical to `quantizeReference`.
  public static func quantize(_ weight: WeightMatrix, groupSize: Int, symmetry: Int4Symmetry)
    throws(FormatQuantizationError) -> Result
  {
    try validate(weight, groupSize: groupSize)
    let (codes, scales, zeros) = GroupQuantDriver.quantizeGroups(weight, groupSize: groupSize) {
      x, start, codeOut -> (Float, UInt8) in
      let (minimum, maximum) = GroupQuantScan.extrema(x, start: start, count: groupSize)
      let (scale, zero) = groupParameters(minimum: minimum, maximum: maximum, symmetry: symmetry)
      let scaleVector = SIMD8<Float>(repeating: scale)
      let zeroBits = SIMD8<UInt32>(repeating: UInt32(zero))
      let sixteen = SIMD8<Float>(repeating: 16)
      for i in stride(from: start, to: start + groupSize, by: 8) {
        // rint(v) + zero, clamped to 0...15; clamping v to ±16 first changes nothing (zero is 1...15).
        let v = GroupQuantRounding.minimum(
          GroupQuantRounding.maximum(GroupQuantRounding.load8(x, i) / scaleVector, -sixteen), sixteen)
        let level = GroupQuantRounding.roundedBits(v)
        let q = (level &+ zeroBits) & 0xFF  // rint(v) + zero in 8-bit two's complement
        // Clamp the signed 8-bit value to 0...15: negatives (bit 7 set) to 0, values above 15 to 15.
        let negative = (q & 0x80) .!= 0
        let code = q.replacing(with: 15, where: q .> 15).replacing(with: 0, where: negative)
        GroupQuantRounding.store8(code, into: codeOut, at: i)
      }
      return (GroupQuantRounding.float16(scale), UInt8(zero))
    }
    return Result(
      rowCount: weight.rowCount, columnCount: weight.columnCount, groupSize: groupSize, codes: codes, scales: scales,
      zeros: zeros)
  }

  /// `qweight` I32 `[in/8, out]`, `qzeros` I32 `[in/g, out/8]` (zero − 1), `scales` F16 `[in/g, out]`,
  /// `g_idx` I32 `[in]` (`i / g`).
  public static func tensors(_ result: Result) -> [PackedTensor] {
    let rows = result.rowCount
    let cols = result.columnCount
    let groups = cols / result.groupSize
    // Packing each row of [out, in] along `in` gives words [out, in/8]; GPTQ stores their transpose.
    let rowWords = Packing.packRowsIntoWords(result.codes, rowCount: rows, columnCount: cols, bits: 4)
    let qweight = Packing.transpose(rowWords, rowCount: rows, columnCount: cols / 8)
    let storedZeros = Packing.transpose(result.zeros.map { $0 - 1 }, rowCount: rows, columnCount: groups)
    let qzeros = Packing.packRowsIntoWords(storedZeros, rowCount: groups, columnCount: rows, bits: 4)
    let scales = Packing.transpose(result.scales, rowCount: rows, columnCount: groups)
    let gIndex = (0..<cols).map { UInt32($0 / result.groupSize) }
    return [
      PackedTensor(
        nameSuffix: "qweight", dtype: .int32, shape: [cols / 8, rows], bytes: GroupQuantRounding.encodeWords(qweight)),
      PackedTensor(
        nameSuffix: "qzeros", dtype: .int32, shape: [groups, rows / 8], bytes: GroupQuantRounding.encodeWords(qzeros)),
      PackedTensor(
        nameSuffix: "scales", dtype: .float16, shape: [groups, rows],
        bytes: GroupQuantRounding.encode(scales, as: .float16)),
      PackedTensor(nameSuffix: "g_idx", dtype: .int32, shape: [cols], bytes: GroupQuantRounding.encodeWords(gIndex)),
    ]
  }

  /// What AutoGPTQ's torch dequantization computes: `scales · (q − (qzeros + 1))` in F16, as `[out, in]`.
  public static func dequantize(_ tensors: [PackedTensor], groupSize: Int) throws(FormatQuantizationError)
    -> DequantizedMatrix
  {
    let qweight = try PackedTensorLookup.find("qweight", in: tensors, format: format, dtypes: [.int32], shape: nil)
    guard qweight.shape.count == 2 else {
      throw .tensorMismatch(format: format, nameSuffix: "qweight", expected: "rank 2", actual: "\(qweight.shape)")
    }
    let rows = qweight.shape[1]
    let (cols, overflow) = qweight.shape[0].multipliedReportingOverflow(by: 8)
    guard !overflow, rows % 8 == 0 else { throw .badShape(format: format, shape: qweight.shape, elementCount: 0) }
    try PackedTensorLookup.matrixShape(rows: rows, columns: cols, format: format, groupSize: groupSize)
    let groups = cols / groupSize
    let qzeros = try PackedTensorLookup.find(
      "qzeros", in: tensors, format: format, dtypes: [.int32], shape: [groups, rows / 8])
    let scaleTensor = try PackedTensorLookup.find(
      "scales", in: tensors, format: format, dtypes: [.float16], shape: [groups, rows])
    let rowWords = Packing.transpose(
      GroupQuantRounding.decodeWords(qweight.bytes), rowCount: cols / 8, columnCount: rows)
    let codes = Packing.unpackRowsFromWords(rowWords, rowCount: rows, columnCount: cols, bits: 4)
    let zeros = Packing.unpackRowsFromWords(
      GroupQuantRounding.decodeWords(qzeros.bytes), rowCount: groups, columnCount: rows, bits: 4)
    let scales = GroupQuantRounding.decode(scaleTensor.bytes, as: .float16)
    var values = [Float](repeating: 0, count: rows * cols)
    for r in 0..<rows {
      for c in 0..<cols {
        let g = c / groupSize
        let level = Float(Int(codes[r * cols + c]) - Int(zeros[g * rows + r]) - 1)
        values[r * cols + c] = GroupQuantRounding.float16(scales[g * rows + r] * level)
      }
    }
    return DequantizedMatrix(values: values, rowCount: rows, columnCount: cols, dtype: .float16)
  }
}
