import Checkpoint
import SafeTensors
import Sharding
import SystemIO
import TensorCore
import Testing

@Suite("tensor parallelism and the deepseek-mp layout")
struct TensorParallelTests {
  @Test("convert.py's renaming table, applied with Python str.replace semantics")
  func deepSeekNames() throws {
    let cases: [(String, String, Int?)] = [
      ("model.embed_tokens.weight", "embed.weight", 0),
      ("lm_head.weight", "head.weight", 0),
      ("model.norm.weight", "norm.weight", nil),
      ("model.layers.0.input_layernorm.weight", "layers.0.attn_norm.weight", nil),
      ("model.layers.0.post_attention_layernorm.weight", "layers.0.ffn_norm.weight", nil),
      ("model.layers.0.self_attn.q_a_proj.weight", "layers.0.attn.wq_a.weight", nil),
      ("model.layers.0.self_attn.q_a_proj.weight_scale_inv", "layers.0.attn.wq_a.scale", nil),
      ("model.layers.0.self_attn.q_a_layernorm.weight", "layers.0.attn.q_norm.weight", nil),
      ("model.layers.0.self_attn.q_b_proj.weight", "layers.0.attn.wq_b.weight", 0),
      ("model.layers.0.self_attn.q_b_proj.weight_scale_inv", "layers.0.attn.wq_b.scale", 0),
      ("model.layers.0.self_attn.q_proj.weight", "layers.0.attn.wq.weight", 0),
      ("model.layers.0.self_attn.kv_a_proj_with_mqa.weight", "layers.0.attn.wkv_a.weight", nil),
      ("model.layers.0.self_attn.kv_a_layernorm.weight", "layers.0.attn.kv_norm.weight", nil),
      ("model.layers.0.self_attn.kv_b_proj.weight", "layers.0.attn.wkv_b.weight", 0),
      ("model.layers.0.self_attn.o_proj.weight", "layers.0.attn.wo.weight", 1),
      ("model.layers.0.mlp.gate_proj.weight", "layers.0.ffn.w1.weight", 0),
      ("model.layers.0.mlp.down_proj.weight", "layers.0.ffn.w2.weight", 1),
      ("model.layers.0.mlp.up_proj.weight", "layers.0.ffn.w3.weight", 0),
      ("model.layers.3.mlp.gate.weight", "layers.3.ffn.gate.weight", nil),
      ("model.layers.3.mlp.gate.e_score_correction_bias", "layers.3.ffn.gate.bias", nil),
      ("model.layers.3.mlp.experts.17.down_proj.weight_scale_inv", "layers.3.ffn.experts.17.w2.scale", 1),
      ("model.layers.3.mlp.shared_experts.up_proj.weight", "layers.3.ffn.shared_experts.w3.weight", 0),
    ]
    for (hf, demo, dim) in cases {
      let renamed = try DeepSeekMPNaming.rename(hf)
      #expect(renamed.name == demo, "\(hf)")
      #expect(renamed.dim == dim, "\(hf)")
    }
    #expect(throws: ShardingError.self) { try DeepSeekMPNaming.rename("model.layers.0.self_attn.k_proj.weight") }
  }

  @Test("deepseek-mp: one file per rank, renamed keys, contiguous experts, convert.py's split dims, MTP dropped")
  func deepSeekLayout() throws {
    let input = try Fixtures.temporaryDirectory("in")
    let out = try Fixtures.temporaryDirectory("mp")
    defer { for path in [input, out] { try? FileSystem.removeTree(path) } }
    try TinyCheckpoint.write(to: input, layers: 2, experts: 4)
    let plan = try Fixtures.plan(input, ShardOptions(devices: try ShardDevice.homogeneous(count: 2), layout: .deepSeekMP))
    #expect(plan.files.map(\.relativePath) == ["model0-mp2.safetensors", "model1-mp2.safetensors"])
    #expect(plan.skippedTensors.allSatisfy { plan.source.tensors[$0].name.hasPrefix("model.layers.2.") })
    #expect(!plan.skippedTensors.isEmpty)
    try #require(try ShardJob.run(plan, sourcePath: input, outputDirectory: out) != nil)
    try checkContents(plan, out)
    #expect(FileSystem.exists(FileSystem.join(out, "tokenizer.json")))
    #expect(!FileSystem.exists(FileSystem.join(out, "config.json")))
    // Replicated names repeat across the ranks' files by design: verify checks duplicates per rank.
    let verified = Verification.verify(directory: out, deep: false)  // the fixture's bytes are random (NaN codes)
    #expect(verified.findings.filter { !$0.isWarning }.isEmpty, "\(verified.findings.map(\.message))")
    let rank1 = try SafeTensorsFile(path: FileSystem.join(out, "model1-mp2.safetensors"))
    #expect(rank1.metadata == nil)  // save_file without metadata
    let names = Set(rank1.entries.map(\.name))
    #expect(names.contains("layers.1.ffn.experts.2.w1.weight"))
    #expect(names.contains("layers.1.ffn.experts.3.w2.scale"))
    #expect(!names.contains("layers.1.ffn.experts.1.w1.weight"))
    #expect(!names.contains { $0.hasPrefix("layers.2.") })
    #expect(rank1.header.entry(named: "layers.0.attn.wq_b.weight")?.shape == [128, 128])
    #expect(rank1.header.entry(named: "layers.0.attn.wq_b.scale")?.shape == [1, 1])
    #expect(rank1.header.entry(named: "layers.0.attn.wo.weight")?.shape == [128, 128])
    #expect(rank1.header.entry(named: "layers.0.attn.wkv_a.weight")?.shape == [160, 128])
    #expect(rank1.header.entry(named: "embed.weight")?.shape == [128, 128])
    #expect(rank1.header.entry(named: "head.weight")?.shape == [128, 128])
    #expect(rank1.header.entry(named: "layers.1.ffn.shared_experts.w2.weight")?.shape == [128, 128])
    #expect(rank1.header.entry(named: "layers.1.ffn.gate.bias")?.shape == [4])
  }

