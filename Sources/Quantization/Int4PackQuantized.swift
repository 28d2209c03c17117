import TensorCore

/// compressed-tensors `pack-quantized` tensors for an int4 group result (vLLM, SGLang, transformers).
///
/// `weight_packed` I32 `[out, in/8]` (nibble `q + 8`, element 8j+k at bits 4k of word j), `weight_scale`
/// `[out, in/g]` in the weight dtype, `weight_shape` I64 `[2]`, and for asymmetric schemes
/// `weight_zero_point` I32 `[ceil(out/8), in/g]` packed along dim 0 (row 8i+k at bits 4k, offset +8).
public enum Int4PackQuantized {
  static let format = "compressed-tensors pack-quantized"

  /// The checkpoint tensors for `result`.
  public static func tensors(_ result: Int4GroupResult) -> [PackedTensor] {
    let rows = result.rowCount
    let cols = result.columnCount
    let groups = result.groupCount
    let words = Packing.packRowsIntoWords(result.codes, rowCount: rows, columnCount: cols, bits: 4)
    var out = [
      PackedTensor(
        nameSuffix: "weight_packed", dtype: .int32, shape: [rows, cols / 8],
        bytes: GroupQuantRounding.encodeWords(words)),
      PackedTensor(
        nameSuffix: "weight_scale", dtype: result.scaleDType, shape: [rows, groups],
        bytes: GroupQuantRounding.encode(result.scales, as: result.scaleDType)),
      PackedTensor(
        nameSuffix: "weight_shape", dtype: .int64, shape: [2],
        bytes: int64Bytes([Int64(rows), Int64(cols)])),
    ]
    if let zeros = result.zeroPoints {
      let offset = zeros.map { UInt8(truncatingIfNeeded: Int($0) + 8) }
      let zeroWords = Packing.packColumnsIntoWords(offset, rowCount: rows, columnCount: groups)
      out.append(
        PackedTensor(
          nameSuffix: "weight_zero_point", dtype: .int32, shape: [(rows + 7) / 8, groups],
          bytes: GroupQuantRounding.encodeWords(zeroWords)))
    }
    return out
  }

  /// What compressed-tensors' `PackedQuantizationCompressor.decompress` returns: `(q − zp) · scale` in the scale
  /// dtype.
  public static func dequantize(_ tensors: [PackedTensor], groupSize: Int) throws(FormatQuantizationError)
    -> DequantizedMatrix
  {
    let shapeTensor = try PackedTensorLookup.find(
      "weight_shape", in: tensors, format: format, dtypes: [.int64], shape: [2])
    let dims = int64Values(shapeTensor.bytes)
    guard dims.count == 2, let rows = Int(exactly: dims[0]), let cols = Int(exactly: dims[1]), cols % 8 == 0 else {
      throw .invalidStoredValue(format: format, nameSuffix: "weight_shape", detail: "\(dims)")
    }
    try PackedTensorLookup.matrixShape(rows: rows, columns: cols, format: format, groupSize: groupSize)
    let groups = cols / groupSize
    let packed = try PackedTensorLookup.find(
      "weight_packed", in: tensors, format: format, dtypes: [.int32], shape: [rows, cols / 8])
    let scaleTensor = try PackedTensorLookup.find(
      "weight_scale", in: tensors, format: format, dtypes: [.bfloat16, .float16, .float32], shape: [rows, groups])
    let dtype = scaleTensor.dtype
    let scales = GroupQuantRounding.decode(scaleTensor.bytes, as: dtype)
    let codes = Packing.unpackRowsFromWords(
      GroupQuantRounding.decodeWords(packed.bytes), rowCount: rows, columnCount: cols, bits: 4)
    var zeros = [Int](repeating: 0, count: rows * groups)
    if tensors.contains(where: { $0.nameSuffix == "weight_zero_point" }) {
      let zeroTensor = try PackedTensorLookup.find(
        "weight_zero_point", in: tensors, format: format, dtypes: [.int32], shape: [(rows + 7) / 8, groups])
      let nibbles = Packing.unpackColumnsFromWords(
        GroupQuantRounding.decodeWords(zeroTensor.bytes), rowCount: rows, columnCount: groups)
      zeros = nibbles.map { Int($0) - 8 }
    }
    var values = [Float](repeating: 0, count: rows * cols)
    for r in 0..<rows {
      for c in 0..<cols {
        let g = r * groups + c / groupSize
        let level = Float(Int(codes[r * cols + c]) - 8 - zeros[g])
        values[r * cols + c] = GroupQuantRounding.round(level * scales[g], to: dtype)
      }
    }
    return DequantizedMatrix(values: values, rowCount: rows, columnCount: cols, dtype: dtype)
  }

  static func int64Bytes(_ values: [Int64]) -> [UInt8] {
    var out: [UInt8] = []
    for v in values {
      let bits = UInt64(bitPattern: v)
      for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: bits >> UInt64(8 * k))) }
    }
    return out
  }

  static func int64Values(_ bytes: [UInt8]) -> [Int64] {
    (0..<bytes.count / 8).map { i in
      var bits: UInt64 = 0
      for k in 0..<8 { bits |= UInt64(bytes[8 * i + k]) << UInt64(8 * k) }
      return Int64(bitPattern: bits)
    }
  }
}
