import TensorCore
import Testing

@testable import GGML

/// The fast kernels against their scalar twins on inputs the golden file does not hold: other row lengths
/// (lane batches with a scalar remainder), many more random rows, and degenerate blocks mixed into
/// ordinary rows.
@Suite("ggml fast kernels equal the scalar references")
struct GGMLKernelTwinTests {
  /// Gaussian rows with outliers, zero blocks, tiny and huge blocks and a block of rounding ties spliced in.
  static func rows(count: Int, length: Int, seed: UInt64) -> [Float] {
    var random = SplitMix64(seed: seed)
    var values = [Float](repeating: 0, count: count * length)
    for i in values.indices {
      values[i] = random.nextGaussian() * 0.02
      if random.next() % 97 == 0 { values[i] *= 25 }
    }
    for row in 0..<count {
      let block = Int(random.next() % UInt64(length / 32)) * 32
      switch row % 7 {
      case 1: for j in 0..<32 { values[row * length + block + j] = 0 }
      case 2: for j in 0..<32 { values[row * length + block + j] *= 1e-30 }
      case 3: for j in 0..<32 { values[row * length + block + j] *= 1e6 }
      case 4: for j in 0..<32 { values[row * length + block + j] = j % 2 == 0 ? 0 : -0.0 }
      case 5: for j in 0..<32 { values[row * length + block + j] = abs(values[row * length + block + j]) }
      // Q8_0's d is exactly 1 here, so every other element is a tie for roundf (ties away from zero).
      case 6: for j in 0..<32 { values[row * length + block + j] = j == 0 ? 127 : Float(j) - 15.5 }
      default: break
      }
    }
    return values
  }

  static func importance(length: Int, seed: UInt64) -> [Float] {
    var random = SplitMix64(seed: seed)
    return (0..<length).map { j in j % 37 == 0 ? 0 : Float(random.next() % 1000) / 100 + 0.01 }
  }

  @Test("quantization", arguments: GGMLKernels.supportedTypes)
  func quantization(type: GGMLType) throws {
    let kernels = try #require(GGMLKernels.forType(type))
    // 768: whole lane batches (3 super-blocks, 24 blocks); 352 = 11 blocks of 32: one batch of eight and three
    // scalar blocks.
    for length in [768, 352] where length % type.blockSize == 0 {
      let values = Self.rows(count: 12, length: length, seed: UInt64(length))
      let reference = try kernels.quantized(values, rowLength: length, .reference)
      let fast = try kernels.quantized(values, rowLength: length, .fast)
      let problem = GGMLGolden.firstDifference(fast, reference, type: type, rowLength: length)
      #expect(problem == nil, "\(type), rows of \(length): \(problem ?? "")")
      guard kernels.usesImportance else { continue }
      let weights = Self.importance(length: length, seed: 7)
      let weightedReference = try kernels.quantized(values, rowLength: length, importance: weights, .reference)
      let weightedFast = try kernels.quantized(values, rowLength: length, importance: weights, .fast)
      let weightedProblem = GGMLGolden.firstDifference(weightedFast, weightedReference, type: type, rowLength: length)
      #expect(weightedProblem == nil, "\(type) with importance, rows of \(length): \(weightedProblem ?? "")")
      #expect(weightedReference != reference, "\(type): the importance matrix must change the result")
    }
  }

  @Test("dequantization", arguments: GGMLKernels.supportedTypes)
  func dequantization(type: GGMLType) throws {
    let kernels = try #require(GGMLKernels.forType(type))
    let length = 768 % type.blockSize == 0 ? 768 : 512
    let blocks = try kernels.quantized(Self.rows(count: 8, length: length, seed: 3), rowLength: length, .reference)
    let reference = try kernels.dequantized(blocks, rowLength: length, .reference)
    let fast = try kernels.dequantized(blocks, rowLength: length, .fast)
    #expect(reference.map(\.bitPattern) == fast.map(\.bitPattern))
  }
}
