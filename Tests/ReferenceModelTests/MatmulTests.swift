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
