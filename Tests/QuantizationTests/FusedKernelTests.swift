import TensorCore
import Testing
@testable import Quantization

/// The conversion runner's single-pass kernels (`FusedFP8`, `NonFinite`) against their scalar twins.
@Suite("Fused FP8 kernels and non-finite scans") struct FusedKernelTests {
  @Test("the lane E4M3 decoder matches the decode table for all 256 codes")
  func e4m3LanesMatchTable() {
    for base in stride(from: 0, to: 256, by: 8) {
      let codes = SIMD8<UInt8>((0..<8).map { UInt8(base + $0) })
      let lanes = E4M3Lanes.decode(codes)
      for lane in 0..<8 {
        let expected = Float8E4M3FN.float(fromBits: codes[lane])
        #expect(lanes[lane].bitPattern == expected.bitPattern, "code \(codes[lane])")
      }
    }
  }

  @Test("fused FP8 -> BF16 writes the kernel's bytes and the scalar twin's statistics")
  func fusedDequantizeMatchesKernel() throws {
    // 130 x 200: partial block row and column; every code (NaN and subnormals included) appears.
    let layout = try FP8BlockLayout(rows: 130, columns: 200, scheme: .block(rows: 128, columns: 128))
    let codes = (0..<layout.elementCount).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ $0 >> 8) }
    let scales: [Float] = [0.003, 1.7e-5, 2.5, 1e-30]
    var kernel = [UInt8](repeating: 0, count: layout.elementCount * 2)
    var fused = kernel
    var scalar = kernel
    try codes.withUnsafeBytes { c in
      try scales.withUnsafeBufferPointer { s in
        try kernel.withUnsafeMutableBytes { try BlockFP8.dequantize(c, scales: s, layout: layout, to: .bfloat16, into: $0) }
        // With NaN codes the statistics are NaN (the lane maximum keeps NaN, the scalar one skips it).
        let fast = fused.withUnsafeMutableBytes { FusedFP8.dequantizeToBF16(c, scales: s, layout: layout, into: $0) }
        let slow = scalar.withUnsafeMutableBytes { FusedFP8.dequantizeToBF16Reference(c, scales: s, layout: layout, into: $0) }
        #expect(fast.elementCount == slow.elementCount)
      }
    }
    #expect(fused == kernel)
    #expect(scalar == kernel)
    // Statistics on finite codes only (NaN codes make the energies NaN in both).
    let finite = codes.map { $0 & 0x7F == 0x7F ? 0 : $0 }
    try finite.withUnsafeBytes { c in
      try scales.withUnsafeBufferPointer { s in
        var out = [UInt8](repeating: 0, count: layout.elementCount * 2)
        let fast = out.withUnsafeMutableBytes { FusedFP8.dequantizeToBF16(c, scales: s, layout: layout, into: $0) }
        let slow = out.withUnsafeMutableBytes { FusedFP8.dequantizeToBF16Reference(c, scales: s, layout: layout, into: $0) }
        #expect(fast.maxAbsoluteError == slow.maxAbsoluteError)
        #expect(abs(fast.signalEnergy - slow.signalEnergy) <= 1e-5 * slow.signalEnergy)
        #expect(abs(fast.errorEnergy - slow.errorEnergy) <= 1e-5 * slow.errorEnergy)
      }
    }
  }

  @Test("fused quantization error equals dequantize-then-compare")
  func fusedQuantizationError() throws {
    let layout = try FP8BlockLayout(rows: 130, columns: 200, scheme: .block(rows: 128, columns: 128))
    var state: UInt32 = 7
    let source: [UInt16] = (0..<layout.elementCount).map { _ in
      state = state &* 1_664_525 &+ 1_013_904_223
      return BFloat16.bits(from: (Float(state >> 8) / Float(1 << 24) - 0.5) * 0.1)
    }
    var codes = [UInt8](repeating: 0, count: layout.elementCount)
    var scales = [Float](repeating: 0, count: layout.scaleCount)
    var back = [Float](repeating: 0, count: layout.elementCount)
    try source.withUnsafeBytes { src in
      try codes.withUnsafeMutableBytes { c in
        try scales.withUnsafeMutableBufferPointer { try BlockFP8.quantize(src, dtype: .bfloat16, layout: layout, weights: c, scales: $0) }
      }
    }
    try codes.withUnsafeBytes { c in
      try scales.withUnsafeBufferPointer { s in
        try back.withUnsafeMutableBytes { try BlockFP8.dequantize(c, scales: s, layout: layout, to: .float32, into: $0) }
      }
    }
    let reference = source.map(BFloat16.float(fromBits:))
    let expected = reference.withUnsafeBufferPointer { r in back.withUnsafeBufferPointer { ErrorStatistics.reference(reference: r, candidate: $0) } }
    let fused = source.withUnsafeBytes { src in
      codes.withUnsafeBytes { c in
        scales.withUnsafeBufferPointer { FusedFP8.quantizationError(source: src, .bfloat16, codes: c, scales: $0, layout: layout) }
      }
    }
    #expect(fused.elementCount == expected.elementCount)
    #expect(fused.maxAbsoluteError == expected.maxAbsoluteError)
    #expect(abs(fused.signalEnergy - expected.signalEnergy) <= 1e-5 * expected.signalEnergy)
    #expect(abs(fused.errorEnergy - expected.errorEnergy) <= 1e-5 * expected.errorEnergy)
  }

  @Test("non-finite scans count NaN/inf values and E4M3 NaN codes, with the first index")
  func nonFiniteScans() {
    for position in [0, 5, 8, 13, 16, 20] {
      var values = [Float](repeating: 1, count: 21)
      values[position] = position % 2 == 0 ? .nan : -.infinity
      values[20] = .infinity
      let scan = values.withUnsafeBufferPointer { NonFinite.scan($0) }
      #expect(scan.count == (position == 20 ? 1 : 2) && scan.first == position, "position \(position)")
      var codes = [UInt8](repeating: 0x7E, count: 21)
      codes[position] = position % 2 == 0 ? 0x7F : 0xFF
      let codeScan = codes.withUnsafeBytes { NonFinite.scanE4M3($0) }
      #expect(codeScan.count == 1 && codeScan.first == position, "code position \(position)")
    }
    #expect([Float](repeating: 3e38, count: 9).withUnsafeBufferPointer { NonFinite.scan($0) }.count == 0)
    #expect((0..<256).map { UInt8($0) }.withUnsafeBytes { NonFinite.scanE4M3($0) }.count == 2)
  }
}
