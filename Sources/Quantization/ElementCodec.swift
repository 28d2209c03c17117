import TensorCore

/// Whole-buffer element conversions between safetensors dtypes and `Float`.
///
/// Sources are raw bytes of any alignment (memory-mapped files), read with `loadUnaligned`; destinations of
/// raw type are written with unaligned stores. Each call checks sizes once and dispatches on the dtype
/// once, then runs a SIMD loop (`SIMD8`) or a table lookup. Calls are single-threaded: callers split large
/// tensors into ranges and run those in parallel. Every function has a scalar `...Reference` twin in
/// `ElementCodecReference.swift` that converts element by element from the definitions.
///
/// Rounding is round-to-nearest-even everywhere. FP8 encoding is saturating (`±inf` and overflow -> `±max`,
/// NaN stays NaN); see `formats/fp8.md`.
public enum ElementCodec {
  /// Whether `decode` accepts `dtype`: every float of 8 bits or more except FNUZ/complex (E8M0 as `2^(e − 127)`), and the
  /// integers (converted to the nearest `Float`) and `BOOL`.
  public static func canDecode(_ dtype: DType) -> Bool {
    switch dtype {
    case .float32, .float16, .bfloat16, .float8E4M3FN, .float8E5M2, .float8E8M0FNU, .float64, .bool, .uint8, .int8,
      .int16, .uint16, .int32, .uint32, .int64, .uint64:
      true
    default: false
    }
  }

  /// Whether `encode` accepts `dtype`: F32, F16, BF16, F8_E4M3, F8_E5M2.
  public static func canEncode(_ dtype: DType) -> Bool {
    switch dtype {
    case .float32, .float16, .bfloat16, .float8E4M3FN, .float8E5M2: true
    default: false
    }
  }

  /// Decodes `source` (`destination.count` elements of `dtype`, any alignment) into `destination`.
  public static func decode(
    _ source: UnsafeRawBufferPointer, dtype: DType, into destination: UnsafeMutableBufferPointer<Float>
  ) throws(QuantizationError) {
    try checkDecode(source, dtype: dtype, count: destination.count, operation: "decode")
    guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
    decodeUnchecked(src, dtype: dtype, into: dst, count: destination.count)
  }

  /// Encodes `source` into `destination` as `dtype` (F32, F16, BF16, F8_E4M3, F8_E5M2; FP8 saturating).
  public static func encode(
    _ source: UnsafeBufferPointer<Float>, to dtype: DType, into destination: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    try checkEncode(count: source.count, dtype: dtype, destination: destination, operation: "encode")
    guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
    encodeUnchecked(src, count: source.count, to: dtype, into: dst)
  }

  /// Converts `source` (elements of `sourceDType`) into `destination` as `destinationDType`.
  ///
  /// The same dtype on both sides is a byte copy (NaN payloads kept).
  /// BF16/F16 -> FP8 go through 65536-entry tables, FP8 -> 16-bit through 256-entry tables (FP8 values are
  /// exact in BF16 and F16), everything else through `Float` in chunks. Via-`Float` is exact for every
  /// supported source except F64 and 32/64-bit integers, which are rounded to `Float` first (double rounding).
  public static func convert(
    _ source: UnsafeRawBufferPointer, from sourceDType: DType, to destinationDType: DType,
    into destination: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    let count = try elementCount(of: source, dtype: sourceDType, operation: "convert")
    try checkEncode(count: count, dtype: destinationDType, destination: destination, operation: "convert")
    guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
    convertUnchecked(src, from: sourceDType, to: destinationDType, into: dst, count: count)
  }
}

// MARK: - Validation

extension ElementCodec {
  static func elementCount(of source: UnsafeRawBufferPointer, dtype: DType, operation: String)
    throws(QuantizationError) -> Int
  {
    guard canDecode(dtype), let width = dtype.byteWidth else {
      throw .unsupportedDType(dtype, operation: operation)
    }
    guard source.count % width == 0 else {
      throw .bufferSizeMismatch(
        buffer: "\(operation) source", expectedByteCount: source.count / width * width + width,
        actualByteCount: source.count)
    }
    return source.count / width
  }

  static func checkDecode(_ source: UnsafeRawBufferPointer, dtype: DType, count: Int, operation: String)
    throws(QuantizationError)
  {
    guard canDecode(dtype), let width = dtype.byteWidth else {
      throw .unsupportedDType(dtype, operation: operation)
    }
    let (expected, overflow) = count.multipliedReportingOverflow(by: width)
    guard !overflow, source.count == expected else {
      throw .bufferSizeMismatch(
        buffer: "\(operation) source", expectedByteCount: overflow ? Int.max : expected,
        actualByteCount: source.count)
    }
  }

