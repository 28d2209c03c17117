#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// How far an approximation `approximation` is from `reference`, element by element (Double accumulation).
public struct ErrorMetrics: Sendable, Hashable, CustomStringConvertible {
  /// Elements compared.
  public var elementCount: Int
  /// `10·log10(Σ ref² / Σ (ref − approx)²)`; `+inf` when identical, `-inf` when the reference is all zero
  /// but the approximation is not.
  public var snrDecibels: Double
  /// `Σ ref·approx / (‖ref‖·‖approx‖)`; 1 when both are all zero, 0 when only one is.
  public var cosineSimilarity: Double
  /// `max |ref − approx|`.
  public var maxAbsoluteError: Double
  /// `max |ref − approx| / |ref|` over elements whose reference is non-zero.
  public var maxRelativeError: Double
  /// `sqrt(Σ (ref − approx)² / n)`.
  public var rootMeanSquareError: Double

  /// Compares two equally long buffers. Non-finite elements propagate into the sums (NaN metrics), which is
  /// the honest answer.
  public init(reference: UnsafeBufferPointer<Float>, approximation: UnsafeBufferPointer<Float>) {
    precondition(reference.count == approximation.count, "ErrorMetrics needs buffers of equal length")
    var signal = 0.0, noise = 0.0, dot = 0.0, approxEnergy = 0.0, maxAbs = 0.0, maxRel = 0.0
    for i in 0..<reference.count {
      let r = Double(reference[i])
      let a = Double(approximation[i])
      let d = r - a
      signal += r * r
      noise += d * d
      dot += r * a
      approxEnergy += a * a
      maxAbs = max(maxAbs, abs(d))
      if r != 0 { maxRel = max(maxRel, abs(d) / abs(r)) }
    }
    elementCount = reference.count
    if noise == 0 {
      snrDecibels = .infinity
    } else if signal == 0 {
      snrDecibels = -.infinity
    } else {
      snrDecibels = 10 * log10(signal / noise)
    }
    if signal == 0 && approxEnergy == 0 {
      cosineSimilarity = 1
    } else if signal == 0 || approxEnergy == 0 {
      cosineSimilarity = 0
    } else {
      cosineSimilarity = dot / (signal.squareRoot() * approxEnergy.squareRoot())
    }
    maxAbsoluteError = maxAbs
    maxRelativeError = maxRel
    rootMeanSquareError = reference.isEmpty ? 0 : (noise / Double(reference.count)).squareRoot()
  }

  /// Convenience over arrays.
  public init(reference: [Float], approximation: [Float]) {
    self = reference.withUnsafeBufferPointer { r in
      approximation.withUnsafeBufferPointer { a in ErrorMetrics(reference: r, approximation: a) }
    }
  }

  public var description: String {
    "snr \(snrDecibels) dB, cosine \(cosineSimilarity), max abs \(maxAbsoluteError), "
      + "max rel \(maxRelativeError), rmse \(rootMeanSquareError)"
  }
}
