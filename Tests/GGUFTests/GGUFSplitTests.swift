import GGML
import Testing

@testable import GGUF

@Suite("GGUF splits")
struct GGUFSplitTests {
  static let metadata = GGUFMetadata([
    GGUFKeyValue("general.architecture", .string("deepseek2")), GGUFKeyValue("deepseek2.block_count", .uint32(4)),
  ])

  /// Five Q8_0 tensors of 34 000 bytes (padded to 34 016 when sizing).
  static let tensors = (0..<5).map { GGUFTensorInfo(name: "t\($0)", dimensions: [32_000, 1], type: .q8_0) }

  @Test("names follow llama_split_path")
  func names() {
    #expect(GGUFSplit.shardPath(prefix: "out/model", index: 0, count: 3) == "out/model-00001-of-00003.gguf")
    #expect(GGUFSplit.prefix(ofOutput: "a/b.gguf") == "a/b")
    #expect(GGUFSplit.shardPaths(of: "m-00002-of-00003.gguf", number: 1, count: 3)
      == ["m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "m-00003-of-00003.gguf"])
    #expect(GGUFSplit.shardPaths(of: "m.gguf", number: 0, count: 2) == nil)
  }

  @Test("cuts where gguf-split cuts, metadata only in the first file, split keys last")
  func plan() throws {
    let shards = try GGUFSplit.plan(metadata: Self.metadata, tensors: Self.tensors, maxShardBytes: 2 * 34_016)
    #expect(shards.map { $0.tensors.map(\.name) } == [["t0", "t1"], ["t2", "t3"], ["t4"]])
    #expect(shards[0].metadata.keys == ["general.architecture", "deepseek2.block_count", "split.no", "split.tensors.count", "split.count"])
    #expect(shards[1].metadata.keys == ["split.no", "split.tensors.count", "split.count"])
    for (index, shard) in shards.enumerated() {
      #expect(shard.metadata["split.no"] == .uint16(UInt16(index)))
      #expect(shard.metadata["split.count"] == .uint16(3))
      #expect(shard.metadata["split.tensors.count"] == .int32(5))
      #expect(shard.tensors.first?.offset == 0)
    }
  }

  @Test("a tensor larger than the limit gets a shard of its own")
  func oversizedTensor() throws {
    let shards = try GGUFSplit.plan(metadata: Self.metadata, tensors: Self.tensors, maxShardBytes: 1000)
    #expect(shards.count == 5 && shards.allSatisfy { $0.tensors.count == 1 })
  }

  @Test("existing split keys are replaced, not duplicated")
  func resplit() throws {
    var metadata = Self.metadata
    metadata.set("split.count", .uint16(9))
    let shards = try GGUFSplit.plan(metadata: metadata, tensors: Self.tensors, maxShardBytes: 1 << 30)
    #expect(shards.count == 1)
    #expect(shards[0].metadata.keys.filter { $0.hasPrefix("split.") } == ["split.no", "split.tensors.count", "split.count"])
    #expect(shards[0].metadata["split.count"] == .uint16(1))
  }
}
