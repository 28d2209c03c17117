import Foundation
import TensorCore

@testable import Quantization

/// SplitMix64: a tiny deterministic generator so tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A standard normal sample (Box-Muller).
  mutating func gaussian() -> Float {
    let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
    let u2 = Double.random(in: 0..<1, using: &self)
    return Float((-2 * Foundation.log(u1)).squareRoot() * cos(2 * .pi * u2))
  }
}

/// Gaussian-like weights whose scale varies per row band (so blocks get different scales), with an
/// occasional zero row segment and tiny values that land in the E4M3 subnormal range.
func syntheticWeights(rows: Int, columns: Int, seed: UInt64) -> [Float] {
  var rng = SeededGenerator(seed: seed)
  var values = [Float](repeating: 0, count: rows * columns)
  for row in 0..<rows {
    let bandScale = Float(0.02) * Float(1 << (row / 37 % 5))
    for column in 0..<columns {
      let roll = UInt8.random(in: 0...99, using: &rng)
      if row % 41 == 40 && column < 150 { continue }  // zero stretches, some whole blocks
      values[row * columns + column] = roll == 0 ? rng.gaussian() * 1e-7 : rng.gaussian() * bandScale
    }
  }
  return values
}

/// The values a raw buffer of `dtype` holds, as Float.
func decoded(_ bytes: [UInt8], as dtype: DType, count: Int) throws -> [Float] {
  var out = [Float](repeating: 0, count: count)
  try bytes.withUnsafeBytes { src in
    try out.withUnsafeMutableBufferPointer { dst in try ElementCodec.decode(src, dtype: dtype, into: dst) }
  }
  return out
}

/// Result of one quantization call.
struct QuantizedFP8: Equatable {
  var weights: [UInt8]
  var scales: [Float]
  var scaleBits: [UInt32] { scales.map(\.bitPattern) }
  static func == (a: Self, b: Self) -> Bool { a.weights == b.weights && a.scaleBits == b.scaleBits }
}

/// Runs the fast (or reference) quantizer over `bytes` of `dtype`, read from an odd address.
func quantizeFP8(
  _ bytes: [UInt8], dtype: DType, layout: FP8BlockLayout, rule: FP8ScaleRule = .deepSeek, reference: Bool = false
) throws -> QuantizedFP8 {
  var result = QuantizedFP8(
    weights: [UInt8](repeating: 0xAA, count: layout.elementCount),
    scales: [Float](repeating: .nan, count: layout.scaleCount))
  let shifted = [0x55] + bytes
  try shifted.withUnsafeBytes { raw in
    let src = UnsafeRawBufferPointer(rebasing: raw[1...])
    try result.weights.withUnsafeMutableBytes { w in
      try result.scales.withUnsafeMutableBufferPointer { s in
        if reference {
          try BlockFP8.quantizeReference(src, dtype: dtype, layout: layout, rule: rule, weights: w, scales: s)
        } else {
          try BlockFP8.quantize(src, dtype: dtype, layout: layout, rule: rule, weights: w, scales: s)
        }
      }
    }
  }
  return result
}

/// Runs the fast (or reference) dequantizer, writing to an odd address; returns the output bytes.
func dequantizeFP8(
  _ q: QuantizedFP8, layout: FP8BlockLayout, to dtype: DType, reference: Bool = false
) throws -> [UInt8] {
  let width = dtype.byteWidth ?? 0
  var out = [UInt8](repeating: 0xAA, count: 1 + layout.elementCount * width)
  try q.weights.withUnsafeBytes { w in
    try q.scales.withUnsafeBufferPointer { s in
      try out.withUnsafeMutableBytes { raw in
        let dst = UnsafeMutableRawBufferPointer(rebasing: raw[1...])
        if reference {
          try BlockFP8.dequantizeReference(w, scales: s, layout: layout, to: dtype, into: dst)
        } else {
          try BlockFP8.dequantize(w, scales: s, layout: layout, to: dtype, into: dst)
        }
      }
    }
  }
  return Array(out.dropFirst())
}

extension QuantizedFP8: CustomStringConvertible {
  /// Short, so a failed expectation does not print megabytes.
  var description: String { "QuantizedFP8(\(weights.count) codes, \(scales.count) scales)" }
}

/// Elements that differ (or the length difference); keeps failure messages short.
func mismatchCount<T: Equatable>(_ a: [T], _ b: [T]) -> Int {
  zip(a, b).filter { $0 != $1 }.count + abs(a.count - b.count)
}
