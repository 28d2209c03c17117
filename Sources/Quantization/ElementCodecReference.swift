import TensorCore

extension ElementCodec {
  /// Scalar reference for `decode`: one element at a time through the scalar definitions.
  public static func decodeReference(
    _ source: UnsafeRawBufferPointer, dtype: DType, into destination: UnsafeMutableBufferPointer<Float>
  ) throws(QuantizationError) {
    try checkDecode(source, dtype: dtype, count: destination.count, operation: "decode")
    for i in 0..<destination.count { destination[i] = decodeElementReference(source, at: i, dtype: dtype) }
  }

  /// Scalar reference for `encode`: one element at a time through the reference encoders.
  public static func encodeReference(
    _ source: UnsafeBufferPointer<Float>, to dtype: DType, into destination: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    try checkEncode(count: source.count, dtype: dtype, destination: destination, operation: "encode")
    for i in 0..<source.count { encodeElementReference(source[i], at: i, dtype: dtype, into: destination) }
  }

  /// Scalar reference for `convert`: decode one element to `Float`, encode it (same dtype: a byte copy).
  public static func convertReference(
    _ source: UnsafeRawBufferPointer, from sourceDType: DType, to destinationDType: DType,
    into destination: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    let count = try elementCount(of: source, dtype: sourceDType, operation: "convert")
    try checkEncode(count: count, dtype: destinationDType, destination: destination, operation: "convert")
    if sourceDType == destinationDType {  // a copy, NaN payloads included
      for i in 0..<source.count { destination[i] = source[i] }
      return
    }
    for i in 0..<count {
      let value = decodeElementReference(source, at: i, dtype: sourceDType)
      encodeElementReference(value, at: i, dtype: destinationDType, into: destination)
    }
  }

  static func decodeElementReference(_ source: UnsafeRawBufferPointer, at i: Int, dtype: DType) -> Float {
    switch dtype {
    case .float32: source.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
    case .bfloat16: BFloat16.float(fromBits: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
    case .float16: Float16Conversion.float(fromBits: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
    case .float8E4M3FN: Float8E4M3FN.float(fromBits: source[i])
    case .float8E5M2: Float8E5M2.float(fromBits: source[i])
    // E8M0 by its bit pattern: 2^(e − 127) is the F32 with exponent field e (e = 0: the subnormal 2^-127).
    case .float8E8M0FNU: source[i] == 0xFF ? .nan : Float(bitPattern: source[i] == 0 ? 0x0040_0000 : UInt32(source[i]) << 23)
    case .bool: source[i] == 0 ? 0 : 1
    case .uint8: Float(source[i])
    case .int8: Float(Int8(bitPattern: source[i]))
    case .uint16: Float(source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
    case .int16: Float(source.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))
    case .uint32: Float(source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
    case .int32: Float(source.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
    case .uint64: Float(source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
    case .int64: Float(source.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
    case .float64: Float(source.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
    default: preconditionFailure("unchecked dtype \(dtype)")
    }
  }

  static func encodeElementReference(
    _ value: Float, at i: Int, dtype: DType, into destination: UnsafeMutableRawBufferPointer
  ) {
    switch dtype {
    case .float32: destination.storeBytes(of: value, toByteOffset: i * 4, as: Float.self)
    case .bfloat16:
      destination.storeBytes(of: BFloat16.bitsReference(from: value), toByteOffset: i * 2, as: UInt16.self)
    case .float16:
      destination.storeBytes(of: Float16Conversion.bitsReference(from: value), toByteOffset: i * 2, as: UInt16.self)
    case .float8E4M3FN: destination[i] = Float8E4M3FN.bitsSaturatingReference(from: value)
    case .float8E5M2: destination[i] = Float8E5M2.bitsSaturatingReference(from: value)
    default: preconditionFailure("unchecked dtype \(dtype)")
    }
  }
}
