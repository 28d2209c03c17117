import TensorCore

/// NVFP4: E2M1 elements in blocks of 16 along the input dimension, an E4M3 block scale, and an F32 per-tensor
/// scale. Two writers with different arithmetic, each reproduced bit for bit.
public enum NVFP4 {
  static let format = "nvfp4"
  /// Elements per block.
  public static let blockSize = 16

  /// Whose quantizer (and naming) to reproduce.
  public enum Producer: String, Sendable, CaseIterable {
    /// NVIDIA ModelOpt `NVFP4QTensor.quantize` (dynamic path): `weight_scale_2 = amax / (6·448)`,
    /// block scale `e4m3(clamp(block_amax / (6·weight_scale_2), 2^-9, 448))` (0 → 1.0 first), elements
    /// `x / (scale · weight_scale_2)` in F32. Tensors `weight`, `weight_scale`, `weight_scale_2` (0-d).
    case modelOpt
    /// compressed-tensors `nvfp4-pack-quantized` (`generate_gparam`, `calculate_qparams`, `_quantize`): global
    /// `g = (1/amax)·2688` in the weight dtype, block scale `e4m3(clamp(g · (block_amax/6), ±448))` (0 → 0.125),
    /// elements `x / (scale / g)` in F32, clamped to ±6. Tensors `weight_packed`, `weight_scale`,
    /// `weight_global_scale` `[1]`.
    case compressedTensors
  }

  /// NVFP4 quantization in logical form.
  public struct Result: Sendable, Equatable {
    public var rowCount: Int
    public var columnCount: Int
    /// E2M1 codes `[rowCount, columnCount]`.
    public var codes: [UInt8]
    /// E4M3FN bytes `[rowCount, columnCount / 16]`.
    public var blockScales: [UInt8]
    /// ModelOpt `weight_scale_2` (a divisor's factor) or compressed-tensors `weight_global_scale` (its
    /// reciprocal), as the producer stores it.
    public var tensorScale: Float
    public var producer: Producer
  }

  static func validate(_ weight: WeightMatrix) throws(FormatQuantizationError) {
    try weight.validate(format: format, groupSize: blockSize)
  }

  /// The producer's per-tensor scale from the tensor's max |x| (exact in the weight dtype).
  @inline(__always)
  public static func tensorScale(amax: Float, producer: Producer, dtype: DType) -> Float {
    switch producer {
    case .modelOpt:
      return amax / 2688
    case .compressedTensors:
      // torch evaluates `2688.0 / t` as `t.reciprocal() * 2688.0`, each step in the weight dtype.
      let clamped = max(amax, GroupQuantRounding.tiny(dtype))
      let reciprocal = GroupQuantRounding.round(1 / clamped, to: dtype)
      let global = GroupQuantRounding.round(reciprocal * 2688, to: dtype)
      return global.isFinite ? global : 1
    }
  }

  /// The E4M3 block scale byte and the F32 divisor the block's elements are divided by. Scales are clamped
  /// to [0, 448] first, where the shared saturating E4M3FN codec is exactly torch's `.to(float8_e4m3fn)`.
  @inline(__always)
  static func blockScale(
    blockAmax: Float, tensorScale: Float, producer: Producer, dtype: DType
  ) -> (byte: UInt8, divisor: Float) {
    switch producer {
    case .modelOpt:
      if tensorScale == 0 {
        // An all-zero tensor: ModelOpt would divide 0 by 0 and store NaN scales; Smelt stores 1.0 and zeros.
        return (Float8E4M3FN.bitsSaturating(from: 1), 1)
      }
      var scale = blockAmax / (6 * tensorScale)
      if scale == 0 { scale = 1 }
      let byte = Float8E4M3FN.bitsSaturating(from: min(max(scale, 0.001953125), 448))
      return (byte, Float8E4M3FN.float(fromBits: byte) * tensorScale)
    case .compressedTensors:
      let local = tensorScale * GroupQuantRounding.round(blockAmax / 6, to: dtype)
      var byte = Float8E4M3FN.bitsSaturating(from: min(local, 448))
      if Float8E4M3FN.float(fromBits: byte) == 0 { byte = Float8E4M3FN.bitsSaturating(from: 0.125) }
      return (byte, Float8E4M3FN.float(fromBits: byte) / tensorScale)
    }
  }

