import TensorCore

/// MXFP4 (OCP Microscaling): E2M1 elements in blocks of 32 along the input dimension, one E8M0 scale per block.
///
/// Every reader decodes `fp4(code) · 2^(scale − 127)`; writers differ only in how they pick the exponent
/// (see formats/mxfp4.md), so the rule is chosen per target layout.
public enum MXFP4 {
  static let format = "mxfp4"
  /// Elements per block.
  public static let blockSize = 32

  /// How the block exponent (and the element arithmetic around it) is chosen.
  public enum ScaleRule: String, Sendable, CaseIterable {
    /// compressed-tensors `mxfp4-pack-quantized` (`mxfp_utils.generate_mx_scales`): amax in the weight dtype,
    /// rounded up to a power of two when its mantissa is ≥ 1.75, `e = 127 + floor(log2) − 2`; elements
    /// `x / 2^(e−127)` in the weight dtype; sign bit only for `x < 0`.
    case compressedTensors
    /// gpt-oss / transformers `quantize_to_mxfp4` = triton_kernels `downcast_to_mxfp_torch` (ROUND_UP): input
    /// cast to BF16, `e = ceil(log2(amax / 6))` by adding 0x7FFFFF to the F32 bits, elements
    /// `x · (1 / 2^(e−127))` in F32, RNE E2M1 with the sign bit copied. Never clips.
    case gptOss
  }

  /// MXFP4 quantization in logical form.
  public struct Result: Sendable, Equatable {
    public var rowCount: Int
    public var columnCount: Int
    /// E2M1 codes `[rowCount, columnCount]`.
    public var codes: [UInt8]
    /// E8M0 bytes `[rowCount, columnCount / 32]`.
    public var scales: [UInt8]
  }

  // MARK: scale rules

  /// compressed-tensors' biased exponent for a block maximum `amax` (≥ 0, already in the weight dtype), and the
  /// scale value the elements are divided by (the weight-dtype parameter llm-compressor keeps).
  @inline(__always)
  static func compressedTensorsScale(amax: Float, dtype: DType) -> (byte: UInt8, divisor: Float) {
    let power: Float
    switch dtype {
    case .bfloat16:
      let bits = UInt32(amax.bitPattern >> 16)
      power = Float(bitPattern: ((bits &+ 32) & 0xFF80) << 16)
    case .float16:
      let bits = UInt32(Float16(amax).bitPattern)
      power = Float(Float16(bitPattern: UInt16(truncatingIfNeeded: (bits &+ 256) & 0xFC00)))
    default:
      power = Float(bitPattern: (amax.bitPattern &+ (1 << 21)) & 0xFF80_0000)
    }
    var exponent: Int
    if power == 0 {
      exponent = 0  // 127 + log2(0) − 2 = −inf, clamped to 0
    } else if power.isInfinite {
      exponent = 255
    } else {
      exponent = min(max(127 + Int(power.exponent) - 2, 0), 255)
    }
    var divisor = GroupQuantRounding.round(Float(sign: .plus, exponent: exponent - 127, significand: 1), to: dtype)
    if divisor == 0 {
      // The scale underflowed the weight dtype (F16 only); calculate_qparams swaps a zero scale for the
      // epsilon of the uint8 scale dtype, 1.
      divisor = 1
      exponent = 127
    }
    return (UInt8(exponent), divisor)
  }

  /// triton_kernels' ROUND_UP exponent for a block maximum `amax` (F32): the byte and the F32 reciprocal the
  /// elements are multiplied by.
  @inline(__always)
  static func gptOssScale(amax: Float) -> (byte: UInt8, multiplier: Float) {
    let rounded = ((amax / 6).bitPattern &+ 0x007F_FFFF) & 0x7F80_0000
    let scale = Float(bitPattern: rounded)
    return (UInt8(truncatingIfNeeded: rounded >> 23), scale == 0 ? 0 : 1 / scale)
  }

  static func validate(_ weight: WeightMatrix) throws(FormatQuantizationError) {
    try weight.validate(format: format, groupSize: blockSize)
  }

  // MARK: quantizers

