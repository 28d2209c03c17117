import TensorCore

/// Times `matmul` on fixed shapes, for comparison with numpy's `X @ W.T` (see `scripts/bench-matmul`).
public enum MatmulBenchmark {
  /// One shape: `Y[rows, outputs] = X[rows, inputs] · W[outputs, inputs]ᵀ`.
  public struct Shape: Sendable, Equatable, CustomStringConvertible {
    public var rowCount: Int
    public var inputCount: Int
    public var outputCount: Int
    public init(rowCount: Int, inputCount: Int, outputCount: Int) {
      self.rowCount = rowCount
      self.inputCount = inputCount
      self.outputCount = outputCount
    }
    /// Floating-point operations of one product (a multiply and an add per term).
    public var flopCount: Double { 2 * Double(rowCount) * Double(inputCount) * Double(outputCount) }
    public var description: String { "\(rowCount)x\(inputCount) · (\(outputCount)x\(inputCount))ᵀ" }
  }

  /// One shape's result.
  public struct Result: Sendable, CustomStringConvertible {
    public var shape: Shape
    /// The best time of the repetitions, in seconds.
    public var bestSeconds: Double
    /// `flopCount / bestSeconds / 1e9`.
    public var gigaflopsPerSecond: Double { shape.flopCount / bestSeconds / 1e9 }
    public var description: String {
      "\(shape): \(Int((bestSeconds * 1e6).rounded())) µs, \((gigaflopsPerSecond * 10).rounded() / 10) GFLOP/s"
    }
  }

  /// The projections of a full-size DeepSeek-V3 layer, `(inputs, outputs)`: q_a (7168 → 1536), kv_a
  /// (7168 → 576), an expert's gate/up (7168 → 2048), the dense MLP's gate/up (7168 → 18432), an expert's
  /// down (2048 → 7168), o_proj (16384 → 7168).
  public static let layerProjections: [(inputs: Int, outputs: Int)] = [
    (7168, 1536), (7168, 576), (7168, 2048), (7168, 18432), (2048, 7168), (16384, 7168),
  ]

  /// Each projection at 1, 16, 128 and 512 tokens, then a square one (same order as scripts/bench-matmul.py).
  public static let defaultShapes: [Shape] =
    layerProjections.flatMap { projection in
      [1, 16, 128, 512].map { Shape(rowCount: $0, inputCount: projection.inputs, outputCount: projection.outputs) }
    } + [Shape(rowCount: 512, inputCount: 1024, outputCount: 1024)]

  /// The weight encoding a benchmark run feeds the matmul.
  public enum Storage: String, Sendable {
    case float32 = "f32", bfloat16 = "bf16", float8Block = "fp8"
  }

  /// Runs each shape `repetitions` times (after one warm-up) and keeps the best time.
  public static func run(shapes: [Shape] = defaultShapes, storage: Storage = .float32, repetitions: Int = 5) -> [Result] {
    shapes.map { shape in
      var generator = SplitMix64(seed: 42)
      let x = (0..<(shape.rowCount * shape.inputCount)).map { _ in generator.nextUnitFloat() - 0.5 }
      let w = weight(shape, storage, &generator)
      var best = Double.infinity
      var checksum: Float = 0
      for repetition in 0...max(1, repetitions) {
        let start = monotonicSeconds()
        let y = matmul(x, w, rowCount: shape.rowCount)
        let elapsed = monotonicSeconds() - start
        checksum += y[0]
        if repetition > 0 { best = min(best, elapsed) }
      }
      if checksum.isNaN { print("matmul benchmark: NaN result") }
      return Result(shape: shape, bestSeconds: best)
    }
  }

  /// Random weights in `storage` (FP8 with DeepSeek's 128×128 scale blocks).
  static func weight(_ shape: Shape, _ storage: Storage, _ generator: inout SplitMix64) -> LinearWeight {
    let count = shape.outputCount * shape.inputCount
    let result: LinearWeight?
    switch storage {
    case .float32:
      result = try? LinearWeight(
        storage: .float32((0..<count).map { _ in generator.nextUnitFloat() - 0.5 }), outputCount: shape.outputCount,
        inputCount: shape.inputCount)
    case .bfloat16:
      result = try? LinearWeight(
        storage: .bfloat16((0..<count).map { _ in UInt16((generator.nextUnitFloat() - 0.5).bitPattern >> 16) }),
        outputCount: shape.outputCount, inputCount: shape.inputCount)
    case .float8Block:
      let scaleCount = ((shape.outputCount + 127) / 128) * ((shape.inputCount + 127) / 128)
      result = try? LinearWeight(
        storage: .float8Block(
          codes: (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next() % 0x7E) },
          scales: (0..<scaleCount).map { _ in generator.nextUnitFloat() * 1e-3 }, blockRows: 128, blockColumns: 128),
        outputCount: shape.outputCount, inputCount: shape.inputCount)
    }
    guard let result else { preconditionFailure("benchmark weight shape") }
    return result
  }

  static func monotonicSeconds() -> Double {
    let elapsed = ContinuousClock.now - epoch
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
  }
  private static let epoch = ContinuousClock.now
}