  static func checkEncode(
    count: Int, dtype: DType, destination: UnsafeMutableRawBufferPointer, operation: String
  ) throws(QuantizationError) {
    guard canEncode(dtype), let width = dtype.byteWidth else {
      throw .unsupportedDType(dtype, operation: operation)
    }
    let (expected, overflow) = count.multipliedReportingOverflow(by: width)
    guard !overflow, destination.count == expected else {
      throw .bufferSizeMismatch(
        buffer: "\(operation) destination", expectedByteCount: overflow ? Int.max : expected,
        actualByteCount: destination.count)
    }
  }
}

// MARK: - Kernels (sizes already checked)

extension ElementCodec {
  static func decodeUnchecked(
    _ src: UnsafeRawPointer, dtype: DType, into dst: UnsafeMutablePointer<Float>, count: Int
  ) {
    switch dtype {
    case .float32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    case .bfloat16:
      decode16(src, dst, count, vector: BFloat16.floats(fromBits:), scalar: BFloat16.float(fromBits:))
    case .float16:
      decode16(
        src, dst, count, vector: Float16Conversion.floats(fromBits:), scalar: Float16Conversion.float(fromBits:))
    case .float8E4M3FN:
      var i = 0
      while i + 8 <= count {
        let codes = src.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt8>.self)
        UnsafeMutableRawPointer(dst + i).storeBytes(of: Float8Kernel<Float8E4M3FN>.decode(codes), as: SIMD8<Float>.self)
        i &+= 8
      }
      decode8(src + i, dst + i, count - i, table: Float8E4M3FN.decodeTable)
    case .float8E5M2: decode8(src, dst, count, table: Float8E5M2.decodeTable)
    case .float8E8M0FNU: decodeScalar(src, dst, count, UInt8.self) { E8M0.decode($0) }
    case .bool: decodeScalar(src, dst, count, UInt8.self) { $0 == 0 ? 0 : 1 }
    case .uint8: decodeScalar(src, dst, count, UInt8.self) { Float($0) }
    case .int8: decodeScalar(src, dst, count, Int8.self) { Float($0) }
    case .uint16: decodeScalar(src, dst, count, UInt16.self) { Float($0) }
    case .int16: decodeScalar(src, dst, count, Int16.self) { Float($0) }
    case .uint32: decodeScalar(src, dst, count, UInt32.self) { Float($0) }
    case .int32: decodeScalar(src, dst, count, Int32.self) { Float($0) }
    case .uint64: decodeScalar(src, dst, count, UInt64.self) { Float($0) }
    case .int64: decodeScalar(src, dst, count, Int64.self) { Float($0) }
    case .float64: decodeScalar(src, dst, count, Double.self) { Float($0) }
    default: preconditionFailure("unchecked dtype \(dtype)")  // unreachable: callers check canDecode
    }
  }

  static func encodeUnchecked(
    _ src: UnsafePointer<Float>, count: Int, to dtype: DType, into dst: UnsafeMutableRawPointer
  ) {
    switch dtype {
    case .float32: dst.copyMemory(from: src, byteCount: count * 4)
    case .bfloat16: encode16(src, dst, count, vector: BFloat16.bits(from:), scalar: BFloat16.bits(from:))
    case .float16:
      encode16(src, dst, count, vector: Float16Conversion.bits(from:), scalar: Float16Conversion.bits(from:))
    case .float8E4M3FN: encode8(src, dst, count, Float8E4M3FN.self)
    case .float8E5M2: encode8(src, dst, count, Float8E5M2.self)
    default: preconditionFailure("unchecked dtype \(dtype)")  // unreachable: callers check canEncode
    }
  }

  static func convertUnchecked(
    _ src: UnsafeRawPointer, from sourceDType: DType, to destinationDType: DType,
    into dst: UnsafeMutableRawPointer, count: Int
  ) {
    switch (sourceDType, destinationDType) {
    case _ where sourceDType == destinationDType:
      dst.copyMemory(from: src, byteCount: count * destinationDType.bitWidth / 8)
    case (.bfloat16, .float8E4M3FN): lookup16(src, dst, count, table: Float8E4M3FN.fromBFloat16Table)
    case (.bfloat16, .float8E5M2): lookup16(src, dst, count, table: Float8E5M2.fromBFloat16Table)
    case (.float16, .float8E4M3FN): lookup16(src, dst, count, table: Float8E4M3FN.fromFloat16Table)
    case (.float16, .float8E5M2): lookup16(src, dst, count, table: Float8E5M2.fromFloat16Table)
    case (.float8E4M3FN, .bfloat16), (.float8E4M3FN, .float16), (.float8E5M2, .bfloat16), (.float8E5M2, .float16):
      let decode = sourceDType == .float8E4M3FN ? Float8E4M3FN.decodeTable : Float8E5M2.decodeTable
      let table: [UInt16] = decode.map {
        destinationDType == .bfloat16 ? BFloat16.bits(from: $0) : Float16Conversion.bits(from: $0)
      }
      lookup8(src, dst, count, table: table)
    default:
      let chunk = 4096
      withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { scratch in
        guard let buffer = scratch.baseAddress else { return }
        let sourceWidth = sourceDType.bitWidth / 8
        let destinationWidth = destinationDType.bitWidth / 8
        var start = 0
        while start < count {
          let n = min(chunk, count - start)
          decodeUnchecked(src + start * sourceWidth, dtype: sourceDType, into: buffer, count: n)
          encodeUnchecked(buffer, count: n, to: destinationDType, into: dst + start * destinationWidth)
          start += n
        }
      }
    }
  }
}