  /// Scalar reference for `rule`.
  public static func quantizeReference(_ weight: WeightMatrix, rule: ScaleRule) throws(FormatQuantizationError)
    -> Result
  {
    try validate(weight)
    let rows = weight.rowCount
    let cols = weight.columnCount
    let blocks = cols / blockSize
    let dtype = weight.dtype
    var codes = [UInt8](repeating: 0, count: rows * cols)
    var scales = [UInt8](repeating: 0, count: rows * blocks)
    for b in 0..<rows * blocks {
      let start = b * blockSize
      switch rule {
      case .compressedTensors:
        var mn: Float = 0
        var mx: Float = 0
        for i in start..<start + blockSize {
          mn = min(mn, weight.values[i])
          mx = max(mx, weight.values[i])
        }
        let (byte, divisor) = compressedTensorsScale(amax: max(-mn, mx), dtype: dtype)
        scales[b] = byte
        for i in start..<start + blockSize {
          let v = min(max(GroupQuantRounding.round(weight.values[i] / divisor, to: dtype), -6), 6)
          codes[i] = FP4E2M1.encodeSignIfNegative(v)
        }
      case .gptOss:
        var amax: Float = 0
        for i in start..<start + blockSize {
          amax = max(amax, abs(GroupQuantRounding.bfloat16(weight.values[i])))
        }
        let (byte, multiplier) = gptOssScale(amax: amax)
        scales[b] = byte
        for i in start..<start + blockSize {
          codes[i] = FP4E2M1.encodeSignBit(GroupQuantRounding.bfloat16(weight.values[i]) * multiplier)
        }
      }
    }
    return Result(rowCount: rows, columnCount: cols, codes: codes, scales: scales)
  }

  /// Fast path: rows in parallel, SIMD8 over each block. Bit-identical to `quantizeReference`.
  public static func quantize(_ weight: WeightMatrix, rule: ScaleRule) throws(FormatQuantizationError) -> Result {
    try validate(weight)
    let dtype = weight.dtype
    let (codes, scales) = GroupQuantDriver.quantizeGroups(weight, groupSize: blockSize) {
      x, start, codeOut -> UInt8 in
      switch rule {
      case .compressedTensors:
        var mn = SIMD8<Float>(repeating: 0)
        var mx = SIMD8<Float>(repeating: 0)
        for i in stride(from: start, to: start + blockSize, by: 8) {
          let v = GroupQuantRounding.load8(x, i)
          mn = GroupQuantRounding.minimum(mn, v)
          mx = GroupQuantRounding.maximum(mx, v)
        }
        let (byte, divisor) = compressedTensorsScale(amax: max(-mn.min(), mx.max()), dtype: dtype)
        let divisorVector = SIMD8<Float>(repeating: divisor)
        let six = SIMD8<Float>(repeating: 6)
        for i in stride(from: start, to: start + blockSize, by: 8) {
          let v = GroupQuantRounding.minimum(
            GroupQuantRounding.maximum(
              GroupQuantRounding.round(GroupQuantRounding.load8(x, i) / divisorVector, to: dtype), -six),
            six)
          GroupQuantRounding.store8(FP4E2M1.codesSignIfNegative(v), into: codeOut, at: i)
        }
        return byte
      case .gptOss:
        var amax = SIMD8<Float>(repeating: 0)
        for i in stride(from: start, to: start + blockSize, by: 8) {
          amax = GroupQuantRounding.maximum(
            amax, GroupQuantRounding.magnitude(GroupQuantRounding.bfloat16(GroupQuantRounding.load8(x, i))))
        }
        let (byte, multiplier) = gptOssScale(amax: amax.max())
        for i in stride(from: start, to: start + blockSize, by: 8) {
          let v = GroupQuantRounding.bfloat16(GroupQuantRounding.load8(x, i)) * multiplier
          GroupQuantRounding.store8(FP4E2M1.codesSignBit(v), into: codeOut, at: i)
        }
        return byte
      }
    }
    return Result(rowCount: weight.rowCount, columnCount: weight.columnCount, codes: codes, scales: scales)
  }

  // MARK: layouts

