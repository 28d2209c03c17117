import TensorCore
import TestSupport

/// Sample paths and hand-made checkpoints (`TestSupport`) under the names the weight tests use.
enum Fixtures {
  static let bf16Sample = TestPaths.sample("tiny-deepseek-v3")
  static let fp8Sample = TestPaths.sample("tiny-deepseek-v3-fp8")
  static let goldenDirectory = TestPaths.repositoryRoot + "/Tests/ReferenceModelTests/Golden"

  static func writeCheckpoint(_ tensors: [(String, DType, [Int], [UInt8])], config: String? = nil) throws -> String {
    try TestCheckpoint.write(tensors, config: config)
  }

  static func bytes(_ values: [Float]) -> [UInt8] { TestCheckpoint.bytes(values) }
}
