import Checkpoint
import CommandLineSupport
import Foundation
import ReferenceModel
import SmeltCommands
import Testing
import WeightSources
@testable import Validation

/// `smelt shard` output directories read back as the checkpoint they came from.
@Suite("shard output through the manifest")
struct ShardedSourceTests {
  /// Shards the layer-3 slice of the BF16 sample (small, so the debug build stays fast).
  static func shard(_ arguments: [String]) throws -> String {
    let output = try Fixtures.temporaryDirectory("shard") + "/out"
    let stderr = TextOutput.capture()
    let status = SmeltCommands.run(
      arguments: ["shard", try Fixtures.layerSlice.get(), output, "--quiet"] + arguments, stdout: .capture(), stderr: stderr)
    guard status == 0 else { throw Fixtures.Failure(description: "smelt shard failed: \(stderr.text)") }
    return output
  }

  @Test("tensor-parallel slices (dim 0 and dim 1) are stitched and experts found on their device: identical weights")
  func tensorParallel() throws {
    let output = try Self.shard(["--devices", "2", "--tensor-parallel"])
    let sharded = try CheckpointWeightProvider(path: output)
    #expect(sharded.source is ShardedTensorSource)
    let original = try CheckpointWeightProvider(path: try Fixtures.layerSlice.get())
    for name in [
      "model.layers.3.self_attn.q_b_proj.weight",  // split along dim 0
      "model.layers.3.self_attn.o_proj.weight",  // split along dim 1
      "model.layers.3.mlp.experts.7.down_proj.weight",  // on one device
      "model.layers.3.mlp.shared_experts.up_proj.weight",
      "model.layers.3.input_layernorm.weight",  // replicated
    ] {
      #expect(try sharded.weight(name) == original.weight(name), "\(name)")
    }
    #expect(try sharded.weightRows("model.layers.3.self_attn.o_proj.weight", rows: 3..<5)
      == original.weightRows("model.layers.3.self_attn.o_proj.weight", rows: 3..<5))
    #expect(Set(sharded.logicalNames) == Set(original.logicalNames))
    #expect(try sharded.modelConfiguration() == original.modelConfiguration())
  }

  @Test("deepseek-mp layout: renamed tensors map back to their source names; validate passes at every identical weight")
  func deepSeekLayout() throws {
    let output = try Self.shard(["--devices", "1", "--layout", "deepseek-mp"])
    let file = try Checkpoint.open(output + "/model0-mp1.safetensors")
    #expect(file.contains("layers.3.attn.wq_b.weight") && !file.contains("model.layers.3.self_attn.q_b_proj.weight"))
    let report = try Validator(
      reference: try CheckpointWeightProvider(path: try Fixtures.layerSlice.get()),
      candidate: try CheckpointWeightProvider(path: output), options: ValidationOptions(levels: [.tensor])
    ).run()
    #expect(report.passed, "\(report.failures.map(\.summary))")
    #expect(report.tensors.count > 10 && report.tensors.allSatisfy { $0.metrics.snrDecibels == .infinity })
  }
}
