import Checkpoint
import CommandLineSupport
import Foundation
import JSON
import ReferenceModel
import SmeltCommands
import Testing
import WeightSources
@testable import Validation

/// `smelt forward` on the grouped-query family samples, read through the checkpoint reader (FP8 blocks
/// dequantized per matmul tile), against transformers' logits (`scripts/golden-family-logits.py`); and the
/// config values those families' forward passes refuse.
@Suite("forward pass: grouped-query families")
struct FamilyForwardTests {
  static let samples = ["tiny-qwen3-moe-fp8", "tiny-glm4-moe-fp8", "tiny-minimax-m2-fp8", "tiny-gpt-oss"]

  /// `smelt forward` on `checkpoint` with the golden's tokens: max |Δlogit| / max |golden logit|.
  static func forwardError(_ checkpoint: String, golden name: String) throws -> Float {
    let golden = try CheckpointWeightProvider(path: Fixtures.goldenDirectory + "/families/\(name).golden.safetensors")
    let ids = try golden.weight("input_ids")
    let T = ids.shape[1]
    let tokens = (0..<ids.shape[0]).map { b in (0..<T).map { "\(Int(ids.values[b * T + $0]))" }.joined(separator: ",") }
    let output = try Fixtures.temporaryDirectory("family-forward") + "/logits.safetensors"
    let stderr = TextOutput.capture()
    let status = SmeltCommands.run(
      arguments: ["forward", checkpoint, "--tokens", tokens.joined(separator: ";"), "--output", output, "--top", "0", "-q"],
      stdout: TextOutput.capture(), stderr: stderr)
    #expect(status == 0, "\(stderr.text)")
    let ours = try CheckpointWeightProvider(path: output).weight("logits")
    let expected = try golden.weight("logits")
    #expect(ours.shape == expected.shape)
    let maxLogit = expected.values.map(abs).max() ?? 0
    let maxError = zip(ours.values, expected.values).map { abs($0 - $1) }.max() ?? .infinity
    print("smelt forward \(name): max |Δlogit| / max |logit| = \(maxError / maxLogit)")
    return maxError / maxLogit
  }

  @Test("smelt forward on the quantized sample matches transformers to 1e-5 × max |logit|", arguments: samples)
  func forwardCommandMatchesTransformers(_ sample: String) throws {
    let path = Fixtures.repositoryRoot.appendingPathComponent("samples/\(sample)").path
    #expect(try Self.forwardError(path, golden: sample) <= 1e-5)
  }

