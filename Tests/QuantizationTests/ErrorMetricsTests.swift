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

  @Test("the lane passes' maxima equal the scalar twin's exactly, the relative error included (zeros, tiny and huge values)")
  func laneMaximaEqualTheScalarTwin() {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next() -> Float {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      let unit = Float(state >> 40) / Float(1 << 24)
      let exponent = Int(state >> 33 & 63) - 40
      return (unit - 0.5) * Float(sign: .plus, exponent: exponent, significand: 1)
    }
    for count in [7, 8, 1000, 1024, 5000] {
      var reference = (0..<count).map { _ in next() }
      let candidate = reference.map { $0 * (1 + (next() > 0 ? 1e-3 : -2e-3)) }
      for i in stride(from: 0, to: count, by: 97) { reference[i] = 0 }
      let lanes = reference.withUnsafeBufferPointer { r in
        candidate.withUnsafeBufferPointer { c in
          var statistics = ErrorStatistics()
          statistics.add(reference: r, candidate: c)
          return statistics
        }
      }
      let scalar = reference.withUnsafeBufferPointer { r in
        candidate.withUnsafeBufferPointer { c in ErrorStatistics.reference(reference: r, candidate: c) }
      }
      #expect(lanes.maxRelativeError == scalar.maxRelativeError, "\(count)")
      #expect(lanes.maxAbsoluteError == scalar.maxAbsoluteError, "\(count)")
      #expect(lanes.referenceMaxAbsolute == scalar.referenceMaxAbsolute, "\(count)")
      #expect(lanes.maxRelativeError > 0, "\(count)")
    }
  }
}
