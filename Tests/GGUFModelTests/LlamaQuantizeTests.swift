import Checkpoint
import GGML
import GGUF
import JSON
import SafeTensors
import SystemIO
import TensorCore
import TestSupport
import Testing

@testable import GGUFModel

/// Smelt's deepseek2 mapping + its port of llama_tensor_get_type against the types llama-quantize itself
/// printed (`--dry-run`) for the same layouts: Golden/llama-quantize-types.txt, made by
/// scripts/make-golden-llama-quantize.
@Suite("llama-quantize type choices")
struct LlamaQuantizeTests {
  static let golden: [String] = {
    let path = TestPaths.repositoryRoot + "/Tests/GGUFModelTests/Golden/llama-quantize-types.txt"
    let text = String(decoding: (try? FileSystem.readFile(path)) ?? [], as: UTF8.self)
    return text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
  }()

  /// DeepSeek-V3's release geometry (config.json values) with Hugging Face tensor shapes derived from it.
  static func fullSizeV3() throws -> (ModelConfig, [String: [Int]]) {
    let json = """
      {"architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 7168, "num_hidden_layers": 61,
       "num_nextn_predict_layers": 1, "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536,
       "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
       "intermediate_size": 18432, "moe_intermediate_size": 2048, "n_routed_experts": 256, "num_experts_per_tok": 8,
       "n_shared_experts": 1, "first_k_dense_replace": 3, "vocab_size": 129280, "max_position_embeddings": 163840,
       "rms_norm_eps": 1e-6, "tie_word_embeddings": false, "scoring_func": "sigmoid"}
      """
    let config = try ModelConfig(json: Array(json.utf8), path: "deepseek-v3/config.json")
    var shapes: [String: [Int]] = ["model.embed_tokens.weight": [129280, 7168], "model.norm.weight": [7168], "lm_head.weight": [129280, 7168]]
    for layer in 0..<62 {
      let p = "model.layers.\(layer)."
      for (name, shape) in [
        ("input_layernorm.weight", [7168]), ("post_attention_layernorm.weight", [7168]),
        ("self_attn.q_a_proj.weight", [1536, 7168]), ("self_attn.q_a_layernorm.weight", [1536]),
        ("self_attn.q_b_proj.weight", [128 * 192, 1536]), ("self_attn.kv_a_proj_with_mqa.weight", [576, 7168]),
        ("self_attn.kv_a_layernorm.weight", [512]), ("self_attn.kv_b_proj.weight", [128 * 256, 512]),
        ("self_attn.o_proj.weight", [7168, 128 * 128]),
      ] { shapes[p + name] = shape }
      if layer < 3 {
        for (name, shape) in [("gate_proj", [18432, 7168]), ("up_proj", [18432, 7168]), ("down_proj", [7168, 18432])] {
          shapes[p + "mlp.\(name).weight"] = shape
        }
      } else {
        shapes[p + "mlp.gate.weight"] = [256, 7168]
        shapes[p + "mlp.gate.e_score_correction_bias"] = [256]
        for expert in 0..<256 {
          for (name, shape) in [("gate_proj", [2048, 7168]), ("up_proj", [2048, 7168]), ("down_proj", [7168, 2048])] {
            shapes[p + "mlp.experts.\(expert).\(name).weight"] = shape
          }
        }
        for (name, shape) in [("gate_proj", [2048, 7168]), ("up_proj", [2048, 7168]), ("down_proj", [7168, 2048])] {
          shapes[p + "mlp.shared_experts.\(name).weight"] = shape
        }
      }
      if layer == 61 {
        for (name, shape) in [
          ("eh_proj.weight", [7168, 14336]), ("enorm.weight", [7168]), ("hnorm.weight", [7168]),
          ("embed_tokens.weight", [129280, 7168]), ("shared_head.head.weight", [129280, 7168]), ("shared_head.norm.weight", [7168]),
        ] { shapes[p + name] = shape }
      }
    }
    return (config, shapes)
  }

  /// The F32 input tensors in llama-quantize's processing order, and the model.
  static func inputs(_ config: ModelConfig, shapes: [String: [Int]]) throws -> ([LlamaQuantize.Tensor], LlamaQuantize.Model) {
    let plan = try DeepSeek2.tensors(config, shapes: shapes)
    let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
    let order = LlamaQuantize.processingOrder(plan.map(\.name))
    return (order.map { LlamaQuantize.Tensor(name: $0, dimensions: byName[$0]!.dimensions, type: .f32) }, try DeepSeek2.quantizeModel(config))
  }

  /// The full-size layout, built once for all presets.
  static let fullSizeInputs: Result<([LlamaQuantize.Tensor], LlamaQuantize.Model), any Error> = Result {
    let (config, shapes) = try fullSizeV3()
    return try inputs(config, shapes: shapes)
  }

