import ReferenceModel
import Testing
@testable import Validation

@Suite("quality report: standard errors")
struct StandardErrorTests {
  static func statistics(kl: [Double], agreements: Int) throws -> LogitStatistics {
    let logits = try FloatTensor(shape: [1, kl.count, 2], values: [Float](repeating: 0, count: kl.count * 2))
    var stats = LogitStatistics(reference: logits, candidate: logits)
    stats.perPositionKL = kl
    stats.meanKL = kl.reduce(0, +) / Double(kl.count)
    stats.top1Agreements = agreements
    return stats
  }

  @Test("the mean KL's standard error is the sample standard deviation over √n, as llama.cpp prints it")
  func meanKL() throws {
    let stats = try Self.statistics(kl: [1, 2, 3, 4], agreements: 3)
    // Σ(x − 2.5)² = 5; 5 / 3 / 4 = 0.41667; llama.cpp: √((30/4 − 2.5²) / 3) = √(1.25 / 3), the same.
    #expect(abs(stats.meanKLStandardError - (5.0 / 3 / 4).squareRoot()) < 1e-12)
    #expect(abs(stats.meanKLStandardError - (1.25 / 3).squareRoot()) < 1e-12)
    #expect(try Self.statistics(kl: [0.5], agreements: 1).meanKLStandardError == 0)
    #expect(try Self.statistics(kl: [1, .infinity], agreements: 1).meanKLStandardError == .infinity)
  }

  @Test("top-1 agreement's standard error is the binomial √(p (1 − p) / (n − 1))")
  func top1() throws {
    let stats = try Self.statistics(kl: [0, 0, 0, 0], agreements: 3)
    #expect(abs(stats.top1StandardError - 0.25) < 1e-12)
    #expect(try Self.statistics(kl: [0, 0, 0, 0], agreements: 4).top1StandardError == 0)
  }
}
