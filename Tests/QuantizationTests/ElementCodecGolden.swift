import Foundation
import TensorCore
import Testing

@testable import Quantization

/// Reads the raw little-endian fixtures under `Golden/codecs/` (see the README there).
enum CodecGolden {
  static func data(_ name: String) throws -> Data {
    let folder = try #require(Bundle.module.url(forResource: "Golden", withExtension: nil))
    return try Data(contentsOf: folder.appendingPathComponent("codecs").appendingPathComponent(name))
  }

  static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try data(name)) }

  static func words(_ name: String) throws -> [UInt16] {
    let raw = try data(name)
    return raw.withUnsafeBytes { buffer in
      (0..<raw.count / 2).map { UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
    }
  }

  static func floats(_ name: String) throws -> [Float] {
    let raw = try data(name)
    return raw.withUnsafeBytes { buffer in
      (0..<raw.count / 4).map {
        Float(bitPattern: UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
      }
    }
  }

  /// Inputs and ml_dtypes outputs of one input set (`special` or `random`).
  struct Vectors {
    let inputs: [Float]
    let e4m3: [UInt8]
    let e5m2: [UInt8]
    let bf16: [UInt16]
    let f16: [UInt16]
  }

  static func vectors(_ stem: String) throws -> Vectors {
    let vectors = Vectors(
      inputs: try floats("\(stem)_input.f32"), e4m3: try bytes("\(stem)_e4m3fn.u8"),
      e5m2: try bytes("\(stem)_e5m2.u8"), bf16: try words("\(stem)_bf16.u16"), f16: try words("\(stem)_f16.u16"))
    try #require(vectors.inputs.count > 0)
    try #require(vectors.e4m3.count == vectors.inputs.count && vectors.e5m2.count == vectors.inputs.count)
    try #require(vectors.bf16.count == vectors.inputs.count && vectors.f16.count == vectors.inputs.count)
    return vectors
  }

  /// What Smelt's saturating encoder must produce where ml_dtypes' non-saturating cast gave `golden`:
  /// the same byte, except that overflow results (NaN for E4M3FN, infinity for E5M2) of a non-NaN input
  /// become ±max.
  static func saturated<F: Float8Format>(_ golden: UInt8, input: Float, _: F.Type) -> UInt8 {
    guard !input.isNaN, golden & 0x7F == F.overflowBits else { return golden }
    return golden & 0x80 | F.maxFiniteBits
  }

  /// F16 NaN payloads differ between numpy and F16C; compare NaN-ness and sign for NaNs, bits otherwise.
  static func sameHalf(_ a: UInt16, _ b: UInt16) -> Bool {
    let aNaN = a & 0x7FFF > 0x7C00
    let bNaN = b & 0x7FFF > 0x7C00
    if aNaN || bNaN { return aNaN && bNaN && a & 0x8000 == b & 0x8000 }
    return a == b
  }
}

/// `ElementCodec.encode` of an array into a fresh byte array.
func encoded(_ values: [Float], as dtype: DType) throws -> [UInt8] {
  var out = [UInt8](repeating: 0, count: values.count * (dtype.byteWidth ?? 0))
  try values.withUnsafeBufferPointer { src in
    try out.withUnsafeMutableBytes { dst in try ElementCodec.encode(src, to: dtype, into: dst) }
  }
  return out
}

/// Narrows `inputs` to a 16-bit `dtype` three ways (`scalar`, `reference`, and the SIMD path of
/// `ElementCodec.encode`) and counts the inputs where `agree(scalar, reference, vector, expected)` fails,
/// recording the first five.
func narrowingMismatches(
  _ inputs: [Float], expected: [UInt16], dtype: DType, scalar: (Float) -> UInt16, reference: (Float) -> UInt16,
  agree: (_ scalar: UInt16, _ reference: UInt16, _ vector: UInt16, _ expected: UInt16) -> Bool
) throws -> Int {
  let simd = try encoded(inputs, as: dtype)
  var mismatches = 0
  for i in inputs.indices {
    let vector = UInt16(simd[2 * i]) | UInt16(simd[2 * i + 1]) << 8
    let (s, r) = (scalar(inputs[i]), reference(inputs[i]))
    if !agree(s, r, vector, expected[i]) {
      if mismatches < 5 { Issue.record("\(inputs[i]): \(expected[i]) vs \(s) \(r) \(vector)") }
      mismatches += 1
    }
  }
  return mismatches
}
