#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// Running error statistics of an approximation against its reference, merged across row chunks.
public struct ErrorAccumulator: Sendable {
  public private(set) var elementCount = 0
  public private(set) var signalEnergy: Double = 0
  public private(set) var errorEnergy: Double = 0
  public private(set) var maxAbsoluteError: Double = 0

  public init() {}

  /// Statistics summed elsewhere (the SIMD pass in `ErrorStatistics`).
  init(elementCount: Int, signalEnergy: Double, errorEnergy: Double, maxAbsoluteError: Double) {
    self.elementCount = elementCount
    self.signalEnergy = signalEnergy
    self.errorEnergy = errorEnergy
    self.maxAbsoluteError = maxAbsoluteError
  }

  /// Adds `reference[i]` vs `approximation[i]` for every `i` whose reference is finite (NaN/infinite
  /// inputs are counted and reported by the caller; they would make every statistic NaN).
  public mutating func add(reference: UnsafeBufferPointer<Float>, approximation: UnsafeBufferPointer<Float>) {
    precondition(reference.count == approximation.count, "error accumulator: buffer lengths differ")
    var signal: Double = 0
    var noise: Double = 0
    var worst: Float = 0
    for i in 0..<reference.count {
      let x = reference[i]
      if !x.isFinite { continue }
      let d = approximation[i] - x
      signal += Double(x * x)
      noise += Double(d * d)
      worst = max(worst, abs(d))
    }
    elementCount += reference.count
    signalEnergy += signal
    errorEnergy += noise
    maxAbsoluteError = max(maxAbsoluteError, Double(worst))
  }

  /// Merges another chunk's statistics.
  public mutating func merge(_ other: ErrorAccumulator) {
    elementCount += other.elementCount
    signalEnergy += other.signalEnergy
    errorEnergy += other.errorEnergy
    maxAbsoluteError = max(maxAbsoluteError, other.maxAbsoluteError)
  }

  /// Signal-to-noise ratio in dB (`+inf` for an exact round trip).
  public var snrDecibels: Double {
    if errorEnergy == 0 { return .infinity }
    if signalEnergy == 0 { return -.infinity }
    return 10 * log10(signalEnergy / errorEnergy)
  }
}