  /// The sample's layout, built once.
  static let sampleInputs: Result<([LlamaQuantize.Tensor], LlamaQuantize.Model), any Error> = Result {
    let checkpoint = try Checkpoint.open(TestPaths.sample("tiny-deepseek-v3"))
    let shapes = Dictionary(uniqueKeysWithValues: checkpoint.entries.map { ($0.name, $0.shape) })
    return try inputs(try #require(checkpoint.config), shapes: shapes)
  }

  /// `(name, type)` in llama-quantize's processing order.
  static func choices(_ inputs: ([LlamaQuantize.Tensor], LlamaQuantize.Model), preset: LlamaFileType, importance: Bool) throws -> [(String, GGMLType)] {
    let chosen = try LlamaQuantize.choose(inputs.0, preset: preset, model: inputs.1, hasImportance: importance)
    return zip(inputs.0.map(\.name), chosen.map(\.type)).map { ($0, $1) }
  }

  @Test("the golden file is present and covers every preset")
  func goldenCoverage() {
    for preset in LlamaFileType.allCases {
      #expect(Self.golden.contains { $0.hasPrefix("tiny \(preset.name) plain ") }, "\(preset.name)")
      #expect(Self.golden.contains { $0.hasPrefix("full \(preset.name) plain counts ") }, "\(preset.name)")
    }
  }

  @Test("every tensor of the sample geometry gets llama-quantize's type", arguments: LlamaFileType.allCases, [false, true])
  func sampleGeometry(preset: LlamaFileType, importance: Bool) throws {
    let rows = try Self.choices(try Self.sampleInputs.get(), preset: preset, importance: importance)
    var byType: [String: [String]] = [:]
    for (name, type) in rows { byType[type.name, default: []].append(name) }
    let mode = importance ? "imatrix" : "plain"
    let ours = byType.keys.sorted().map { "tiny \(preset.name) \(mode) \($0) \(byType[$0]!.joined(separator: ","))" }
    let theirs = Self.golden.filter { $0.hasPrefix("tiny \(preset.name) \(mode) ") }
    #expect(ours == theirs)
  }

  @Test("full-size DeepSeek-V3: the same counts and sequence as llama-quantize", arguments: LlamaFileType.allCases)
  func fullSize(preset: LlamaFileType) throws {
    let rows = try Self.choices(try Self.fullSizeInputs.get(), preset: preset, importance: false)
    var counts: [String: Int] = [:]
    for (_, type) in rows { counts[type.name, default: 0] += 1 }
    var hasher = SHA256()
    hasher.update(Array(rows.map { "\($0.0) \($0.1.name)\n" }.joined().utf8))
    let line = "full \(preset.name) plain counts \(counts.keys.sorted().map { "\($0)=\(counts[$0]!)" }.joined(separator: ",")) sha256=\(SHA256.hexString(hasher.finalize()))"
    #expect(Self.golden.contains(line), "\(line)")
  }

  @Test("preset names and aliases, fallbacks, processing order")
  func basics() {
    #expect(LlamaFileType(name: "q4_k_m") == .mostlyQ4_K_M && LlamaFileType(name: "Q4_K") == .mostlyQ4_K_M)
    #expect(LlamaFileType(name: "mxfp4_moe")?.defaultType == .mxfp4 && LlamaFileType(name: "IQ2_XXS") == nil)
    #expect(LlamaQuantize.fallback(.q4_K, rowLength: 128) == (.q5_0, true))
    #expect(LlamaQuantize.fallback(.q6_K, rowLength: 192) == (.q8_0, true))
    #expect(LlamaQuantize.fallback(.q3_K, rowLength: 48) == (.f16, true))
    #expect(LlamaQuantize.fallback(.q4_0, rowLength: 40) == (.f16, true))
    #expect(LlamaQuantize.fallback(.q4_K, rowLength: 512) == (.q4_K, false))
    #expect(LlamaQuantize.processingOrder(["blk.10.a", "output.weight", "blk.2.b", "blk.2.a", "token_embd.weight"])
      == ["output.weight", "token_embd.weight", "blk.2.a", "blk.2.b", "blk.10.a"])
  }

  @Test("Q2_K_S needs an importance matrix for its Q2_K tensors")
  func importanceRequirement() throws {
    let checkpoint = try Checkpoint.open(TestPaths.sample("tiny-deepseek-v3"))
    let config = try #require(checkpoint.config)
    let shapes = Dictionary(uniqueKeysWithValues: checkpoint.entries.map { ($0.name, $0.shape) })
    let plan = try DeepSeek2.tensors(config, shapes: shapes)
    let tensors = plan.map { LlamaQuantize.Tensor(name: $0.name, dimensions: $0.dimensions, type: .f32) }
    let choices = try LlamaQuantize.choose(tensors, preset: .mostlyQ2_K_S, model: try DeepSeek2.quantizeModel(config))
    let failure = LlamaQuantize.missingImportance(choices, names: plan.map(\.name), hasImportance: false)
    guard case .importanceRequired = failure else {
      Issue.record("expected an importance requirement, got \(String(describing: failure))")
      return
    }
    #expect(LlamaQuantize.missingImportance(choices, names: plan.map(\.name), hasImportance: true) == nil)
  }
}
