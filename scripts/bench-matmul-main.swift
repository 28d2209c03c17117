// Helper of scripts/bench-matmul: prints one line per shape, "rows inputs outputs gflops".
// With arguments `ROWS INPUTS OUTPUTS [STORAGE]` it times that one shape (STORAGE: f32, bf16 or fp8; the
// weight encoding the matmul dequantizes per tile), else every shape of `MatmulBenchmark.defaultShapes` in F32.
import ReferenceModel

let arguments = CommandLine.arguments.dropFirst().map { $0 }
let shapes: [MatmulBenchmark.Shape]
var storage = MatmulBenchmark.Storage.float32
if arguments.count >= 3, let rows = Int(arguments[0]), let inputs = Int(arguments[1]), let outputs = Int(arguments[2]) {
  shapes = [MatmulBenchmark.Shape(rowCount: rows, inputCount: inputs, outputCount: outputs)]
  if arguments.count > 3 {
    guard let chosen = MatmulBenchmark.Storage(rawValue: arguments[3]) else { fatalError("storage: f32, bf16 or fp8") }
    storage = chosen
  }
} else {
  shapes = MatmulBenchmark.defaultShapes
}
for result in MatmulBenchmark.run(shapes: shapes, storage: storage) {
  let shape = result.shape
  print("\(shape.rowCount) \(shape.inputCount) \(shape.outputCount) \(result.gigaflopsPerSecond)")
}