  /// The element code of `x / divisor` for `producer`.
  @inline(__always)
  static func elementCode(_ x: Float, divisor: Float, producer: Producer) -> UInt8 {
    let v = x / divisor
    switch producer {
    case .modelOpt: return FP4E2M1.encodeSignIfNegative(v)
    case .compressedTensors: return FP4E2M1.encodeSignIfNegative(min(max(v, -6), 6))
    }
  }

  /// Scalar reference for `producer`. `tensorAmax`, when given, is the maximum |x| the per-tensor scale is
  /// derived from instead of the weight's own (never below it): the shared maximum of fused siblings
  /// (formats/nvfp4.md).
  public static func quantizeReference(
    _ weight: WeightMatrix, producer: Producer, tensorAmax: Float? = nil
  ) throws(FormatQuantizationError) -> Result {
    try validate(weight)
    let rows = weight.rowCount
    let cols = weight.columnCount
    let blocks = cols / blockSize
    var amax: Float = 0
    for v in weight.values { amax = max(amax, abs(v)) }
    amax = max(amax, tensorAmax ?? 0)
    let scale2 = tensorScale(amax: amax, producer: producer, dtype: weight.dtype)
    var codes = [UInt8](repeating: 0, count: rows * cols)
    var scales = [UInt8](repeating: 0, count: rows * blocks)
    for b in 0..<rows * blocks {
      let start = b * blockSize
      var blockAmax: Float = 0
      for i in start..<start + blockSize { blockAmax = max(blockAmax, abs(weight.values[i])) }
      let (byte, divisor) = blockScale(
        blockAmax: blockAmax, tensorScale: scale2, producer: producer, dtype: weight.dtype)
      scales[b] = byte
      for i in start..<start + blockSize {
        codes[i] = elementCode(weight.values[i], divisor: divisor, producer: producer)
      }
    }
    return Result(
      rowCount: rows, columnCount: cols, codes: codes, blockScales: scales, tensorScale: scale2, producer: producer)
  }

  /// Fast path: a parallel max pass, then rows in parallel with SIMD8 element math. Bit-identical to the
  /// reference (`tensorAmax` as there).
  public static func quantize(
    _ weight: WeightMatrix, producer: Producer, tensorAmax: Float? = nil
  ) throws(FormatQuantizationError) -> Result {
    try validate(weight)
    let rows = weight.rowCount
    let cols = weight.columnCount
    let dtype = weight.dtype
    let input = SharedRawBuffer(UnsafeRawBufferPointer(weight.values))
    var rowAmax = [Float](repeating: 0, count: rows)
    rowAmax.withUnsafeMutableBufferPointer { out in
      let amaxOut = DisjointMutableBuffer(out)
      Parallel.forEachChunk(count: rows, minimumChunk: max(1, 16384 / cols)) { rowRange in
        let x = input.bytes.assumingMemoryBound(to: Float.self)
        for r in rowRange {
          var m = SIMD8<Float>(repeating: 0)
          for i in stride(from: r * cols, to: (r + 1) * cols, by: 8) {
            m = GroupQuantRounding.maximum(m, GroupQuantRounding.magnitude(GroupQuantRounding.load8(x, i)))
          }
          amaxOut.buffer[r] = m.max()
        }
      }
    }
    let scale2 = tensorScale(amax: max(rowAmax.max() ?? 0, tensorAmax ?? 0), producer: producer, dtype: dtype)
    let (codes, scales) = GroupQuantDriver.quantizeGroups(weight, groupSize: blockSize) {
      x, start, codeOut -> UInt8 in
      let low = GroupQuantRounding.load8(x, start)
      let high = GroupQuantRounding.load8(x, start + 8)
      let blockAmax = GroupQuantRounding.maximum(
        GroupQuantRounding.magnitude(low), GroupQuantRounding.magnitude(high)
      ).max()
      let (byte, divisor) = blockScale(blockAmax: blockAmax, tensorScale: scale2, producer: producer, dtype: dtype)
      let divisorVector = SIMD8<Float>(repeating: divisor)
      let six = SIMD8<Float>(repeating: 6)
      for offset in stride(from: 0, to: 16, by: 8) {
        var v = (offset == 0 ? low : high) / divisorVector
        if producer == .compressedTensors {
          v = GroupQuantRounding.minimum(GroupQuantRounding.maximum(v, -six), six)
        }
        GroupQuantRounding.store8(FP4E2M1.codesSignIfNegative(v), into: codeOut, at: start + offset)
      }
      return byte
    }
    return Result(
      rowCount: rows, columnCount: cols, codes: codes, blockScales: scales, tensorScale: scale2, producer: producer)
  }

