import Checkpoint
import GGUF
import TestSupport
import Testing

@testable import GGUFModel

@Suite("qwen35moe mapping")
struct Qwen35MoeMappingTests {
  /// A Qwen3.5 sample as the mapping reads it: the language model's names (`model.language_model.` → `model.`,
  /// the vision tower left out, as the GGUF conversion does) and logical shapes (an FP8 weight's own shape).
  static func sample(_ name: String = "tiny-qwen3.5-moe") throws -> (config: ModelConfig, shapes: [String: [Int]]) {
    let sample = try MappingSample(name)
    var shapes: [String: [Int]] = [:]
    for (name, shape) in sample.shapes where !name.hasPrefix("model.visual.") && !name.hasSuffix(".weight_scale_inv") {
      let canonical = name.hasPrefix("model.language_model.") ? "model." + name.dropFirst("model.language_model.".count) : name
      shapes[canonical] = shape
    }
    return (sample.config, shapes)
  }

  @Test("hyperparameters: TextModel's with the M-RoPE sections, expert widths, NextN, DeltaNet sizes and layer kinds, in the converter's order")
  func hyperparameters() throws {
    let config = try Self.sample().config
    let m = try Qwen35Moe.hyperparameters(config, fileType: .allF32)
    let expected: [(String, GGUFValue)] = [
      ("general.architecture", .string("qwen35moe")),
      ("qwen35moe.block_count", .uint32(3)), ("qwen35moe.context_length", .uint32(32768)),
      ("qwen35moe.embedding_length", .uint32(64)), ("qwen35moe.attention.head_count", .uint32(2)),
      ("qwen35moe.attention.head_count_kv", .uint32(1)), ("qwen35moe.rope.dimension_sections", .array(.int32([2, 1, 1, 0]))),
      ("qwen35moe.rope.freq_base", .float32(10_000_000)), ("qwen35moe.attention.layer_norm_rms_epsilon", .float32(1e-6)),
      ("qwen35moe.expert_count", .uint32(4)), ("qwen35moe.expert_used_count", .uint32(2)),
      ("qwen35moe.attention.key_length", .uint32(32)), ("qwen35moe.attention.value_length", .uint32(32)),
      ("general.file_type", .uint32(0)), ("qwen35moe.expert_feed_forward_length", .uint32(64)),
      ("qwen35moe.expert_shared_feed_forward_length", .uint32(32)), ("qwen35moe.nextn_predict_layers", .uint32(1)),
      ("qwen35moe.ssm.conv_kernel", .uint32(4)), ("qwen35moe.ssm.state_size", .uint32(32)),
      ("qwen35moe.ssm.group_count", .uint32(2)), ("qwen35moe.ssm.time_step_rank", .uint32(4)),
      ("qwen35moe.ssm.inner_size", .uint32(128)),
      // The MTP block (layer 2) is full attention.
      ("qwen35moe.attention.recurrent_layers", .array(.bool([true, false, false]))),
      ("qwen35moe.full_attention_interval", .uint32(4)), ("qwen35moe.rope.dimension_count", .uint32(8)),
    ]
    #expect(m.keys == expected.map(\.0))
    for (key, value) in expected { #expect(m[key] == value, "\(key)") }
    #expect(try GGUFArchitectures.mapping(for: config) == Qwen35Moe.self)

    let dropped = try Qwen35Moe.hyperparameters(config, options: GGUFMappingOptions(keepMTP: false))
    #expect(dropped["qwen35moe.block_count"] == .uint32(2) && dropped["qwen35moe.nextn_predict_layers"] == nil)
    #expect(dropped["qwen35moe.attention.recurrent_layers"] == .array(.bool([true, false])))
  }

  @Test("tensors: DeltaNet and full-attention layers, 1 + w norms, -exp(A_log), squeezed conv1d, fused and per-expert stacks, NextN")
  func tensors() throws {
    let (config, shapes) = try Self.sample()
    let plan = try Qwen35Moe.tensors(config, shapes: shapes)
    #expect(plan.count == 58)
    let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
    func tensor(_ name: String) throws -> GGUFTensorPlan { try #require(byName[name], "\(name)") }

    #expect(try tensor("blk.0.attn_norm.weight").transform == .plusOne)
    #expect(try tensor("blk.1.attn_q_norm.weight").transform == .plusOne)
    #expect(try tensor("output_norm.weight").transform == .plusOne)
    #expect(try tensor("blk.2.nextn.enorm.weight").source == .tensor("mtp.pre_fc_norm_embedding.weight"))
    #expect(try tensor("blk.2.nextn.shared_head_norm.weight").transform == .plusOne)
    #expect(try tensor("blk.2.nextn.eh_proj.weight").transform == nil)
    // The DeltaNet's own gated norm keeps its gain.
    #expect(try tensor("blk.0.ssm_norm.weight").transform == nil)
    #expect(try tensor("blk.0.ssm_a").transform == .negatedExponential)
    #expect(try tensor("blk.0.ssm_conv1d.weight").dimensions == [4, 256])
    #expect(try tensor("blk.1.attn_q.weight").dimensions == [64, 128])  // query and its output gate
    #expect(try tensor("blk.0.ffn_gate_inp_shexp.weight").dimensions == [64, 1])

    // Two key heads, four value heads of 32: the v part of in_proj_qkv (after q and k, 2 · 64 rows) is tiled.
    let tiled = HeadReorder(axis: .rows, leading: 128, keyHeads: 2, valuesPerKey: 2, width: 32)
    #expect(try tensor("blk.0.attn_qkv.weight").source == .tiledValueHeads("model.layers.0.linear_attn.in_proj_qkv.weight", tiled))
    #expect(try tensor("blk.0.ssm_conv1d.weight").source == .tiledValueHeads("model.layers.0.linear_attn.conv1d.weight", tiled))
    #expect(try tensor("blk.0.ssm_out.weight").source
      == .tiledValueHeads("model.layers.0.linear_attn.out_proj.weight", HeadReorder(axis: .columns, keyHeads: 2, valuesPerKey: 2, width: 32)))
    #expect(try tensor("blk.0.ssm_alpha.weight").source
      == .tiledValueHeads("model.layers.0.linear_attn.in_proj_a.weight", HeadReorder(axis: .rows, keyHeads: 2, valuesPerKey: 2, width: 1)))

    // The trunk's experts are fused (gate rows first), the MTP block's per expert.
    let gateUp = "model.layers.1.mlp.experts.gate_up_proj"
    #expect(try tensor("blk.1.ffn_gate_exps.weight").source == .fusedExperts(gateUp, stride: 1, offset: 0, inputMajor: false))
    #expect(try tensor("blk.1.ffn_up_exps.weight").source == .fusedExperts(gateUp, stride: 1, offset: 64, inputMajor: false))
    #expect(try tensor("blk.1.ffn_up_exps.weight").dimensions == [64, 64, 4])
    #expect(try tensor("blk.2.ffn_down_exps.weight").source == .stacked((0..<4).map { "mtp.layers.0.mlp.experts.\($0).down_proj.weight" }))

    let dropped = try Qwen35Moe.tensors(config, shapes: shapes, options: GGUFMappingOptions(keepMTP: false))
    #expect(!dropped.contains { $0.name.hasPrefix("blk.2.") } && dropped.count == plan.count - 20)
  }

