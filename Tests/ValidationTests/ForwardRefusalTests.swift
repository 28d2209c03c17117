import Checkpoint
import CommandLineSupport
import Foundation
import JSON
import ReferenceModel
import SmeltCommands
import Testing

@Suite("forward pass: what it refuses")
struct ForwardRefusalTests {
  static func run(_ arguments: [String]) -> (status: Int32, stderr: String) {
    let stdout = TextOutput.capture(), stderr = TextOutput.capture()
    let status = SmeltCommands.run(arguments: arguments, stdout: stdout, stderr: stderr)
    return (status, stderr.text)
  }

  static let unimplemented = ["tiny-qwen3.5-moe", "tiny-deepseek-v4"]

  @Test("forward (exit 1) and validate --level model (exit 2: could not compare) refuse a family the forward pass does not implement", arguments: unimplemented)
  func refusesUnimplementedFamilies(_ sample: String) {
    let path = Fixtures.repositoryRoot.appendingPathComponent("samples/\(sample)").path
    let forward = Self.run(["forward", path, "--tokens", "1,2,3", "-q"])
    #expect(forward.status == 1)
    #expect(forward.stderr.contains("does not implement"), "\(forward.stderr)")
    let validate = Self.run(["validate", path, path, "--level", "model", "-q"])
    #expect(validate.status == 2)
    #expect(validate.stderr.contains("does not implement"), "\(validate.stderr)")
  }

  /// The BF16 sample's config with `edit` applied, next to links to its weights.
  static func editedSample(_ label: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
    let directory = try Fixtures.temporaryDirectory("edited-\(label)")
    let fileManager = FileManager.default
    for name in try fileManager.contentsOfDirectory(atPath: Fixtures.bf16Sample) where name != "config.json" {
      try fileManager.createSymbolicLink(atPath: directory + "/" + name, withDestinationPath: Fixtures.bf16Sample + "/" + name)
    }
    let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.bf16Sample + "/config.json"))
    var config = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    edit(&config)
    try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory + "/config.json"))
    return directory
  }

  @Test(
    "config sizes that disagree with the weights, or numbers outside their domain, fail before anything is allocated",
    arguments: [
      ("vocab_size", "4611686018427387904", "vocab_size"), ("qk_rope_head_dim", "1099511627776", "qk_rope_head_dim"),
      ("rope_theta", "0", "rope_theta"), ("rms_norm_eps", "-1e-6", "rms_norm_eps"),
      ("hidden_size", "300", "model.embed_tokens.weight"), ("n_routed_experts", "20", "mlp.gate.weight"),
      ("routed_scaling_factor", "0", "routed_scaling_factor"),
    ])
  func refusesImpossibleSizes(_ field: String, _ value: String, _ mentioned: String) throws {
    let number = try JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
    let path = try Self.editedSample(field) { $0[field] = number }
    let result = Self.run(["forward", path, "--tokens", "1,2", "-q"])
    #expect(result.status == 1, "\(field): \(result.stderr)")
    #expect(result.stderr.contains(mentioned), "\(field): \(result.stderr)")
  }

  static func configuration(_ json: String) throws -> ModelConfiguration {
    try ModelConfiguration(checkpointConfig: try ModelConfig(json: Array(json.utf8), path: "config.json"))
  }

  static let mla = """
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "vocab_size": 64, "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "kv_lora_rank": 16, "q_lora_rank": null,
    "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8, "max_position_embeddings": 4096
    """

  @Test("transformers >= 5's rope_parameters sets RoPE exactly as the release's rope_theta / rope_scaling do")
  func ropeParameters() throws {
    let release = try Self.configuration("""
      {\(Self.mla), "rope_theta": 50000, "rope_scaling": {"type": "yarn", "factor": 32, "original_max_position_embeddings": 4096,
       "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}}
      """)
    let transformers = try Self.configuration("""
      {\(Self.mla), "rope_parameters": {"rope_type": "yarn", "rope_theta": 50000, "factor": 32,
       "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}}
      """)
    #expect(release == transformers)
    #expect(transformers.rope.theta == 50000)
    #expect(transformers.rope.yarn?.factor == 32)
    let plain = try Self.configuration("{\(Self.mla), \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 50000}}")
    #expect(plain.rope.theta == 50000 && plain.rope.yarn == nil)
  }

  @Test("a RoPE setting the two schemas give differently, or an unknown rope_type, is an error naming the field")
  func ropeConflicts() throws {
    #expect(throws: CheckpointError.self) {
      _ = try Self.configuration("{\(Self.mla), \"rope_theta\": 10000, \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 50000}}")
    }
    do {
      _ = try Self.configuration("{\(Self.mla), \"rope_parameters\": {\"rope_type\": \"longrope\", \"rope_theta\": 50000}}")
      Issue.record("an unknown rope_type was accepted")
    } catch let error as ReferenceModelError {
      #expect("\(error)".contains("rope_parameters.rope_type"))
    }
  }

  @Test("an unknown architecture without MLA is refused, not attempted")
  func refusesUnknownArchitectures() throws {
    do {
      _ = try Self.configuration("""
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 32,
         "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
        """)
      Issue.record("a Llama config was accepted")
    } catch let error as ReferenceModelError {
      #expect("\(error)".contains("LlamaForCausalLM"))
    }
  }
}
