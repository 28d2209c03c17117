import CMath

/// Rotary position embedding tables for one sequence length, built as transformers'
/// `DeepseekV3RotaryEmbedding` builds them: `inv_freq` from `_compute_default_rope_parameters` or
/// `_compute_yarn_parameters` (F32, step by step as torch rounds), `cos/sin(position · inv_freq)` times the
/// attention factor.
public struct RopeTable: Sendable {
  /// Rotary dimensions per head (`qk_rope_head_dim`).
  public let dimension: Int
  /// `inv_freq[dimension / 2]`.
  public let inverseFrequencies: [Float]
  /// The factor cos and sin are multiplied by (YaRN's "attention factor"; 1 without scaling).
  public let attentionFactor: Float
  /// YaRN's correction range `(low, high)` of dimension-pair indices; `nil` without scaling.
  public let correctionRange: (low: Double, high: Double)?
  /// Pairs rotate `(x[2i], x[2i+1])` (interleaved) or `(x[i], x[i + dimension/2])` (rotate-half).
  public let interleaved: Bool
  /// `cos[T, dimension / 2]` and `sin[T, dimension / 2]`, already times `attentionFactor`.
  public let cosines: [Float]
  public let sines: [Float]
  /// Positions covered (`0..<positionCount`).
  public let positionCount: Int

  /// Tables for positions `0..<positionCount`.
  public init(configuration: RopeConfiguration, dimension: Int, positionCount: Int) {
    self.dimension = dimension
    self.interleaved = configuration.interleaved
    self.positionCount = positionCount
    let half = dimension / 2
    let base = Float(configuration.theta)
    // pos_freqs = base ** (arange(0, dim, 2).float() / dim), in F32.
    let positionFrequencies = (0..<half).map { i in CMath.pow(base, Float(2 * i) / Float(dimension)) }

    if let yarn = configuration.yarn {
      let factor = yarn.factor
      func mscale(_ scale: Double, _ m: Double) -> Double { scale <= 1 ? 1 : 0.1 * m * CMath.log(scale) + 1 }
      let attention: Double
      if let explicit = yarn.attentionFactor {
        attention = explicit
      } else if let m = yarn.mscale, let all = yarn.mscaleAllDimensions, m != 0, all != 0 {
        attention = mscale(factor, m) / mscale(factor, all)
      } else {
        attention = mscale(factor, 1)
      }
      let range = Self.yarnCorrectionRange(
        betaFast: yarn.betaFast, betaSlow: yarn.betaSlow, dimension: dimension, base: configuration.theta,
        originalMaxPositionEmbeddings: yarn.originalMaxPositionEmbeddings, truncate: yarn.truncate)
      var low = Float(range.low), high = Float(range.high)
      if low == high { high += 0.001 }  // as transformers: avoids a division by zero
      let factorF = Float(factor)
      inverseFrequencies = (0..<half).map { i in
        let extrapolation = 1 / positionFrequencies[i]
        let interpolation = 1 / (factorF * positionFrequencies[i])
        let ramp = min(max((Float(i) - low) / (high - low), 0), 1)
        let extrapolationFactor = 1 - ramp
        return interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor
      }
      attentionFactor = Float(attention)
      correctionRange = range
    } else {
      inverseFrequencies = positionFrequencies.map { 1 / $0 }
      attentionFactor = 1
      correctionRange = nil
    }

    var cosines = [Float](repeating: 0, count: positionCount * half)
    var sines = [Float](repeating: 0, count: positionCount * half)
    for t in 0..<positionCount {
      for i in 0..<half {
        let angle = inverseFrequencies[i] * Float(t)
        cosines[t * half + i] = CMath.cos(angle) * attentionFactor
        sines[t * half + i] = CMath.sin(angle) * attentionFactor
      }
    }
    self.cosines = cosines
    self.sines = sines
  }

  /// YaRN's `find_correction_range`: the dimension-pair indices where `beta_fast` and `beta_slow` rotations
  /// fit in the original context, floored/ceiled when `truncate`, clamped to `0...dimension-1`.
  public static func yarnCorrectionRange(
    betaFast: Double, betaSlow: Double, dimension: Int, base: Double, originalMaxPositionEmbeddings: Int,
    truncate: Bool
  ) -> (low: Double, high: Double) {
    func correctionDimension(_ rotations: Double) -> Double {
      Double(dimension) * CMath.log(Double(originalMaxPositionEmbeddings) / (rotations * 2 * Double.pi)) / (2 * CMath.log(base))
    }
    var low = correctionDimension(betaFast)
    var high = correctionDimension(betaSlow)
    if truncate {
      low = low.rounded(.down)
      high = high.rounded(.up)
    }
    return (max(low, 0), min(high, Double(dimension - 1)))
  }

  /// Rotates `x[dimension]` (at `offset` in `buffer`) for `position`, in place.
  ///
  /// Interleaved (transformers' `apply_rotary_pos_emb_interleave`): the pairs are `(x[2i], x[2i+1])` and the
  /// result is written as transformers lays it out, evens then odds: `out[i] = x[2i]·cos − x[2i+1]·sin`,
  /// `out[i + d/2] = x[2i+1]·cos + x[2i]·sin`. Queries and keys both get this layout, so `q·k` is unchanged.
  /// Rotate-half: the pairs are `(x[i], x[i + d/2])`, written back in place.
  func rotate(_ buffer: inout [Float], offset: Int, position: Int) {
    let half = dimension / 2
    withUnsafeTemporaryAllocation(of: Float.self, capacity: dimension) { rotated in
      for i in 0..<half {
        let c = cosines[position * half + i], s = sines[position * half + i]
        let first = interleaved ? buffer[offset + 2 * i] : buffer[offset + i]
        let second = interleaved ? buffer[offset + 2 * i + 1] : buffer[offset + half + i]
        rotated[i] = first * c - second * s
        rotated[half + i] = second * c + first * s
      }
      for i in 0..<dimension { buffer[offset + i] = rotated[i] }
    }
  }
}

/// The attention softmax scale: `qk_head_dim^-0.5`, times `mscale²` with `mscale = 0.1·mscale_all_dim·ln(factor) + 1`
/// when `rope_scaling` sets a non-zero `mscale_all_dim` (transformers' `DeepseekV3Attention.__init__`).
public func attentionSoftmaxScale(queryKeyHeadDimension: Int, rope: RopeConfiguration) -> Double {
  var scale = 1 / Double(queryKeyHeadDimension).squareRoot()
  if let yarn = rope.yarn, let all = yarn.mscaleAllDimensions, all != 0 {
    let mscale = yarn.factor <= 1 ? 1 : 0.1 * all * CMath.log(yarn.factor) + 1
    scale *= mscale * mscale
  }
  return scale
}
