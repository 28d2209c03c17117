import Checkpoint
import CommandLineSupport
import Foundation
import JSON
import Pipeline
import ReferenceModel
import Testing
import WeightFormats
import WeightSources
@testable import Sensitivity
@testable import SmeltCommands
@testable import Validation

/// Issue 12 item 3: `validate --sensitivity --to SCHEME` and the recipe it writes.
@Suite("validate --sensitivity: KL per tensor group and a mixed recipe")
struct SensitivityTests {
  static func smelt(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
    let stdout = TextOutput.capture(), stderr = TextOutput.capture()
    let status = SmeltCommands.run(arguments: arguments + ["-q"], stdout: stdout, stderr: stderr)
    return (status, stdout.text, stderr.text)
  }

  /// Bytes of the `.safetensors` files in `directory`.
  static func weightFileBytes(_ directory: String) throws -> Int {
    try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".safetensors") }.reduce(0) {
      $0 + ((try FileManager.default.attributesOfItem(atPath: directory + "/" + $1)[.size] as? Int) ?? 0)
    }
  }

  /// `validate ORIG OUT --level model --json-file`: the mean KL.
  static func modelKL(_ candidate: String, tokens: String, seed: String) throws -> Double {
    let report = try Fixtures.temporaryDirectory("sens-report") + "/report.json"
    let run = smelt(["validate", Fixtures.bf16Sample, candidate, "--level", "model", "--random-tokens", tokens, "--seed", seed, "--json-file", report])
    #expect(run.status == 0, "\(run.stderr)")
    let document = try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: report))))
    return try #require(document["model"]?["kl_mean"]?.doubleValue)
  }

  @Test("the greedy upgrades the group with the most KL saved per byte while the size allows")
  func greedyPicksKLPerByte() {
    typealias O = RecipeSelection.Option
    // Group 0: a big upgrade saving little per byte; group 1: a small one saving a lot; group 2: no gain.
    let groups: [[O]] = [
      [O(byteCount: 100, meanKL: 0.5), O(byteCount: 200, meanKL: 0.3)],
      [O(byteCount: 10, meanKL: 0.4), O(byteCount: 30, meanKL: 0.1), O(byteCount: 60, meanKL: 0)],
      [O(byteCount: 5, meanKL: 0), O(byteCount: 50, meanKL: 0)],
    ]
    // Start: 115 bytes + 1000 fixed. Upgrades by ratio: g1 0→1 (0.015/B), g1 1→2 (0.0033/B), g0 (0.002/B).
    #expect(RecipeSelection.choose(groups, fixedByteCount: 1000, target: .size(1115)) == [0, 0, 0])
    #expect(RecipeSelection.choose(groups, fixedByteCount: 1000, target: .size(1135)) == [0, 1, 0])
    #expect(RecipeSelection.choose(groups, fixedByteCount: 1000, target: .size(1165)) == [0, 2, 0])
    #expect(RecipeSelection.choose(groups, fixedByteCount: 1000, target: .size(1264)) == [0, 2, 0])
    #expect(RecipeSelection.choose(groups, fixedByteCount: 1000, target: .size(1265)) == [1, 2, 0])
    // A size below the cheapest choice: every group at its cheapest.
    #expect(RecipeSelection.choose(groups, fixedByteCount: 1000, target: .size(10)) == [0, 0, 0])
    // A KL target stops at the first choice reaching it: 0.9 → 0.6 after g1 0→1, 0.5 after g1 1→2.
    #expect(RecipeSelection.choose(groups, fixedByteCount: 0, target: .meanKL(0.6)) == [0, 1, 0])
    #expect(RecipeSelection.choose(groups, fixedByteCount: 0, target: .meanKL(0.45)) == [1, 2, 0])
    #expect(RecipeSelection.choose(groups, fixedByteCount: 0, target: .meanKL(0)) == [1, 2, 0])
  }

  @Test("the in-memory read-back of a job equals the converted checkpoint's weight as validate decodes it")
  func readBackEqualsConvertedWeight() throws {
    let checkpoint = try Checkpoint.open(try Fixtures.layerSlice.get())
    for scheme in ["int4-g64", "nvfp4"] {
      let plan = try ConversionPlan(checkpoint: checkpoint, target: try #require(ConversionTarget.parse(scheme)))
      let output = try Fixtures.temporaryDirectory("sens-readback")
      let runner = ConversionRunner(plan: plan, checkpoint: checkpoint, output: output)
      _ = try runner.run(resume: false, commandLine: ["test"]) { _ in }
      let converted = try CheckpointWeightProvider(path: output)
      var compared = 0
      for (index, job) in plan.jobs.enumerated() {
        guard case .group = job.action else { continue }
        let name = WeightDecoding.logicalName(of: job.group)
        let values = try #require(try runner.readBack(job: index))
        #expect(values == (try converted.weight(name).values), "\(scheme) \(name)")
        compared += 1
      }
      #expect(compared > 5)
    }
  }

  @Test("usage errors exit 64: --sensitivity without --to or with a candidate, recipe options without what they refine")
  func usageErrors() {
    let sample = Fixtures.bf16Sample
    for arguments in [
      ["validate", sample, "--sensitivity"],
      ["validate", sample, sample, "--sensitivity", "--to", "int4-g64"],
      ["validate", sample, sample, "--write-recipe", "/tmp/never.json"],
      ["validate", sample, sample, "--to", "int4-g64"],
      ["validate", sample, "--sensitivity", "--to", "int4-g64", "--target-size", "3M"],
      ["validate", sample, "--sensitivity", "--to", "int4-g64", "--write-recipe", "/tmp/never.json", "--target-size", "3M", "--target-kld", "1"],
      ["validate", sample, "--sensitivity", "--to", "fp8-block"],
      ["validate", sample, "--sensitivity", "--to", "no-such-scheme"],
    ] {
      let run = Self.smelt(arguments)
      #expect(run.status == 64, "\(arguments): \(run.status) \(run.stderr)")
    }
    #expect(!FileManager.default.fileExists(atPath: "/tmp/never.json"))
  }

  @Test("the recipe --sensitivity writes at plain int4-g64's size converts no larger and with a lower model-level KL")
  func recipeBeatsPlainInt4AtItsSize() throws {
    let work = try Fixtures.temporaryDirectory("sens-recipe")
    let recipe = work + "/recipe.json", report = work + "/sensitivity.json"
    let run = Self.smelt([
      "validate", Fixtures.bf16Sample, "--sensitivity", "--to", "int4-g64", "--random-tokens", "2x16",
      "--write-recipe", recipe, "--json-file", report,
    ])
    #expect(run.status == 0, "\(run.stderr)")
    let document = try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: report))))
    #expect(document["schema"]?.stringValue == DocumentSchema.sensitivity)
    let groups = try #require(document["groups"]?.arrayValue)
    #expect(groups.count >= 10)
    let kls = groups.compactMap { $0["kl_mean"]?.doubleValue }
    #expect(kls == kls.sorted(by: >), "groups sorted by KL")
    #expect(kls.first ?? 0 > 0)

    let mixed = work + "/mixed", plain = work + "/plain"
    #expect(Self.smelt(["convert", Fixtures.bf16Sample, mixed, "--recipe", recipe]).status == 0)
    #expect(Self.smelt(["convert", Fixtures.bf16Sample, plain, "--to", "int4-g64"]).status == 0)
    let (mixedBytes, plainBytes) = (try Self.weightFileBytes(mixed), try Self.weightFileBytes(plain))
    #expect(mixedBytes <= plainBytes, "recipe \(mixedBytes) B vs plain int4-g64 \(plainBytes) B")
    // Measured on other tokens than the sensitivity run's.
    let (mixedKL, plainKL) = (
      try Self.modelKL(mixed, tokens: "4x32", seed: "1"), try Self.modelKL(plain, tokens: "4x32", seed: "1")
    )
    #expect(mixedKL < plainKL, "recipe KL \(mixedKL) vs plain int4-g64 \(plainKL)")
  }
}