// MARK: - Loops

@inline(__always)
func decode16(
  _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int,
  vector: (SIMD8<UInt16>) -> SIMD8<Float>, scalar: (UInt16) -> Float
) {
  var i = 0
  while i + 8 <= count {
    let bits = src.loadUnaligned(fromByteOffset: i &* 2, as: SIMD8<UInt16>.self)
    UnsafeMutableRawPointer(dst + i).storeBytes(of: vector(bits), as: SIMD8<Float>.self)
    i &+= 8
  }
  while i < count {
    dst[i] = scalar(src.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
    i &+= 1
  }
}

@inline(__always)
func decode8(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int, table: [Float]) {
  table.withUnsafeBufferPointer { table in
    guard let lut = table.baseAddress, table.count == 256 else { return }
    let bytes = src.assumingMemoryBound(to: UInt8.self)
    for i in 0..<count { dst[i] = lut[Int(bytes[i])] }
  }
}

@inline(__always)
func decodeScalar<T: BitwiseCopyable>(
  _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int, _: T.Type, _ convert: (T) -> Float
) {
  let stride = MemoryLayout<T>.size
  for i in 0..<count { dst[i] = convert(src.loadUnaligned(fromByteOffset: i &* stride, as: T.self)) }
}

@inline(__always)
func encode16(
  _ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int,
  vector: (SIMD8<Float>) -> SIMD8<UInt16>, scalar: (Float) -> UInt16
) {
  var i = 0
  while i + 8 <= count {
    let values = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
    dst.storeBytes(of: vector(values), toByteOffset: i &* 2, as: SIMD8<UInt16>.self)
    i &+= 8
  }
  while i < count {
    dst.storeBytes(of: scalar(src[i]), toByteOffset: i &* 2, as: UInt16.self)
    i &+= 1
  }
}

@inline(__always)
func encode8<F: Float8Format>(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int, _: F.Type) {
  var i = 0
  while i + 8 <= count {
    let values = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
    dst.storeBytes(of: Float8Kernel<F>.encodeSaturating(values), toByteOffset: i, as: SIMD8<UInt8>.self)
    i &+= 8
  }
  while i < count {
    dst.storeBytes(of: Float8Kernel<F>.encodeSaturating(src[i]), toByteOffset: i, as: UInt8.self)
    i &+= 1
  }
}

@inline(__always)
func lookup16(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ count: Int, table: [UInt8]) {
  table.withUnsafeBufferPointer { table in
    guard let lut = table.baseAddress, table.count == 65536 else { return }
    let out = dst.assumingMemoryBound(to: UInt8.self)
    for i in 0..<count { out[i] = lut[Int(src.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))] }
  }
}

@inline(__always)
func lookup8(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ count: Int, table: [UInt16]) {
  table.withUnsafeBufferPointer { table in
    guard let lut = table.baseAddress, table.count == 256 else { return }
    let bytes = src.assumingMemoryBound(to: UInt8.self)
    for i in 0..<count { dst.storeBytes(of: lut[Int(bytes[i])], toByteOffset: i &* 2, as: UInt16.self) }
  }
}