  @Test("--tensor-parallel splits the same dims in the Hugging Face layout, keeping names")
  func tensorParallelHF() throws {
    let input = try Fixtures.temporaryDirectory("in")
    let out = try Fixtures.temporaryDirectory("tp")
    defer { for path in [input, out] { try? FileSystem.removeTree(path) } }
    try TinyCheckpoint.write(to: input, layers: 2, experts: 4)
    let plan = try Fixtures.plan(input, ShardOptions(devices: try ShardDevice.homogeneous(count: 2), tensorParallel: true))
    try #require(try ShardJob.run(plan, sourcePath: input, outputDirectory: out) != nil)
    try checkContents(plan, out)
    let device = plan.devices[1]
    func slice(_ name: String) -> TensorSlice? { device.tensors.first { $0.name == name }?.slice }
    #expect(slice("model.layers.0.self_attn.o_proj.weight") == TensorSlice(dim: 1, start: 128, count: 128, index: 1, partCount: 2))
    #expect(slice("model.layers.0.self_attn.o_proj.weight_scale_inv") == TensorSlice(dim: 1, start: 1, count: 1, index: 1, partCount: 2))
    #expect(slice("model.layers.0.mlp.gate_proj.weight")?.dim == 0)
    #expect(slice("model.layers.0.self_attn.q_a_proj.weight") == nil)
    #expect(slice("model.layers.1.mlp.experts.3.gate_proj.weight") == nil)
    #expect(slice("model.layers.2.shared_head.head.weight") == nil)
    #expect(slice("model.layers.2.embed_tokens.weight")?.dim == 0)
  }

  @Test("a split that would cut a 128x128 FP8 block is refused with tensor, dim, size, block and device count")
  func cutBlockRefused() throws {
    let source = try Fixtures.source(Fixtures.fp8Sample)
    #expect {
      try ShardPlanner.plan(source, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 2), tensorParallel: true))
    } throws: { error in
      guard case ShardingError.splitCutsBlock(let tensor, let scale, let dim, let size, let block, let count) = error else { return false }
      return tensor.hasSuffix(".weight") && scale == tensor + "_scale_inv" && block == 128 && count == 2 && (size / 2) % 128 != 0 && dim >= 0
    }
    // The BF16 twin has no blocks: the same split is fine.
    let bf16 = try Fixtures.source(Fixtures.bf16Sample)
    let plan = try ShardPlanner.plan(bf16, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 4), tensorParallel: true))
    let qb = try #require(plan.devices[3].tensors.first { $0.name == "model.layers.0.self_attn.q_b_proj.weight" })
    #expect(qb.shape[0] * 4 == bf16.tensors.first { $0.name == qb.name }?.shape[0])
    // A dim that does not divide is refused too.
    #expect(throws: ShardingError.self) {
      try ShardPlanner.plan(bf16, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 7), tensorParallel: true))
    }
  }

  @Test("deepseek-mp needs the expert count to divide by the rank count")
  func expertsMustDivide() throws {
    let source = Fixtures.syntheticSource(layers: 1, experts: 6)
    #expect {
      try ShardPlanner.plan(source, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 4), layout: .deepSeekMP))
    } throws: { error in
      guard case ShardingError.expertsNotDivisible(_, 6, 4) = error else { return false }
      return true
    }
  }
}
