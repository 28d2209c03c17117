import Foundation
import TensorCore

@testable import Quantization

/// Deterministic synthetic weights for the 4-bit tests.
enum Int4TestData {
  /// A 64-bit LCG + Box-Muller: Gaussian values with sigma 0.02.
  static func gaussian(rows: Int, columns: Int, seed: UInt64) -> [Float] {
    var state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    func next() -> Double {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return (Double(state >> 11) + 0.5) / Double(1 << 53)
    }
    return (0..<rows * columns).map { _ in
      let u1 = next()
      let u2 = next()
      return Float(0.02 * (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
  }

  /// Gaussian values with 1 % outliers at 12x, rounded to `dtype`.
  static func gaussianWithOutliers(rows: Int, columns: Int, seed: UInt64, dtype: DType = .float32) -> [Float] {
    var values = gaussian(rows: rows, columns: columns, seed: seed)
    for i in stride(from: Int(seed % 97), to: values.count, by: 97) { values[i] *= 12 }
    return values.map { GroupQuantRounding.round($0, to: dtype) }
  }

  /// Signal-to-noise ratio in dB.
  static func snr(_ original: [Float], _ reconstructed: [Float]) -> Double {
    var signal = 0.0
    var noise = 0.0
    for (a, b) in zip(original, reconstructed) {
      signal += Double(a) * Double(a)
      noise += Double(a - b) * Double(a - b)
    }
    return 10 * Foundation.log10(signal / max(noise, 1e-300))
  }
}
