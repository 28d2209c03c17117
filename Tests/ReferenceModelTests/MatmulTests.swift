import TensorCore
import Testing
@testable import ReferenceModel

@Suite("matmul")
struct MatmulTests {
  @Test(
    "the SIMD kernel agrees with the Double-accumulating reference to F32 rounding",
    arguments: [(1, 7, 5), (4, 64, 3), (5, 37, 7), (9, 130, 10), (13, 8, 1), (2, 300, 16)])
  func agreesWithReference(shape: (Int, Int, Int)) {
    let (rows, inputs, outputs) = shape
    var generator = SplitMix64(seed: UInt64(rows * 1000 + inputs * 10 + outputs))
    let x = (0..<(rows * inputs)).map { _ in generator.nextUnitFloat() * 2 - 1 }
    let w = (0..<(outputs * inputs)).map { _ in generator.nextUnitFloat() * 2 - 1 }
    let fast = matmul(x, w, rowCount: rows, inputCount: inputs, outputCount: outputs)
    let reference = matmulReference(x, w, rowCount: rows, inputCount: inputs, outputCount: outputs)
    for t in 0..<rows {
      for o in 0..<outputs {
        var magnitude: Float = 0
        for i in 0..<inputs { magnitude += abs(x[t * inputs + i] * w[o * inputs + i]) }
        let error = abs(fast[t * outputs + o] - reference[t * outputs + o])
        #expect(error <= 2e-6 * Float(inputs).squareRoot() * magnitude + 1e-30, "row \(t) column \(o)")
      }
    }
  }

  @Test("the reference computes X · Wᵀ on a hand example")
  func handExample() {
    // X = [[1, 2], [3, 4]], W = [[1, 0], [0, 1], [1, 1]] → Y = [[1, 2, 3], [3, 4, 7]]
    let y = matmulReference([1, 2, 3, 4], [1, 0, 0, 1, 1, 1], rowCount: 2, inputCount: 2, outputCount: 3)
    #expect(y == [1, 2, 3, 3, 4, 7])
    #expect(matmul([1, 2, 3, 4], [1, 0, 0, 1, 1, 1], rowCount: 2, inputCount: 2, outputCount: 3) == y)
  }
}

@Suite("packed matmul")
struct PackedMatmulTests {
  /// Shapes around the blocking: T = 1 (the one-row kernel), T < 6, T across micro-panels; I around the depth
  /// block (256) and not a multiple of 8; O around the 16-column panel and the 64-column one-row group.
  static let shapes: [(Int, Int, Int)] = [
    (1, 7, 5), (1, 300, 70), (2, 256, 16), (5, 37, 17), (6, 513, 33), (7, 130, 64), (13, 8, 1), (19, 600, 100),
  ]

  static func random(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in generator.nextUnitFloat() * 2 - 1 }
  }

  @Test("F32 weights: bit-identical to the scalar fused-multiply-add twin", arguments: shapes)
  func float32MatchesScalarTwin(shape: (Int, Int, Int)) throws {
    let (rows, inputs, outputs) = shape
    let x = Self.random(rows * inputs, seed: 1)
    let w = try LinearWeight(storage: .float32(Self.random(outputs * inputs, seed: 2)), outputCount: outputs, inputCount: inputs)
    #expect(matmul(x, w, rowCount: rows) == matmulScalar(x, w, rowCount: rows))
  }

  @Test("BF16 weights dequantized per tile: bit-identical to the scalar twin", arguments: shapes)
  func bfloat16MatchesScalarTwin(shape: (Int, Int, Int)) throws {
    let (rows, inputs, outputs) = shape
    let x = Self.random(rows * inputs, seed: 3)
    let bits = Self.random(outputs * inputs, seed: 4).map { UInt16($0.bitPattern >> 16) }
    let w = try LinearWeight(storage: .bfloat16(bits), outputCount: outputs, inputCount: inputs)
    #expect(matmul(x, w, rowCount: rows) == matmulScalar(x, w, rowCount: rows))
    #expect(w.element(0, 0) == Float(bitPattern: UInt32(bits[0]) << 16))
  }

  @Test("FP8 block weights dequantized per tile: bit-identical to the scalar twin", arguments: shapes)
  func float8BlockMatchesScalarTwin(shape: (Int, Int, Int)) throws {
    let (rows, inputs, outputs) = shape
    let x = Self.random(rows * inputs, seed: 5)
    var generator = SplitMix64(seed: 6)
    // Every code but the NaNs (0x7F, 0xFF); 4×8 blocks so that tiles cross block edges.
    let codes = (0..<(outputs * inputs)).map { _ in UInt8(truncatingIfNeeded: generator.next() % 127) | (generator.next() % 2 == 0 ? 0 : 0x80) }
    let scaleCount = ((outputs + 3) / 4) * ((inputs + 7) / 8)
    let scales = Self.random(scaleCount, seed: 7).map { abs($0) + 0.01 }
    let w = try LinearWeight(
      storage: .float8Block(codes: codes, scales: scales, blockRows: 4, blockColumns: 8), outputCount: outputs,
      inputCount: inputs)
    #expect(matmul(x, w, rowCount: rows) == matmulScalar(x, w, rowCount: rows))
  }

  @Test("a product split over several threads matches the scalar twin, and one row alone matches its batch row")
  func splitOverThreadsMatchesScalarTwin() throws {
    let x = Self.random(9 * 700, seed: 8)
    let w = try LinearWeight(storage: .float32(Self.random(200 * 700, seed: 9)), outputCount: 200, inputCount: 700)
    #expect(matmul(x, w, rowCount: 9) == matmulScalar(x, w, rowCount: 9))
    #expect(matmul(Array(x[0..<700]), w, rowCount: 1) == Array(matmulScalar(x, w, rowCount: 9)[0..<200]))
  }

  @Test("a weight whose storage disagrees with its shape is refused")
  func mismatchedStorageRefused() {
    #expect(throws: ReferenceModelError.self) {
      try LinearWeight(storage: .bfloat16([1, 2, 3]), outputCount: 2, inputCount: 2)
    }
    #expect(throws: ReferenceModelError.self) {
      try LinearWeight(
        storage: .float8Block(codes: [0, 0, 0, 0], scales: [1], blockRows: 1, blockColumns: 2), outputCount: 2,
        inputCount: 2)
    }
  }
}

@Suite("matmul batch invariance")
struct MatmulBatchInvarianceTests {
  @Test("a row's result is bit-identical whether it is computed alone or inside any batch")
  func rowsIndependentOfBatch() {
    var generator = SplitMix64(seed: 99)
    let rows = 7, inputs = 1100, outputs = 11
    let x = (0..<(rows * inputs)).map { _ in generator.nextUnitFloat() - 0.5 }
    let w = (0..<(outputs * inputs)).map { _ in generator.nextUnitFloat() - 0.5 }
    let batch = matmul(x, w, rowCount: rows, inputCount: inputs, outputCount: outputs)
    for t in 0..<rows {
      let alone = matmul(
        Array(x[(t * inputs)..<((t + 1) * inputs)]), w, rowCount: 1, inputCount: inputs, outputCount: outputs)
      #expect(alone == Array(batch[(t * outputs)..<((t + 1) * outputs)]), "row \(t)")
    }
  }
}
