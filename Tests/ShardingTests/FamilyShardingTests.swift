import Checkpoint
import Sharding
import SystemIO
import Testing

@Suite("sharding by model family")
struct FamilyShardingTests {
  static func sample(_ name: String) throws -> ShardSource {
    try Fixtures.source(FileSystem.join(Fixtures.repositoryRoot, "samples", name))
  }

  @Test("grouped-query tensor parallelism (gpt-oss): q/k/v and their biases column-parallel on whole heads, sinks per head, o_proj row-parallel, experts whole")
  func groupedQuery() throws {
    let source = try Self.sample("tiny-gpt-oss")
    let plan = try ShardPlanner.plan(source, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 2), tensorParallel: true))
    let device = plan.devices[1]
    func slice(_ name: String) -> TensorSlice? { device.tensors.first { $0.name == name }?.slice }
    #expect(slice("model.layers.0.self_attn.q_proj.weight") == TensorSlice(dim: 0, start: 128, count: 128, index: 1, partCount: 2))
    #expect(slice("model.layers.0.self_attn.k_proj.weight")?.count == 64)
    #expect(slice("model.layers.0.self_attn.k_proj.bias")?.count == 64)
    #expect(slice("model.layers.0.self_attn.sinks") == TensorSlice(dim: 0, start: 2, count: 2, index: 1, partCount: 2))
    #expect(slice("model.layers.0.self_attn.o_proj.weight")?.dim == 1)
    #expect(slice("model.layers.0.self_attn.o_proj.bias") == nil)
    #expect(slice("model.layers.0.mlp.router.weight") == nil)
    // The fused experts stay whole experts: device 1 holds experts 2 and 3 of each layer.
    #expect(slice("model.layers.0.mlp.experts.gate_up_proj_blocks") == TensorSlice(dim: 0, start: 2, count: 2, index: 0, partCount: 4))
  }

  @Test("a split that would cut a key/value head is refused with the head size")
  func cutHeadRefused() throws {
    let source = try Self.sample("tiny-gpt-oss")
    #expect {
      try ShardPlanner.plan(source, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 4), tensorParallel: true))
    } throws: { error in
      guard case ShardingError.splitCutsHead(let tensor, _, let head, let count) = error else { return false }
      return tensor.contains("k_proj") && head == 64 && count == 4
    }
  }

  @Test("families without a split rule refuse tensor parallelism with the reason (Qwen3.5's linear attention, DeepSeek-V4)")
  func refusals() throws {
    for name in ["tiny-qwen3.5-moe", "tiny-deepseek-v4"] {
      let source = try Self.sample(name)
      #expect(throws: ShardingError.self) {
        try ShardPlanner.plan(source, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 2), tensorParallel: true))
      }
    }
  }

  @Test("fused experts under round-robin: each device gathers its experts of the [E, ...] tensor")
  func fusedGather() throws {
    let source = try Self.sample("tiny-qwen3.5-moe")
    let plan = try ShardPlanner.plan(source, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 2), strategy: .roundRobin))
    let name = "model.language_model.layers.0.mlp.experts.gate_up_proj"
    let first = try #require(plan.devices[0].tensors.first { $0.name == name })
    #expect(first.slice?.indices == [0, 2] && first.shape[0] == 2)
    let second = try #require(plan.devices[1].tensors.first { $0.name == name })
    #expect(second.slice?.indices == [1, 3])
    #expect(plan.moeLayers.first { $0.layer == 0 }?.deviceExperts == [[0, 2], [1, 3]])
  }
}
