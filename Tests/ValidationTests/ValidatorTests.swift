import CommandLineSupport
import Foundation
import ReferenceModel
import TensorCore
import JSON
import SmeltCommands
import Testing
import WeightSources
@testable import Validation

@Suite("smelt validate gates conversions")
struct ValidatorTests {
  static let expertWeight = "model.layers.3.mlp.experts.7.up_proj.weight"

  @Test("a good FP8 conversion passes the tensor and layer levels on the converted layer and expert")
  func goodConversionPasses() throws {
    let converted = try Fixtures.fp8Conversion.get()
    let options = ValidationOptions(
      levels: [.tensor, .layer], layers: IndexSelection([3]), experts: IndexSelection([7]))
    let report = try Validator(
      reference: try CheckpointWeightProvider(path: Fixtures.bf16Sample),
      candidate: try CheckpointWeightProvider(path: converted), options: options
    ).run()
    #expect(report.passed, "\(report.failures.map(\.summary))")
    let expert = try #require(report.tensors.first { $0.name == Self.expertWeight })
    #expect(expert.candidateStorage == "fp8-block F8_E4M3" && expert.minimumSNRDecibels == 25)
    #expect((expert.metrics.snrDecibels ?? 0) > 28)
    #expect((expert.metrics.peakError ?? 1) <= 16.0 / 448)
    // Only layer 3, only expert 7 among the routed experts.
    #expect(report.tensors.allSatisfy { $0.layer == 3 && ($0.expert == nil || $0.expert == 7) })
    #expect(report.linears.contains { $0.name == Self.expertWeight && $0.input == .random })
    #expect(report.routing.map(\.layer) == [3] && report.routing[0].unchangedFraction == 1)
  }

