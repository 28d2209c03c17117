/// How much the batch's figures would move with another batch of the same size: the standard errors llama.cpp's
/// `perplexity --kl-divergence` prints next to its means (`mean ± SE`), with the same formulas
/// (`√((Σx²/n − mean²) / (n − 1))` for the KL, `√(p (1 − p) / (n − 1))` for the top-1 agreement).
extension LogitStatistics {
  /// The standard error of `meanKL`: the sample standard deviation of the per-position KL over √n (0 for fewer
  /// than two positions; infinite when a position's KL is).
  public var meanKLStandardError: Double {
    let n = perPositionKL.count
    guard n > 1 else { return 0 }
    guard perPositionKL.allSatisfy(\.isFinite) else { return .infinity }
    var sumOfSquares = 0.0
    for kl in perPositionKL { sumOfSquares += (kl - meanKL) * (kl - meanKL) }
    return (sumOfSquares / Double(n - 1) / Double(n)).squareRoot()
  }

  /// The standard error of `top1Fraction`, a binomial proportion: `√(p (1 − p) / (n − 1))` (0 for fewer than two
  /// positions).
  public var top1StandardError: Double {
    guard positionCount > 1 else { return 0 }
    let p = top1Fraction
    return (p * (1 - p) / Double(positionCount - 1)).squareRoot()
  }
}
