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
}