  @Test(
    "validate --level layer and --level model run on every new family (a checkpoint against itself passes)",
    arguments: samples + ["tiny-deepseek-v3.2-fp8"])
  func validateLevels(_ sample: String) throws {
    let path = Fixtures.repositoryRoot.appendingPathComponent("samples/\(sample)").path
    for level in ["layer", "model"] {
      let report = try Fixtures.temporaryDirectory("validate-\(level)") + "/report.json"
      let stderr = TextOutput.capture(), stdout = TextOutput.capture()
      let status = SmeltCommands.run(
        arguments: ["validate", path, path, "--level", level, "--json-file", report, "-q"], stdout: stdout, stderr: stderr)
      #expect(status == 0, "\(sample) --level \(level): \(stderr.text) \(stdout.text)")
      guard level == "layer" else { continue }
      // Every MoE layer's router is compared, whatever the family calls it (mlp.gate, block_sparse_moe.gate, mlp.router).
      let json = try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: report))))
      let configuration = try CheckpointWeightProvider(path: path).modelConfiguration()
      let moeLayers = (0..<configuration.layerCount).filter { configuration.isMixtureOfExpertsLayer($0) }
      let compared = Set((json["routing"]?.arrayValue ?? []).compactMap { $0["layer"]?.intValue })
      #expect(compared.isSuperset(of: moeLayers), "\(sample): routing compared for layers \(compared.sorted())")
    }
  }

  /// A directory with `sample`'s weights (links) and its config.json with `edit` applied.
  static func editedSample(_ sample: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
    let source = Fixtures.repositoryRoot.appendingPathComponent("samples/\(sample)").path
    let directory = try Fixtures.temporaryDirectory("edited-\(sample)")
    let fileManager = FileManager.default
    for name in try fileManager.contentsOfDirectory(atPath: source) where name != "config.json" {
      try fileManager.createSymbolicLink(atPath: directory + "/" + name, withDestinationPath: source + "/" + name)
    }
    var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source + "/config.json"))) as! [String: Any]
    edit(&config)
    try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory + "/config.json"))
    return directory
  }

  @Test("gpt-oss's sliding layers see only the last sliding_window keys, as transformers masks them")
  func gptOssSlidingWindow() throws {
    let directory = try Self.editedSample("tiny-gpt-oss") { $0["sliding_window"] = 5 }
    #expect(try Self.forwardError(directory, golden: "tiny-gpt-oss-window-5") <= 1e-5)
    // The window changes the logits (12 tokens, window 5): the full-attention golden is far from these.
    #expect(try Self.forwardError(directory, golden: "tiny-gpt-oss") > 1e-3)
  }

  @Test("gpt-oss's plain BF16 experts (input-major, as convert --to bf16 writes them) give the MXFP4 sample's logits")
  func gptOssPlainExperts() throws {
    let output = try Fixtures.temporaryDirectory("gpt-oss-bf16") + "/model"
    let sample = Fixtures.repositoryRoot.appendingPathComponent("samples/tiny-gpt-oss").path
    let stderr = TextOutput.capture()
    let status = SmeltCommands.run(
      arguments: ["convert", sample, output, "--to", "bf16", "-q"], stdout: TextOutput.capture(), stderr: stderr)
    #expect(status == 0, "\(stderr.text)")
    #expect(try Self.forwardError(output, golden: "tiny-gpt-oss") <= 1e-5)
  }

  @Test("validate compares gpt-oss's MXFP4 experts with their input-major BF16 conversion element by element, either way round")
  func gptOssPlainExpertsCompareAtTensorLevel() throws {
    let output = try Fixtures.temporaryDirectory("gpt-oss-bf16-tensors") + "/model"
    let sample = Fixtures.repositoryRoot.appendingPathComponent("samples/tiny-gpt-oss").path
    let status = SmeltCommands.run(
      arguments: ["convert", sample, output, "--to", "bf16", "-q"], stdout: TextOutput.capture(), stderr: TextOutput.capture())
    #expect(status == 0)
    let mxfp4 = try CheckpointWeightProvider(path: sample)
    let bf16 = try CheckpointWeightProvider(path: output)
    #expect(bf16.holdsInputMajorExperts("model.layers.0.mlp.experts.gate_up_proj"))
    #expect(!mxfp4.holdsInputMajorExperts("model.layers.0.mlp.experts.gate_up_proj"))
    #expect(!bf16.holdsInputMajorExperts("model.layers.0.mlp.experts.gate_up_proj_bias"))
    for (reference, candidate) in [(mxfp4, bf16), (bf16, mxfp4)] {
      let report = try Validator(reference: reference, candidate: candidate, options: ValidationOptions(levels: [.tensor])).run()
      let experts = report.tensors.filter { $0.name.hasSuffix("experts.gate_up_proj") || $0.name.hasSuffix("experts.down_proj") }
      #expect(experts.count == 4)
      // MXFP4 values are exact in BF16: the conversion is lossless, transposed.
      #expect(experts.allSatisfy { $0.metrics.snrDecibels == .infinity && $0.shape.count == 3 })
      #expect(report.failures.isEmpty, "\(report.failures.map(\.summary))")
    }
  }

  @Test("DeepSeek-V3.2 attends to the index_topk keys its lightning indexer picks, as transformers does")
  func deepSeekV32SparseAttention() throws {
    let sparse = try Self.editedSample("tiny-deepseek-v3.2-fp8") { $0["index_topk"] = 2 }
    #expect(try Self.forwardError(sparse, golden: "tiny-deepseek-v3.2-fp8-topk-2") <= 1e-5)
    // With index_topk at least the sequence length, V3.2 is dense MLA: far from the sparse golden.
    let dense = try Self.editedSample("tiny-deepseek-v3.2-fp8") { $0["index_topk"] = 12 }
    #expect(try Self.forwardError(dense, golden: "tiny-deepseek-v3.2-fp8-topk-2") > 1e-3)
  }

  /// The sample's config.json with `edit` applied.
  static func configuration(_ sample: String, _ edit: (inout [String: Any]) -> Void) throws -> ModelConfiguration {
    let url = Fixtures.repositoryRoot.appendingPathComponent("samples/\(sample)/config.json")
    var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    edit(&object)
    let bytes = [UInt8](try JSONSerialization.data(withJSONObject: object))
    return try ModelConfiguration(checkpointConfig: try ModelConfig(json: bytes, path: "config.json"))
  }

  @Test(
    "a numerics-changing value the family's forward pass does not compute is refused, naming the field",
    arguments: [
      ("tiny-qwen3-moe-fp8", "use_sliding_window", "true"),
      ("tiny-qwen3-moe-fp8", "layer_types", #"["full_attention", "sliding_attention"]"#),
      ("tiny-qwen3-moe-fp8", "shared_expert_intermediate_size", "64"),
      ("tiny-qwen3-moe-fp8", "partial_rotary_factor", "0.5"),
      ("tiny-qwen3-moe-fp8", "rope_interleave", "true"),
      ("tiny-qwen3-moe-fp8", "norm_topk_prob", "null"),
      ("tiny-glm4-moe-fp8", "partial_rotary_factor", "null"),
      ("tiny-glm4-moe-fp8", "n_shared_experts", "null"),
      ("tiny-glm4-moe-fp8", "hidden_act", #""gelu""#),
      ("tiny-glm4-moe-fp8", "rms_norm_eps", "null"),
      ("tiny-minimax-m2-fp8", "qk_norm_type", #""per_head""#),
      ("tiny-minimax-m2-fp8", "scoring_func", #""softmax""#),
      ("tiny-minimax-m2-fp8", "use_routing_bias", "false"),
      ("tiny-minimax-m2-fp8", "shared_intermediate_size", "64"),
      ("tiny-minimax-m2-fp8", "rotary_dim", "33"),
      ("tiny-minimax-m2-fp8", "partial_rotary_factor", "1.0"),
      ("tiny-minimax-m2-fp8", "partial_rotary_factor", "1e300"),
      ("tiny-glm4-moe-fp8", "partial_rotary_factor", "1e300"),
      ("tiny-minimax-m2-fp8", "head_dim", "4611686018427387904"),
      ("tiny-glm4-moe-fp8", "head_dim", "9223372036854775807"),
      ("tiny-gpt-oss", "head_dim", "-64"),
      ("tiny-minimax-m2-fp8", "use_qk_norm", "false"),
      ("tiny-minimax-m2-fp8", "rope_theta", "null"),
      ("tiny-deepseek-v3", "attention_bias", "true"),
      ("tiny-deepseek-v3", "partial_rotary_factor", "0.5"),
      ("tiny-deepseek-v3.2-fp8", "index_topk", "null"),
      ("tiny-deepseek-v3.2-fp8", "rope_interleave", "false"),
      ("tiny-deepseek-v3.2-fp8", "q_lora_rank", "null"),
      ("tiny-deepseek-v3.2-fp8", "num_key_value_heads", "1"),
      ("tiny-gpt-oss", "layer_types", #"["full_attention", "chunked_attention"]"#),
      ("tiny-gpt-oss", "swiglu_limit", "null"),
      ("tiny-gpt-oss", "layer_types", #"["full_attention"]"#),
      ("tiny-gpt-oss", "sliding_window", "null"),
    ])
  func refusesWhatItDoesNotCompute(_ sample: String, _ field: String, _ json: String) throws {
    let value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
    do {
      _ = try Self.configuration(sample) { $0[field] = value }
      Issue.record("\(sample): \(field) = \(value) was accepted")
    } catch let error as ReferenceModelError {
      #expect("\(error)".contains(field), "\(error)")
    }
  }

  @Test("transformers >= 5's rope_parameters gives the same configuration as rope_theta", arguments: samples)
  func ropeParameters(_ sample: String) throws {
    let release = try Self.configuration(sample) { _ in }
    let transformers = try Self.configuration(sample) { object in
      let theta = object.removeValue(forKey: "rope_theta")
      var parameters = object.removeValue(forKey: "rope_scaling") as? [String: Any] ?? ["rope_type": "default"]
      parameters["rope_theta"] = theta
      if let factor = object.removeValue(forKey: "partial_rotary_factor") { parameters["partial_rotary_factor"] = factor }
      object["rope_parameters"] = parameters
    }
    #expect(release == transformers)
    let changed = try Self.configuration(sample) { object in
      object.removeValue(forKey: "rope_theta")
      object.removeValue(forKey: "rope_scaling")
      object["rope_parameters"] = ["rope_type": "default", "rope_theta": 50000]
    }
    #expect(changed.rope.theta == 50000)
  }
}
