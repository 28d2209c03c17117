import TensorCore
import Testing

@testable import Quantization

@Suite("whole-buffer element codecs")
struct ElementCodecTests {
  static let decodable: [DType] = DType.allCases.filter { ElementCodec.canDecode($0) }
  static let encodable: [DType] = DType.allCases.filter { ElementCodec.canEncode($0) }

  /// Random bytes (every bit pattern class, NaNs included), 203 elements, read from an odd address.
  func randomSource(_ dtype: DType, seed: UInt64) -> [UInt8] {
    var rng = SeededGenerator(seed: seed)
    return [0x5A] + (0..<203 * (dtype.byteWidth ?? 1)).map { _ in UInt8.random(in: 0...255, using: &rng) }
  }

  @Test("decode agrees with the scalar reference bit for bit", arguments: decodable)
  func decodeMatchesReference(dtype: DType) throws {
    let bytes = randomSource(dtype, seed: 1)
    var fast = [Float](repeating: 0, count: 203)
    var reference = [Float](repeating: 1, count: 203)
    try bytes.withUnsafeBytes { raw in
      let src = UnsafeRawBufferPointer(rebasing: raw[1...])
      try fast.withUnsafeMutableBufferPointer { try ElementCodec.decode(src, dtype: dtype, into: $0) }
      try reference.withUnsafeMutableBufferPointer { try ElementCodec.decodeReference(src, dtype: dtype, into: $0) }
    }
    #expect(mismatchCount(fast.map(\.bitPattern), reference.map(\.bitPattern)) == 0)
  }

  @Test("encode agrees with the scalar reference bit for bit", arguments: encodable)
  func encodeMatchesReference(dtype: DType) throws {
    let specials: [Float] = [.nan, -.nan, .infinity, -.infinity, 0, -0, 1e-45, 65520, 464, 480, 57344, 61440, 1e30]
    var rng = SeededGenerator(seed: 2)
    let values = specials + (0..<190).map { _ in
      Float(sign: Bool.random(using: &rng) ? .minus : .plus, exponent: Int.random(in: -30...30, using: &rng),
            significand: Float.random(in: 1..<2, using: &rng))
    }
    let width = dtype.byteWidth ?? 0
    var fast = [UInt8](repeating: 0, count: 1 + values.count * width)
    var reference = [UInt8](repeating: 0, count: 1 + values.count * width)
    try values.withUnsafeBufferPointer { src in
      try fast.withUnsafeMutableBytes { try ElementCodec.encode(src, to: dtype, into: UnsafeMutableRawBufferPointer(rebasing: $0[1...])) }
      try reference.withUnsafeMutableBytes {
        try ElementCodec.encodeReference(src, to: dtype, into: UnsafeMutableRawBufferPointer(rebasing: $0[1...]))
      }
    }
    #expect(mismatchCount(fast, reference) == 0)
  }

  @Test("convert agrees with the reference for every supported pair")
  func convertMatchesReference() throws {
    for source in Self.decodable {
      let bytes = randomSource(source, seed: 3)
      for target in Self.encodable {
        let width = target.byteWidth ?? 0
        var fast = [UInt8](repeating: 0, count: 203 * width)
        var reference = [UInt8](repeating: 0, count: 203 * width)
        try bytes.withUnsafeBytes { raw in
          let src = UnsafeRawBufferPointer(rebasing: raw[1...])
          try fast.withUnsafeMutableBytes { try ElementCodec.convert(src, from: source, to: target, into: $0) }
          try reference.withUnsafeMutableBytes {
            try ElementCodec.convertReference(src, from: source, to: target, into: $0)
          }
        }
        #expect(mismatchCount(fast, reference) == 0, "\(source) -> \(target)")
      }
    }
  }

  @Test("sizes and dtypes are checked")
  func errors() {
    var out = [Float](repeating: 0, count: 3)
    #expect(throws: QuantizationError.bufferSizeMismatch(buffer: "decode source", expectedByteCount: 6, actualByteCount: 5)) {
      try [UInt8](repeating: 0, count: 5).withUnsafeBytes { src in
        try out.withUnsafeMutableBufferPointer { try ElementCodec.decode(src, dtype: .bfloat16, into: $0) }
      }
    }
    #expect(throws: QuantizationError.unsupportedDType(.float4E2M1, operation: "decode")) {
      try [UInt8](repeating: 0, count: 2).withUnsafeBytes { src in
        try out.withUnsafeMutableBufferPointer { try ElementCodec.decode(src, dtype: .float4E2M1, into: $0) }
      }
    }
    var bytes = [UInt8](repeating: 0, count: 4)
    #expect(throws: QuantizationError.self) {
      try [Float](repeating: 0, count: 3).withUnsafeBufferPointer { src in
        try bytes.withUnsafeMutableBytes { try ElementCodec.encode(src, to: .int32, into: $0) }
      }
    }
    #expect(throws: QuantizationError.self) {
      try [UInt8](repeating: 0, count: 3).withUnsafeBytes { src in
        try bytes.withUnsafeMutableBytes { try ElementCodec.convert(src, from: .bfloat16, to: .float8E4M3FN, into: $0) }
      }
    }
  }
}
