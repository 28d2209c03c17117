import Checkpoint
import CommandLineSupport
import Foundation
import JSON
import SafeTensors
import SmeltCommands
import Testing
import WeightFormats
import WeightSources
@testable import Validation

/// Issue 14 item 3: validate's default model-level gate, `--preset`, the printed gates and exit status 2.
@Suite("validate applies a model-level gate preset by default and says which")
struct ValidationGateTests {
  /// The FP8 sample's codes without their `weight_scale_inv` tensors and without `quantization_config`: what
  /// an unscaled cast of block-FP8 codes hands its consumer (issue 14 item 1's garbage model).
  static let unscaledCodes: Result<String, any Error> = Result {
    let sample = try Checkpoint.open(Fixtures.fp8Sample)
    let tensors = try sample.tensorNames.filter { !$0.hasSuffix("weight_scale_inv") }.map { name in
      let view = try sample.tensor(name)
      return (name, view.dtype, view.shape, view.copyBytes())
    }
    let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.fp8Sample + "/config.json"))
    var config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    config.removeValue(forKey: "quantization_config")
    let text = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]), as: UTF8.self)
    return try Fixtures.writeCheckpoint(tensors, config: text)
  }

  static func validate(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
    let stdout = TextOutput.capture(), stderr = TextOutput.capture()
    let status = SmeltCommands.run(arguments: ["validate"] + arguments + ["-q"], stdout: stdout, stderr: stderr)
    return (status, stdout.text, stderr.text)
  }

  @Test("unscaled FP8 codes fail the default model-level gate (top-1 near 0), which the old default let pass")
  func unscaledCodesFailByDefault() throws {
    let broken = try Self.unscaledCodes.get()
    let run = Self.validate([Fixtures.fp8Sample, broken, "--level", "model"])
    #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
    #expect(run.stdout.contains("model: preset fp8 (default for the candidate's coarsest storage, plain F8_E4M3"), "\(run.stdout)")
    #expect(run.stdout.contains("FAIL") && run.stdout.contains("top-1 agreement"), "\(run.stdout)")
  }

  @Test("a correct FP8 conversion (the BF16 sample's FP8 twin) passes the default gate, which is printed")
  func correctConversionPasses() throws {
    let jsonPath = try Fixtures.temporaryDirectory("gates") + "/report.json"
    let run = Self.validate([Fixtures.bf16Sample, Fixtures.fp8Sample, "--level", "model"])
    #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
    #expect(run.stdout.contains("model: preset fp8 (default for the candidate's coarsest storage, fp8-block F8_E4M3"), "\(run.stdout)")
    #expect(run.stdout.contains("mean KL <= 1, top-1 agreement >= 25.0%"), "\(run.stdout)")
    let written = Self.validate([Fixtures.bf16Sample, Fixtures.fp8Sample, "--level", "model", "--json-file", jsonPath])
    #expect(written.status == 0 && written.stdout.isEmpty, "\(written.stdout)\(written.stderr)")
    let document = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: jsonPath))))
    #expect(document["gates"]?["model"]?["preset"]?.stringValue == "fp8")
    #expect(document["gates"]?["model"]?["none"]?.boolValue == false)
    #expect(document["thresholds"]?["max_mean_kl"]?.doubleValue == ValidationPreset.fp8.maximumMeanKL)
  }

  @Test("validate follows every command's --json convention: --json prints the report, --json-file PATH writes those bytes, --json FILE is refused")
  func jsonConvention() throws {
    let path = try Fixtures.temporaryDirectory("json-convention") + "/report.json"
    let arguments = [Fixtures.bf16Sample, Fixtures.fp8Sample, "--level", "tensor", "--layers", "0"]
    let printed = Self.validate(arguments + ["--json"])
    #expect(printed.status == 0, "\(printed.stderr)")
    let document = try JSONParser.parse(Array(printed.stdout.utf8))
    #expect(document["schema"]?.stringValue == ValidationReport.schema)
    let written = Self.validate(arguments + ["--json-file", path])
    #expect(written.status == 0 && written.stdout.isEmpty, "\(written.stdout)\(written.stderr)")
    #expect(try String(contentsOfFile: path, encoding: .utf8) == printed.stdout)
    let old = Self.validate(arguments + ["--json", path])
    #expect(old.status == 64, "\(old.stderr)")
  }

  @Test("--preset none judges no model-level limit and says so; --preset int4 and --max-kld (alias --max-kl) are named")
  func explicitPresets() throws {
    let broken = try Self.unscaledCodes.get()
    let none = Self.validate([Fixtures.fp8Sample, broken, "--level", "model", "--preset", "none"])
    #expect(none.status == 0, "\(none.stdout)\(none.stderr)")
    #expect(none.stdout.contains("preset none (--preset): NO model-level limit"), "\(none.stdout)")
    for spelling in ["--max-kld", "--max-kl"] {
      let tight = Self.validate([Fixtures.bf16Sample, Fixtures.fp8Sample, "--level", "model", "--preset", "int4", spelling, "0.001"])
      #expect(tight.status == 1, "\(tight.stdout)")
      #expect(tight.stdout.contains("preset int4 (--preset; --max-kld given): mean KL <= 0.001, top-1 agreement >= 10.0%"), "\(tight.stdout)")
    }
    #expect(Self.validate([Fixtures.bf16Sample, Fixtures.fp8Sample, "--preset", "int3"]).status == 64)
  }

  @Test("checkpoints that cannot be compared exit 2, not 1 (missing candidate, different architectures)")
  func couldNotCompareExitsTwo() throws {
    let missing = Self.validate([Fixtures.bf16Sample, "/nonexistent/smelt-candidate"])
    #expect(missing.status == 2, "\(missing.stderr)")
    #expect(missing.stderr.contains("could not compare"), "\(missing.stderr)")
    let other = try Fixtures.temporaryDirectory("other-architecture")
    for name in try FileManager.default.contentsOfDirectory(atPath: Fixtures.bf16Sample) where !name.hasPrefix(".") {
      try FileManager.default.copyItem(atPath: Fixtures.bf16Sample + "/" + name, toPath: other + "/" + name)
    }
    let config = try String(contentsOfFile: other + "/config.json", encoding: .utf8)
    try config.replacingOccurrences(of: "\"rope_theta\": 10000", with: "\"rope_theta\": 20000")
      .write(toFile: other + "/config.json", atomically: true, encoding: .utf8)
    #expect(Self.validate([Fixtures.bf16Sample, other, "--level", "model"]).status == 2)
  }

  @Test("the automatic preset is the coarsest family among the candidate's weights")
  func automaticPreset() throws {
    #expect(ValidationPreset.automatic(for: try CheckpointWeightProvider(path: Fixtures.bf16Sample)).preset == .lossless)
    #expect(ValidationPreset.automatic(for: try CheckpointWeightProvider(path: Fixtures.fp8Sample)).preset == .fp8)
    #expect(PrecisionFamily.lossless < .fp8 && PrecisionFamily.fp8 < .int4 && PrecisionFamily.int4 < .fp4)
    #expect(ValidationPreset.all.map(\.name) == ["lossless", "fp8", "int8", "int4", "fp4", "none"])
  }
}