  @Test("the FP8 release (per-expert experts, BF16 scales) maps to the same GGUF tensors")
  func fp8Release() throws {
    let bf16 = try Self.sample(), fp8 = try Self.sample("tiny-qwen3.5-moe-fp8")
    let a = try Qwen35Moe.tensors(bf16.config, shapes: bf16.shapes), b = try Qwen35Moe.tensors(fp8.config, shapes: fp8.shapes)
    #expect(a.map(\.name).sorted() == b.map(\.name).sorted())
    #expect(Dictionary(uniqueKeysWithValues: a.map { ($0.name, $0.dimensions) }) == Dictionary(uniqueKeysWithValues: b.map { ($0.name, $0.dimensions) }))
  }

  @Test("what llama.cpp's qwen35moe cannot hold is refused with the field named")
  func refusals() throws {
    let (config, shapes) = try Self.sample()
    var widths = config
    widths.linearAttention?.valueHeadDim = 64
    #expect(throws: GGUFMappingFailure.invalidField(
      "linear_value_head_dim", reason: "is 64 but linear_key_head_dim is 32; llama.cpp's qwen35moe sizes both by ssm.state_size")) {
      try Qwen35Moe.hyperparameters(widths)
    }
    var heads = config
    heads.linearAttention?.valueHeads = 3
    #expect(throws: GGUFMappingFailure.invalidField("linear_num_value_heads", reason: "is 3, not a multiple of linear_num_key_heads 2")) {
      try Qwen35Moe.tensors(heads, shapes: shapes)
    }
    var kinds = config
    kinds.layerTypes = ["linear_attention", "sliding_attention"]
    #expect(throws: GGUFMappingFailure.self) { try Qwen35Moe.quantizeModel(kinds) }
    var missing = shapes
    missing.removeValue(forKey: "model.layers.0.linear_attn.A_log")
    #expect(throws: GGUFMappingFailure.missingTensor("model.layers.0.linear_attn.A_log")) { try Qwen35Moe.tensors(config, shapes: missing) }
  }
}

@Suite("head reorder")
struct HeadReorderTests {
  @Test("grouped to tiled: output (value head j of key head g) is source (g, j), after the leading indices")
  func permutation() {
    // 2 key heads × 3 value heads each, heads 2 wide, after 4 fixed indices.
    let reorder = HeadReorder(axis: .rows, leading: 4, keyHeads: 2, valuesPerKey: 3, width: 2)
    let sources = (0..<16).map(reorder.sourceIndex(of:))
    // Source heads (after the leading 4): g0: v0 v1 v2, g1: v0 v1 v2 → output order g0v0 g1v0 g0v1 g1v1 g0v2 g1v2.
    #expect(sources == [0, 1, 2, 3, 4, 5, 10, 11, 6, 7, 12, 13, 8, 9, 14, 15])
    #expect(Set(sources) == Set(0..<16))
    #expect(reorder.sourceRuns(of: 3..<9).map { [$0.output, $0.source, $0.count] } == [[3, 3, 3], [6, 10, 2], [8, 6, 1]])
    #expect(HeadReorder(axis: .rows, keyHeads: 1, valuesPerKey: 4, width: 8).isIdentity)
    #expect(!reorder.isIdentity)
  }

  @Test("the converter's element transforms: -exp(x) and x + 1")
  func transforms() {
    var values: [Float] = [0, 1, -2]
    ElementTransform.negatedExponential.apply(&values)
    #expect(values == [-1, -Float(2.7182817), -Float(0.13533528)])
    values = [0, -1, 0.5]
    ElementTransform.plusOne.apply(&values)
    #expect(values == [1, 0, 1.5])
  }
}
