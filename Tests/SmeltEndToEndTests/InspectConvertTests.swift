import Checkpoint
import CommandLineSupport
import JSON
import SafeTensors
import SmeltCommands
import SystemIO
import TensorCore
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Runs `smelt` in process and returns (status, stdout, stderr).
func runSmelt(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
  let stdout = TextOutput.capture()
  let stderr = TextOutput.capture()
  let status = SmeltCommands.run(arguments: arguments, stdout: stdout, stderr: stderr, columns: 80)
  return (status, stdout.text, stderr.text)
}

func samplePath(_ name: String) -> String { TestPaths.sample(name) }

@Suite("smelt inspect and convert") struct InspectConvertTests {
  @Test("inspect summarises the FP8 sample: architecture, quantization, MoE layout, MTP layer")
  func inspectText() {
    let result = runSmelt(["inspect", samplePath("tiny-deepseek-v3-fp8")])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("DeepseekV3ForCausalLM"))
    #expect(result.stdout.contains("fp8-block"))
    #expect(result.stdout.contains("16 routed + 1 shared, top-4"))
    #expect(result.stdout.contains("1 dense, 3 MoE, MTP layer 4"))
  }

  @Test("inspect --json follows the documented schema")
  func inspectJSON() throws {
    let result = runSmelt(["inspect", samplePath("tiny-deepseek-v3"), "--json"])
    #expect(result.status == 0)
    let value = try JSONParser.parse(result.stdout)
    #expect(value["schema"]?.stringValue == "smelt.inspect/1")
    #expect(value["tensor_count"]?.intValue == 269)
    #expect(value["mtp_layers"]?[0]?.intValue == 4)
    #expect(value["architecture"]?["n_routed_experts"]?.intValue == 16)
    #expect(value["quantization"]?.arrayValue?.isEmpty == true)
  }

  @Test("inspect --filter lists only matching tensors")
  func inspectFilter() throws {
    let result = runSmelt(["inspect", samplePath("tiny-deepseek-v3-fp8"), "--json", "--filter=*.experts.0.*"])
    let tensors = try JSONParser.parse(result.stdout)["tensors"]?.arrayValue ?? []
    #expect(tensors.count == 4 * 3 * 2)  // 4 MoE blocks (incl. MTP) x 3 projections x (weight + scale)
  }

  @Test("a missing checkpoint fails with exit 1 and names the path")
  func missing() {
    let result = runSmelt(["inspect", "/nonexistent/ckpt"])
    #expect(result.status == 1)
    #expect(result.stderr.hasPrefix("Error: no checkpoint at '/nonexistent/ckpt'"))
  }

  @Test("convert usage errors exit 64")
  func convertUsage() {
    #expect(runSmelt(["convert", samplePath("tiny-deepseek-v3"), "/tmp/x", "--to", "int3"]).status == 64)
    #expect(runSmelt(["convert", samplePath("tiny-deepseek-v3"), "/tmp/x"]).status == 64)
    #expect(runSmelt(["convert", samplePath("tiny-deepseek-v3"), "/tmp/x", "--to=bf16", "--block-size", "12"]).status == 64)
  }

  @Test("convert --dry-run --json lists the plan and writes nothing")
  func dryRun() throws {
    let output = "/tmp/smelt-e2e-\(getpid())-dry"
    let result = runSmelt(["convert", samplePath("tiny-deepseek-v3"), output, "--to", "fp8-block", "--dry-run", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let plan = try JSONParser.parse(result.stdout)
    let tensors = plan["tensors"]?.arrayValue ?? []
    #expect(tensors.contains { $0["name"]?.stringValue == "model.layers.1.self_attn.kv_a_proj_with_mqa.weight_scale_inv" })
    #expect(tensors.contains { $0["name"]?.stringValue == "lm_head.weight" && $0["action"]?.stringValue == "copy" })
    // The summary by action comes with every plan; a small plan also lists its tensors.
    let actions = plan["actions"]?.arrayValue ?? []
    #expect(actions.map { $0["count"]?.intValue ?? 0 }.reduce(0, +) == 269)
    #expect(plan["tensor_count"]?.intValue == tensors.count)
    #expect(!FileSystem.exists(output))
    // --tensors belongs to --dry-run.
    #expect(runSmelt(["convert", samplePath("tiny-deepseek-v3"), output, "--to", "bf16", "--tensors"]).status == 64)
  }

  @Test("convert --json reports tensors, bytes, speed and per-tensor error")
  func convertJSON() throws {
    let output = "/tmp/smelt-e2e-\(getpid())-conv"
    try FileSystem.removeTree(output)
    let result = runSmelt(["convert", samplePath("tiny-deepseek-v3"), output, "--to", "fp8-channel", "--json", "--quiet"])
    #expect(result.status == 0, "\(result.stderr)")
    let report = try JSONParser.parse(result.stdout)
    #expect(report["tensors_converted"]?.intValue == 2 * 232)
    let first = report["tensors"]?[0]
    #expect((first?["snr_db"]?.doubleValue ?? 0) > 25)
    let config = try JSONParser.parse(try FileSystem.readFile(output + "/config.json"))
    #expect(config["quantization_config"]?["quant_method"]?.stringValue == "compressed-tensors")
    #expect(config["quantization_config"]?["config_groups"]?["group_0"]?["weights"]?["strategy"]?.stringValue == "channel")
    // A second run into the same, now non-empty, directory is refused without --force.
    let again = runSmelt(["convert", samplePath("tiny-deepseek-v3"), output, "--to", "fp8-channel", "--quiet"])
    #expect(again.status == 1)
    #expect(again.stderr.contains("not empty"))
  }

  @Test("an unscaled FP8 cast of a block-FP8 release decodes its blocks (no scales left without a config) and keeps the F32 router bias")
  func unscaledCastOfBlockFP8() throws {
    let output = "/tmp/smelt-e2e-\(getpid())-f8cast"
    try FileSystem.removeTree(output)
    defer { try? FileSystem.removeTree(output) }
    let result = runSmelt(["convert", samplePath("tiny-deepseek-v3-fp8"), output, "--to", "f8-e4m3", "--quiet"])
    #expect(result.status == 0, "\(result.stderr)")
    let written = try Checkpoint.open(output)
    #expect(!written.tensorNames.contains { $0.hasSuffix("weight_scale_inv") })
    let config = try JSONParser.parse(try FileSystem.readFile(output + "/config.json"))
    #expect(config["quantization_config"] == nil)
    let biases = written.entries.filter { $0.name.hasSuffix("e_score_correction_bias") }
    #expect(!biases.isEmpty && biases.allSatisfy { $0.dtype == .float32 })
    let weight = try written.entry("model.layers.0.self_attn.q_a_proj.weight")
    #expect(weight.dtype == .float8E4M3FN)
  }
}
