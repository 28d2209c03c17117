import CMath


/// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator for seeded inputs — random
/// tokens and activations in `validate`, benchmark inputs, and reproducible tests.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A Float in [0, 1) with 24 random bits.
  public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

  /// A standard normal sample (Box-Muller).
  public mutating func nextGaussian() -> Float {
    let u1 = max(Double(next() >> 11) * 0x1p-53, 0x1p-60)
    let u2 = Double(next() >> 11) * 0x1p-53
    return Float((-2 * CMath.log(u1)).squareRoot() * CMath.cos(2 * Double.pi * u2))
  }
}