  /// The checkpoint tensors in the producer's naming.
  public static func tensors(_ result: Result) -> [PackedTensor] {
    let packedShape = [result.rowCount, result.columnCount / 2]
    let scaleShape = [result.rowCount, result.columnCount / blockSize]
    let scaleBytes = GroupQuantRounding.encode([result.tensorScale], as: .float32)
    switch result.producer {
    case .modelOpt:
      return [
        PackedTensor(
          nameSuffix: "weight", dtype: .uint8, shape: packedShape, bytes: Packing.packNibblePairs(result.codes)),
        PackedTensor(nameSuffix: "weight_scale", dtype: .float8E4M3FN, shape: scaleShape, bytes: result.blockScales),
        PackedTensor(nameSuffix: "weight_scale_2", dtype: .float32, shape: [], bytes: scaleBytes),
      ]
    case .compressedTensors:
      return [
        PackedTensor(
          nameSuffix: "weight_packed", dtype: .uint8, shape: packedShape, bytes: Packing.packNibblePairs(result.codes)),
        PackedTensor(nameSuffix: "weight_scale", dtype: .float8E4M3FN, shape: scaleShape, bytes: result.blockScales),
        PackedTensor(nameSuffix: "weight_global_scale", dtype: .float32, shape: [1], bytes: scaleBytes),
      ]
    }
  }

  /// What the producer's own dequantizer returns. ModelOpt: `fp4 · (scale · weight_scale_2)` in F32, cast to
  /// `outputDType` (the original weight dtype). compressed-tensors: `bf16(fp4 · (scale / global))` (always BF16).
  public static func dequantize(
    _ tensors: [PackedTensor], producer: Producer, outputDType: DType = .bfloat16
  ) throws(FormatQuantizationError) -> DequantizedMatrix {
    let layout = "nvfp4 (\(producer.rawValue))"
    let (packedName, scaleName, scale2Name, scale2Shape): (String, String, String, [Int]) =
      producer == .modelOpt
      ? ("weight", "weight_scale", "weight_scale_2", []) : ("weight_packed", "weight_scale", "weight_global_scale", [1])
    let packed = try PackedTensorLookup.find(packedName, in: tensors, format: layout, dtypes: [.uint8], shape: nil)
    guard packed.shape.count == 2 else {
      throw .tensorMismatch(format: layout, nameSuffix: packedName, expected: "rank 2", actual: "\(packed.shape)")
    }
    let rows = packed.shape[0]
    let cols = packed.shape[1] * 2
    try PackedTensorLookup.matrixShape(rows: rows, columns: cols, format: layout, groupSize: blockSize)
    let scales = try PackedTensorLookup.find(
      scaleName, in: tensors, format: layout, dtypes: [.float8E4M3FN], shape: [rows, cols / blockSize])
    let scale2Tensor = try PackedTensorLookup.find(
      scale2Name, in: tensors, format: layout, dtypes: [.float32], shape: scale2Shape)
    let scale2 = GroupQuantRounding.decode(scale2Tensor.bytes, as: .float32)[0]
    let codes = Packing.unpackNibblePairs(packed.bytes)
    let dtype = producer == .modelOpt ? outputDType : .bfloat16
    var values = [Float](repeating: 0, count: rows * cols)
    for i in 0..<rows * cols {
      let blockScale = Float8E4M3FN.float(fromBits: scales.bytes[i / blockSize])
      let factor = producer == .modelOpt ? blockScale * scale2 : blockScale / scale2
      // ModelOpt's lookup table maps code 8 to +0, compressed-tensors' to −0.
      let element = producer == .modelOpt && codes[i] == 8 ? 0 : FP4E2M1.decode(codes[i])
      values[i] = GroupQuantRounding.round(element * factor, to: dtype)
    }
    return DequantizedMatrix(values: values, rowCount: rows, columnCount: cols, dtype: dtype)
  }
}
