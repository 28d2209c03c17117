#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif
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

  /// Shapes from DeepSeek-V3-size layers at 1, 16 and 128 tokens, and a square one.
  public static let defaultShapes: [Shape] = [
    Shape(rowCount: 1, inputCount: 7168, outputCount: 2048),
    Shape(rowCount: 16, inputCount: 7168, outputCount: 2048),
    Shape(rowCount: 128, inputCount: 7168, outputCount: 2048),
    Shape(rowCount: 128, inputCount: 2048, outputCount: 7168),
    Shape(rowCount: 512, inputCount: 1024, outputCount: 1024),
  ]

  /// Runs each shape `repetitions` times (after one warm-up) and keeps the best time.
  public static func run(shapes: [Shape] = defaultShapes, repetitions: Int = 5) -> [Result] {
    shapes.map { shape in
      var generator = SplitMix64(seed: 42)
      let x = (0..<(shape.rowCount * shape.inputCount)).map { _ in generator.nextUnitFloat() - 0.5 }
      let w = (0..<(shape.outputCount * shape.inputCount)).map { _ in generator.nextUnitFloat() - 0.5 }
      var best = Double.infinity
      var checksum: Float = 0
      for repetition in 0...max(1, repetitions) {
        let start = monotonicSeconds()
        let y = matmul(x, w, rowCount: shape.rowCount, inputCount: shape.inputCount, outputCount: shape.outputCount)
        let elapsed = monotonicSeconds() - start
        checksum += y[0]
        if repetition > 0 { best = min(best, elapsed) }
      }
      if checksum.isNaN { print("matmul benchmark: NaN result") }
      return Result(shape: shape, bestSeconds: best)
    }
  }

  static func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
  }
}

