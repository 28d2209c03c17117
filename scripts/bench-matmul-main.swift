// Helper of scripts/bench-matmul: prints one line per shape, "rows inputs outputs gflops".
import ReferenceModel

for result in MatmulBenchmark.run() {
  let shape = result.shape
  print("\(shape.rowCount) \(shape.inputCount) \(shape.outputCount) \(result.gigaflopsPerSecond)")
}
