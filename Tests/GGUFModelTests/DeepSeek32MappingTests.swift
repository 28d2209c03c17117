import Checkpoint
import GGUF
import TestSupport
import Testing

@testable import GGUFModel

@Suite("deepseek32 mapping")
struct DeepSeek32MappingTests {
  static func sample() throws -> MappingSample { try MappingSample("tiny-deepseek-v3.2-fp8") }

  @Test("hyperparameters: deepseek2's keys under the deepseek32 prefix, then the indexer's head count, key length and top-k")
  func hyperparameters() throws {
    let config = try Self.sample().config
    let m = try DeepSeek32.hyperparameters(config, fileType: .mostlyQ4_K_M)
    let mla = try DeepSeek2.keys(config, options: GGUFMappingOptions(), fileType: .mostlyQ4_K_M, architecture: "deepseek32").metadata
    // The sample's num_nextn_predict_layers is 0: DeepseekV32Model writes it anyway (deepseek2's keys only a positive one).
    #expect(m.keys == mla.keys + [
      "deepseek32.nextn_predict_layers", "deepseek32.attention.indexer.head_count", "deepseek32.attention.indexer.key_length",
      "deepseek32.attention.indexer.top_k",
    ])
    #expect(m["deepseek32.nextn_predict_layers"] == .uint32(0))
    #expect(m["general.architecture"] == .string("deepseek32") && m["deepseek32.expert_gating_func"] == .uint32(2))
    #expect(m["deepseek32.attention.indexer.head_count"] == .uint32(2) && m["deepseek32.attention.indexer.key_length"] == .uint32(128))
    #expect(m["deepseek32.attention.indexer.top_k"] == .uint32(4))
    #expect(try GGUFArchitectures.mapping(for: config) == DeepSeek32.self)
    #expect(try DeepSeek32.quantizeModel(config).architecture == "deepseek32")
  }

  @Test("tensors: deepseek2's MLA layout plus five indexer tensors per block (wq_b, wk, k_norm weight and bias, weights_proj)")
  func tensors() throws {
    let config = try Self.sample().config
    let plan = try DeepSeek32.tensors(config, shapes: try Self.sample().shapes)
    let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
    for layer in 0..<2 {
      let blk = "blk.\(layer).indexer.", hf = "model.layers.\(layer).self_attn.indexer."
      #expect(byName[blk + "attn_q_b.weight"]?.source == .tensor(hf + "wq_b.weight"))
      #expect(byName[blk + "attn_q_b.weight"]?.dimensions == [128, 256])
      #expect(byName[blk + "attn_k.weight"]?.dimensions == [128, 128])
      #expect(byName[blk + "k_norm.bias"]?.source == .tensor(hf + "k_norm.bias"))
      #expect(byName[blk + "proj.weight"]?.dimensions == [128, 2])
    }
    #expect(byName["blk.1.attn_k_b.weight"] != nil && byName["blk.1.ffn_gate_exps.weight"] != nil)
    #expect(plan.filter { $0.name.contains(".indexer.") }.count == 10)
  }

  @Test("a DeepSeek-V3 checkpoint is not deepseek32, and a V3.2 one lacking indexer fields is named")
  func refusals() throws {
    let v3 = try MappingSample("tiny-deepseek-v3-fp8").config
    #expect(throws: GGUFMappingFailure.unsupportedArchitecture(found: ["DeepseekV3ForCausalLM"])) { try DeepSeek32.hyperparameters(v3) }
    var config = try Self.sample().config
    config.indexTopk = nil
    #expect(throws: GGUFMappingFailure.missingField("index_topk")) { try DeepSeek32.tensors(config, shapes: try Self.sample().shapes) }
  }
}