  @Test("a few corrupted bytes in one expert fail the gate, naming the tensor and the layer (exit 1)")
  func damagedConversionFails() throws {
    let converted = try Fixtures.fp8Conversion.get()
    let damaged = try Fixtures.damagedCopy(of: converted, tensor: Self.expertWeight)
    let stdout = TextOutput.capture(), stderr = TextOutput.capture()
    let jsonPath = try Fixtures.temporaryDirectory("json") + "/report.json"
    let status = SmeltCommands.run(
      arguments: [
        "validate", Fixtures.bf16Sample, damaged, "--layers", "3", "--experts", "7", "--json-file", jsonPath,
      ], stdout: stdout, stderr: stderr)
    #expect(status == 1, "\(stderr.text)")
    // --json-file: stdout (the JSON document) went to the file; the table is a log on stderr.
    #expect(stdout.text.isEmpty)
    #expect(stderr.text.contains("FAIL"))
    // Eight codes set to 448 in 16384 leave the SNR at 27.8 dB (above the 25 dB floor); the peak error (0.066 of
    // the tensor's max |value|, where FP8 rounding stays below 0.036) catches them.
    #expect(stderr.text.contains("tensor \(Self.expertWeight) (layer 3, expert 7): peak error"), "\(stderr.text)")

    let document = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: jsonPath))))
    #expect(document["schema"]?.stringValue == ValidationReport.schema)
    #expect(document["passed"]?.boolValue == false)
    let failures = try #require(document["failures"]?.arrayValue)
    #expect(failures.contains { $0["subject"]?.stringValue == Self.expertWeight && $0["layer"]?.intValue == 3 })
    // Only the damaged tensor fails at the tensor level.
    #expect(Set(failures.filter { $0["level"]?.stringValue == "tensor" }.compactMap { $0["subject"]?.stringValue }) == [Self.expertWeight])
  }

  @Test("the model level runs both models (BF16 sample vs its FP8 twin): KL, top-1, hidden states, routing")
  func modelLevel() throws {
    let options = ValidationOptions(
      levels: [.layer, .model], tokens: [[5, 17, 200, 3, 99, 42]], layers: IndexSelection([3]),
      experts: IndexSelection([7]), hiddenStateInputs: true)
    let report = try Validator(
      reference: try CheckpointWeightProvider(path: Fixtures.bf16Sample),
      candidate: try CheckpointWeightProvider(path: Fixtures.fp8Sample), options: options
    ).run()
    let model = try #require(report.model)
    #expect(model.positionCount == 6 && model.hiddenStates.count == 4 && model.routing.map(\.layer) == [1, 2, 3])
    #expect(model.meanKL > 0 && model.meanKL < 0.5 && model.maxKL >= model.p99KL && model.p99KL >= model.meanKL)
    #expect(model.hiddenStates[0].metrics.cosineSimilarity > 0.99)
    #expect(model.top1Agreements <= 6 && model.maxAbsoluteLogitDifference > 0)
    // Real-activation inputs for every kind of linear of layer 3, the exact ones included.
    for suffix in ["q_a_proj", "q_b_proj", "kv_b_proj", "o_proj", "shared_experts.down_proj", "experts.7.up_proj"] {
      let linear = report.linears.first { $0.input == .hidden && $0.name.hasSuffix("\(suffix).weight") }
      #expect((linear?.metrics.snrDecibels ?? 0) > 25, "\(suffix)")
    }
    #expect(report.routing.map(\.source) == ["layer-hidden"])
    #expect(report.passed, "\(report.failures.map(\.summary))")
    let strict = model.violations(of: ValidationThresholds(maximumMeanKL: 0, minimumTop1Agreement: 1))
    #expect(strict.first?.hasPrefix("mean KL") == true)
  }

  // Issue 12: the layer level's real inputs come out of the reference forward pass itself.
  @Test("real-input rows are what each linear received in the reference forward pass: a routed expert only its tokens")
  func capturedInputs() throws {
    let tokens = [[5, 17, 200, 3, 99, 42, 7, 150]]
    let reference = try CheckpointWeightProvider(path: Fixtures.bf16Sample)
    let report = try Validator(
      reference: reference, candidate: try CheckpointWeightProvider(path: Fixtures.fp8Sample),
      options: ValidationOptions(levels: [.layer], tokens: tokens, layers: IndexSelection([3]), hiddenStateInputs: true)
    ).run()
    let run = try ReferenceModel(configuration: try reference.modelConfiguration(), weights: reference).forward(tokens)
    let decisions = try #require(run.routing.first { $0.layer == 3 }).decisions
    let real = report.linears.filter { $0.input == .hidden }
    let routed = real.filter { $0.name.contains(".mlp.experts.") }
    #expect(Set(routed.compactMap(\.expert)) == Set(decisions.flatMap(\.expertIDs)))
    for linear in routed {
      let expert = try #require(linear.expert)
      #expect(linear.rowCount == decisions.filter { $0.expertIDs.contains(expert) }.count, "\(linear.name)")
    }
    let dense = real.filter { !$0.name.contains(".mlp.experts.") }
    #expect(dense.count >= 9 && dense.allSatisfy { $0.rowCount == tokens[0].count }, "\(dense.map { ($0.name, $0.rowCount) })")
    #expect(dense.contains { $0.name.hasSuffix("self_attn.o_proj.weight") })
    #expect(report.routing.map(\.tokenCount) == [tokens[0].count])
  }

  // Issue 15 item 16: an architecture mismatch printed two raw Swift structures.
  @Test("an architecture mismatch names the first differing field and its two values, no Swift structures")
  func architectureMismatchMessage() throws {
    let candidate = try Fixtures.temporaryDirectory("other-architecture")
    for name in try FileManager.default.contentsOfDirectory(atPath: Fixtures.bf16Sample) where !name.hasPrefix(".") {
      try FileManager.default.copyItem(atPath: Fixtures.bf16Sample + "/" + name, toPath: candidate + "/" + name)
    }
    let config = try String(contentsOfFile: candidate + "/config.json", encoding: .utf8)
    try config.replacingOccurrences(of: "\"rope_theta\": 10000", with: "\"rope_theta\": 20000")
      .write(toFile: candidate + "/config.json", atomically: true, encoding: .utf8)
    let validator = Validator(
      reference: try CheckpointWeightProvider(path: Fixtures.bf16Sample),
      candidate: try CheckpointWeightProvider(path: candidate), options: ValidationOptions(levels: [.model]))
    do {
      _ = try validator.run()
      Issue.record("configurations that differ must be refused")
    } catch {
      let message = "\(error)"
      #expect(message.contains("rope") && message.contains("10000") && message.contains("20000"), "\(message)")
      #expect(!message.contains("Configuration("), "\(message)")
    }
  }

  @Test("a zero reference has no SNR: reported as 'zero reference', not a failure when both are zero")
  func zeroReference() throws {
    let zeros = Fixtures.bytes([Float](repeating: 0, count: 8))
    let reference = try Fixtures.writeCheckpoint([("model.layers.0.mlp.down_proj.weight", .float32, [2, 4], zeros)])
    let same = try Fixtures.writeCheckpoint([("model.layers.0.mlp.down_proj.weight", .float32, [2, 4], zeros)])
    let nonzero = try Fixtures.writeCheckpoint([
      ("model.layers.0.mlp.down_proj.weight", .float32, [2, 4], Fixtures.bytes([0, 0, 0, 1, 0, 0, 0, 0]))
    ])
    let options = ValidationOptions(levels: [.tensor])
    let pass = try Validator(
      reference: try CheckpointWeightProvider(path: reference), candidate: try CheckpointWeightProvider(path: same),
      options: options
    ).run()
    #expect(pass.passed && pass.tensors[0].note == "zero reference" && pass.tensors[0].metrics.snrDecibels == nil)
    let fail = try Validator(
      reference: try CheckpointWeightProvider(path: reference), candidate: try CheckpointWeightProvider(path: nonzero),
      options: options
    ).run()
    #expect(!fail.passed && (fail.tensors[0].failure ?? "").hasPrefix("zero reference"))
  }

  @Test("usage errors: --level model with --layers, bad selections, out-of-range tokens")
  func usageErrors() throws {
    for arguments in [
      ["--level", "model", "--layers", "1"], ["--layers", "x"], ["--layers", "9"], ["--tokens", "1,600", "--level", "model"],
      ["--min-top1", "2"],
    ] {
      let stdout = TextOutput.capture(), stderr = TextOutput.capture()
      let status = SmeltCommands.run(
        arguments: ["validate", Fixtures.bf16Sample, Fixtures.bf16Sample] + arguments, stdout: stdout, stderr: stderr)
      #expect(status == 64, "\(arguments): \(stderr.text)")
    }
  }
}
