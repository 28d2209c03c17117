import Testing

@testable import Quantization

@Suite("error metrics")
struct ErrorMetricsTests {
  @Test("identical buffers: infinite SNR, cosine 1, zero errors")
  func identical() {
    let m = ErrorStatistics(reference: [1, -2, 3], candidate: [1, -2, 3])
    #expect(m.snrDecibels == .infinity && m.cosineSimilarity == 1)
    #expect(m.maxAbsoluteError == 0 && m.maxRelativeError == 0 && m.rootMeanSquareError == 0)
  }

  @Test("known values")
  func known() {
    let m = ErrorStatistics(reference: [3, 4, 0, 0], candidate: [3, 4, 0.5, 0])
    // signal 25, noise 0.25 -> 20 dB; rmse sqrt(0.25/4) = 0.25
    #expect(abs(m.snrDecibels - 20) < 1e-12)
    #expect(abs(m.rootMeanSquareError - 0.25) < 1e-12)
    #expect(m.maxAbsoluteError == 0.5 && m.maxRelativeError == 0)
    #expect(abs(m.cosineSimilarity - 25 / (5 * 25.25.squareRoot())) < 1e-12)
    let r = ErrorStatistics(reference: [2, -4], candidate: [1, -5])
    #expect(r.maxRelativeError == 0.5)
  }

  @Test("all-zero reference")
  func zeroReference() {
    #expect(ErrorStatistics(reference: [0, 0], candidate: [0, 0]).cosineSimilarity == 1)
    let m = ErrorStatistics(reference: [0, 0], candidate: [1, 0])
    #expect(m.snrDecibels == -.infinity && m.cosineSimilarity == 0)
  }
}
