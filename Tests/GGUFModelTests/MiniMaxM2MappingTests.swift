import Checkpoint
import GGUF
import TestSupport
import Testing

@testable import GGUFModel

@Suite("minimax-m2 mapping")
struct MiniMaxM2MappingTests {
  static func sample() throws -> MappingSample { try MappingSample("tiny-minimax-m2-fp8") }

  @Test("hyperparameters: the converter's TextModel keys (sigmoid gating from scoring_func), then the expert width and rotary_dim")
  func hyperparameters() throws {
    let config = try Self.sample().config
    let m = try MiniMaxM2.hyperparameters(config, fileType: .mostlyQ4_K_M)
    let expected: [(String, GGUFValue)] = [
      ("general.architecture", .string("minimax-m2")),
      ("minimax-m2.block_count", .uint32(2)), ("minimax-m2.context_length", .uint32(4096)),
      ("minimax-m2.embedding_length", .uint32(128)), ("minimax-m2.feed_forward_length", .uint32(64)),
      ("minimax-m2.attention.head_count", .uint32(4)), ("minimax-m2.attention.head_count_kv", .uint32(2)),
      ("minimax-m2.rope.freq_base", .float32(5_000_000)), ("minimax-m2.attention.layer_norm_rms_epsilon", .float32(1e-6)),
      ("minimax-m2.expert_count", .uint32(4)), ("minimax-m2.expert_used_count", .uint32(2)),
      ("minimax-m2.expert_gating_func", .uint32(2)),
      ("minimax-m2.attention.key_length", .uint32(64)), ("minimax-m2.attention.value_length", .uint32(64)),
      ("general.file_type", .uint32(15)), ("minimax-m2.expert_feed_forward_length", .uint32(64)),
      ("minimax-m2.rope.dimension_count", .uint32(32)),
    ]
    #expect(m.keys == expected.map(\.0))
    for (key, value) in expected { #expect(m[key] == value, "\(key)") }
    #expect(try GGUFArchitectures.mapping(for: config) == MiniMaxM2.self)
  }

  @Test("tensors: QK-norm over all heads, router with its bias, Mixtral-named experts stacked w1 = gate, w3 = up, w2 = down, written gate, down, up")
  func tensors() throws {
    let config = try Self.sample().config
    let shapes = try Self.sample().shapes
    let plan = try MiniMaxM2.tensors(config, shapes: shapes)
    #expect(plan.count == 3 + 2 * 13)
    let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
    #expect(byName["blk.0.attn_q_norm.weight"]?.dimensions == [256] && byName["blk.0.attn_k_norm.weight"]?.dimensions == [128])
    #expect(byName["blk.1.exp_probs_b.bias"]?.source == .tensor("model.layers.1.block_sparse_moe.e_score_correction_bias"))
    #expect(byName["blk.1.ffn_up_exps.weight"]?.source
      == .stacked((0..<4).map { "model.layers.1.block_sparse_moe.experts.\($0).w3.weight" }))
    #expect(byName["blk.1.ffn_down_exps.weight"]?.dimensions == [64, 128, 4])
    let names = MiniMaxM2.converterOrder(plan, sourceOrder: shapes.keys.sorted()).map(\.name)
    let gate = try #require(names.firstIndex(of: "blk.0.ffn_gate_exps.weight"))
    #expect(Array(names[gate..<(gate + 3)]) == ["blk.0.ffn_gate_exps.weight", "blk.0.ffn_down_exps.weight", "blk.0.ffn_up_exps.weight"])
  }

  @Test("what llama.cpp's minimax-m2 cannot load or computes differently is refused: no QK-norm, no router bias, tied embeddings")
  func refusals() throws {
    let config = try Self.sample().config
    var noNorm = config
    noNorm.useQkNorm = false
    #expect(throws: GGUFMappingFailure.invalidField("use_qk_norm", reason: "is false; llama.cpp's minimax-m2 requires the QK-norm tensors")) {
      try MiniMaxM2.hyperparameters(noNorm)
    }
    var noBias = config
    noBias.useRoutingBias = false
    #expect(throws: GGUFMappingFailure.self) { try MiniMaxM2.tensors(noBias, shapes: try Self.sample().shapes) }
    var tied = config
    tied.tieWordEmbeddings = true
    #expect(throws: GGUFMappingFailure.self) { try MiniMaxM2.quantizeModel(tied) }
  }
}
