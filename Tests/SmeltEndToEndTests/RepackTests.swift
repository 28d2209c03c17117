import Checkpoint
import JSON
import SafeTensors
import TestSupport
import Testing
import WeightFormats

/// One conversion whose native 4-bit weights should move losslessly.
struct RepackCase: CustomTestStringConvertible, Sendable {
  var sample: String
  var arguments: [String]
  /// Weights the report must list as repacked.
  var repacked: Int
  var testDescription: String { "\(sample) \(arguments.joined(separator: " "))" }

  static let all: [RepackCase] = [
    RepackCase(sample: "tiny-gpt-oss", arguments: ["--to", "mxfp4"], repacked: 4),
    RepackCase(sample: "tiny-deepseek-v4", arguments: ["--to", "mxfp4"], repacked: 36),
    RepackCase(sample: "tiny-deepseek-v4", arguments: ["--to", "mxfp4-gpt-oss", "--force-layout"], repacked: 36),
    RepackCase(sample: "tiny-deepseek-v4", arguments: ["--to", "fp8-block", "--scale-format", "ue8m0"], repacked: 36),
  ]
}

/// Serialized: in-process `smelt` runs share the process-wide cleanup of temporary outputs.
@Suite("lossless repacks end to end", .serialized) struct RepackTests {
  @Test(
    "MXFP4 / FP4 experts are repacked, reported 'repacked (lossless)', and decode to the source's values bit for bit",
    arguments: RepackCase.all)
  func repack(_ test: RepackCase) throws {
    let output = try TestPaths.scratchPath("repack-\(test.sample)-\(test.arguments.joined(separator: "-"))")
    let result = runSmelt(["convert", TestPaths.sample(test.sample), output] + test.arguments + ["--json", "--force"])
    #expect(result.status == 0, "\(result.stderr)")
    let report = try JSONParser.parse(result.stdout)
    let tensors = report["tensors"]?.arrayValue ?? []
    let repacked = tensors.filter { $0["method"]?.stringValue?.hasPrefix("repacked") == true }
    #expect(repacked.count == test.repacked)
    #expect(repacked.allSatisfy { $0["method"]?.stringValue == "repacked (lossless)" && $0["max_abs_error"]?.doubleValue == 0 })
    #expect(tensors.contains { $0["method"]?.stringValue == "requantized" } || test.arguments.contains("mxfp4") || test.arguments.contains("mxfp4-gpt-oss"))

    let source = try Checkpoint.open(TestPaths.sample(test.sample))
    let converted = try Checkpoint.open(output)
    let sourceGroups = Dictionary(
      WeightGrouping.groups(of: source.entries).map { (WeightDecoding.logicalName(of: $0), $0) }, uniquingKeysWith: { a, _ in a })
    let outputGroups = Dictionary(
      WeightGrouping.groups(of: converted.entries).map { (WeightDecoding.logicalName(of: $0), $0) }, uniquingKeysWith: { a, _ in a })
    for tensor in repacked {
      let name = tensor["name"]?.stringValue ?? ""
      let outputName = name.hasSuffix(".weight") ? name : name + ".weight"
      guard let from = sourceGroups[name], let to = outputGroups[outputName] else {
        Issue.record("no group for \(name) / \(outputName)")
        continue
      }
      #expect(to.storage != from.storage)
      let before = try WeightDecoding.decode(group: from, in: source).values
      let after = try WeightDecoding.decode(group: to, in: converted).values
      #expect(before.count == after.count)
      #expect(zip(before, after).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(name)")
    }
  }

  // The 4-bit targets keep gpt-oss's MXFP4 expert stacks (no int4 layout of fused experts loads) by dequantizing
  // them, and wrote them output-major `[E, out, in]`: transposed for transformers (silently so for gate_up_proj,
  // whose dims are equal); `--to int4-g32` alone then quantized nothing under an int4 config.
  @Test("gpt-oss's kept expert stacks are written as --to bf16 writes them; a 4-bit target quantizing nothing is refused")
  func gptOssKeptExpertStacks() throws {
    let sample = TestPaths.sample("tiny-gpt-oss")
    let plain = try TestPaths.scratchPath("gpt-oss-kept-bf16")
    let mixed = try TestPaths.scratchPath("gpt-oss-kept-int4-attention")
    #expect(runSmelt(["convert", sample, plain, "--to", "bf16", "--force", "-q"]).status == 0)
    let result = runSmelt(["convert", sample, mixed, "--to", "int4-g32", "--rule", "*.self_attn.*_proj=int4-g32", "--force", "-q"])
    #expect(result.status == 0, "\(result.stderr)")
    let bf16 = try Checkpoint.open(plain), int4 = try Checkpoint.open(mixed)
    for layer in 0..<2 {
      for stack in ["gate_up_proj", "down_proj"] {
        let name = "model.layers.\(layer).mlp.experts.\(stack)"
        let a = try bf16.tensor(name), b = try int4.tensor(name)
        #expect(a.dtype == b.dtype && a.shape == b.shape, "\(name): \(b.shape) vs \(a.shape)")
        #expect(Array(a.bytes) == Array(b.bytes), "\(name)")
      }
    }
    #expect(int4.entries.contains { $0.name.hasSuffix("self_attn.q_proj.weight_packed") })

    let refused = runSmelt(["convert", sample, try TestPaths.scratchPath("gpt-oss-int4-nothing"), "--to", "int4-g32", "--dry-run"])
    #expect(refused.status == 1 && refused.stderr.contains("quantizes no weight of this checkpoint"), "\(refused.stderr)")
  }
}