  /// compressed-tensors `mxfp4-pack-quantized`: `weight_packed` U8 `[out, in/2]` (low nibble = even element) and
  /// `weight_scale` U8 `[out, in/32]`.
  public static func compressedTensorsTensors(_ result: Result) -> [PackedTensor] {
    [
      PackedTensor(
        nameSuffix: "weight_packed", dtype: .uint8, shape: [result.rowCount, result.columnCount / 2],
        bytes: Packing.packNibblePairs(result.codes)),
      PackedTensor(
        nameSuffix: "weight_scale", dtype: .uint8, shape: [result.rowCount, result.columnCount / blockSize],
        bytes: result.scales),
    ]
  }

  /// gpt-oss layout: `blocks` U8 `[out, in/32, 16]` (byte b of a block: low nibble = element 2b) and `scales` U8
  /// `[out, in/32]`. Checkpoints name them `<name>_blocks` / `<name>_scales` (e.g. `gate_up_proj_blocks`).
  public static func gptOssTensors(_ result: Result) -> [PackedTensor] {
    [
      PackedTensor(
        nameSuffix: "blocks", dtype: .uint8, shape: [result.rowCount, result.columnCount / blockSize, 16],
        bytes: Packing.packNibblePairs(result.codes)),
      PackedTensor(
        nameSuffix: "scales", dtype: .uint8, shape: [result.rowCount, result.columnCount / blockSize],
        bytes: result.scales),
    ]
  }

  /// What compressed-tensors' MXFP4 decompressor and transformers' gpt-oss dequantizer return (both BF16):
  /// `bf16(fp4(code) · 2^(e − 127))`.
  static func dequantize(codes: [UInt8], scales: [UInt8], rows: Int, cols: Int) -> DequantizedMatrix {
    var values = [Float](repeating: 0, count: rows * cols)
    for i in 0..<rows * cols {
      let v = FP4E2M1.decode(codes[i])
      let exponent = Int(scales[i / blockSize]) - 127
      let product = v == 0 ? v : Float(sign: v.sign, exponent: exponent, significand: abs(v))
      values[i] = GroupQuantRounding.bfloat16(product)
    }
    return DequantizedMatrix(values: values, rowCount: rows, columnCount: cols, dtype: .bfloat16)
  }

  /// Dequantizes compressed-tensors `weight_packed` / `weight_scale`.
  public static func dequantizeCompressedTensors(_ tensors: [PackedTensor]) throws(FormatQuantizationError)
    -> DequantizedMatrix
  {
    let layout = "compressed-tensors mxfp4-pack-quantized"
    let packed = try PackedTensorLookup.find("weight_packed", in: tensors, format: layout, dtypes: [.uint8], shape: nil)
    guard packed.shape.count == 2 else {
      throw .tensorMismatch(format: layout, nameSuffix: "weight_packed", expected: "rank 2", actual: "\(packed.shape)")
    }
    let rows = packed.shape[0]
    let cols = packed.shape[1] * 2
    try PackedTensorLookup.matrixShape(rows: rows, columns: cols, format: layout, groupSize: blockSize)
    let scales = try PackedTensorLookup.find(
      "weight_scale", in: tensors, format: layout, dtypes: [.uint8], shape: [rows, cols / blockSize])
    return dequantize(codes: Packing.unpackNibblePairs(packed.bytes), scales: scales.bytes, rows: rows, cols: cols)
  }

  /// Dequantizes gpt-oss `blocks` / `scales`.
  public static func dequantizeGptOss(_ tensors: [PackedTensor]) throws(FormatQuantizationError) -> DequantizedMatrix {
    let layout = "gpt-oss mxfp4"
    let blocks = try PackedTensorLookup.find("blocks", in: tensors, format: layout, dtypes: [.uint8], shape: nil)
    guard blocks.shape.count == 3, blocks.shape[2] == 16 else {
      throw .tensorMismatch(
        format: layout, nameSuffix: "blocks", expected: "[out, in/32, 16]", actual: "\(blocks.shape)")
    }
    let rows = blocks.shape[0]
    let cols = blocks.shape[1] * blockSize
    try PackedTensorLookup.matrixShape(rows: rows, columns: cols, format: layout, groupSize: blockSize)
    let scales = try PackedTensorLookup.find(
      "scales", in: tensors, format: layout, dtypes: [.uint8], shape: [rows, cols / blockSize])
    return dequantize(codes: Packing.unpackNibblePairs(blocks.bytes), scales: scales.bytes, rows: rows, cols: cols)
  }
}
