import TensorCore

/// One output tensor of a 4-bit (or MLX 8-bit) quantizer: the bytes a checkpoint stores under
/// `<module>.<nameSuffix>`, little-endian, with the dtype and shape the consumer expects.
public struct PackedTensor: Sendable, Equatable {
  /// The name after the module prefix, e.g. `weight_packed`, `weight_scale`, `qweight`, `scales`.
  public var nameSuffix: String
  /// The safetensors dtype.
  public var dtype: DType
  /// The shape; `[]` for a 0-d scalar.
  public var shape: [Int]
  /// The raw little-endian bytes, `ByteCount.of(dtype, shape:)` of them.
  public var bytes: [UInt8]

  public init(nameSuffix: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
    self.nameSuffix = nameSuffix
    self.dtype = dtype
    self.shape = shape
    self.bytes = bytes
  }
}

/// An F32 weight `[rowCount, columnCount]` (row-major, `[out, in]`) to quantize along the columns.
///
/// `dtype` is the dtype the checkpoint holds the weight in (F32, BF16 or F16); the values must be exactly
/// representable in it. Reference quantizers compute their intermediates in that dtype where the consumer
/// does (compressed-tensors), and store scales in it where the format says "weight dtype".
public struct WeightMatrix {
  /// The weight values, `rowCount * columnCount` of them.
  public let values: UnsafeBufferPointer<Float>
  /// Output channels (`out`).
  public let rowCount: Int
  /// Input channels (`in`), the quantized dimension.
  public let columnCount: Int
  /// The dtype the source checkpoint stores this weight in.
  public let dtype: DType

  /// Wraps `values` after checking the shape and dtype.
  public init(values: UnsafeBufferPointer<Float>, rowCount: Int, columnCount: Int, dtype: DType)
    throws(FormatQuantizationError)
  {
    guard rowCount > 0, columnCount > 0, let count = ByteCount.elementCount([rowCount, columnCount]),
      count == values.count
    else { throw .badShape(format: "weight", shape: [rowCount, columnCount], elementCount: values.count) }
    guard dtype == .float32 || dtype == .bfloat16 || dtype == .float16 else {
      throw .unsupportedSourceDType(format: "weight", dtype: dtype)
    }
    self.values = values
    self.rowCount = rowCount
    self.columnCount = columnCount
    self.dtype = dtype
  }

  /// Checks that `groupSize` divides the columns and every value is finite.
  func validate(format: String, groupSize: Int) throws(FormatQuantizationError) {
    guard columnCount % groupSize == 0 else {
      throw .partialGroup(format: format, columnCount: columnCount, groupSize: groupSize)
    }
    if let bad = GroupQuantScan.firstNonFinite(values) {
      throw .nonFiniteInput(format: format, row: bad / columnCount, column: bad % columnCount)
    }
  }
}

/// Finite-value scan shared by the quantizers (parallel, SIMD).
enum GroupQuantScan {
  /// The index of the first NaN or infinity, or `nil`.
  static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
    guard values.baseAddress != nil else { return nil }
    let count = values.count
    let chunk = 1 << 16
    let chunkCount = (count + chunk - 1) / chunk
    var firstBad = [Int](repeating: Int.max, count: chunkCount)
    let shared = SharedRawBuffer(UnsafeRawBufferPointer(values))
    firstBad.withUnsafeMutableBufferPointer { out in
      let results = DisjointMutableBuffer(out)
      Parallel.forEachChunk(count: chunkCount, minimumChunk: 4) { range in
        let floats = shared.bytes.assumingMemoryBound(to: Float.self)
        for c in range {
          let start = c * chunk
          let end = min(count, start + chunk)
          var i = start
          // An exponent field of all ones (NaN, infinity) carries into bit 31 when 2^23 is added; OR-reduce
          // 256 elements at a time and let the scalar loop below find the exact index.
          while i + 256 <= end {
            var flags = SIMD8<UInt32>(repeating: 0)
            for k in stride(from: i, to: i + 256, by: 8) {
              let bits = unsafeBitCast(GroupQuantRounding.load8(floats, k), to: SIMD8<UInt32>.self)
              flags |= (bits & 0x7F80_0000) &+ 0x0080_0000
            }
            if (flags & 0x8000_0000) != SIMD8(repeating: 0) { break }
            i += 256
          }
          while i < end {
            if !floats[i].isFinite {
              results.buffer[c] = i
              break
            }
            i += 1
          }
        }
      }
    }
    let first = firstBad.min() ?? Int.max
    return first == Int.max ? nil : first
  }
}
