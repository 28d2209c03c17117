import Checkpoint
import SafeTensors
import TestSupport
import Testing

/// A bundled sample as a GGUF mapping reads it: its config.json and every tensor's shape (FP8 scales included:
/// the mappings account for them).
struct MappingSample {
  let config: ModelConfig
  let shapes: [String: [Int]]

  init(_ name: String) throws {
    let checkpoint = try Checkpoint.open(TestPaths.sample(name))
    config = try #require(checkpoint.config)
    shapes = Dictionary(uniqueKeysWithValues: checkpoint.entries.map { ($0.name, $0.shape) })
  }
}
