import Checkpoint
import GGUFModel
import JSON
import SystemIO
import TensorCore
import Testing
import TestSupport
import WeightFormats
import WeightSources
@testable import Pipeline
@testable import Validation

/// `validate ORIG X.gguf`: a GGUF read as the checkpoint it holds.
@Suite("validate on a GGUF")
struct GGUFValidationTests {
  // A deepseek2 GGUF stores kv_b_proj as its two quantized MLA halves; the provider rebuilds it in F32, and it
  // was judged as a lossless F32 weight (40 dB floor), failing every Q4_K_M conversion on it.
  @Test("a rebuilt kv_b_proj is judged by its quantized halves, not as a lossless F32 weight")
  func rebuiltKeyValueJudgedByItsHalves() throws {
    let sample = TestPaths.sample("tiny-deepseek-v3")
    let output = FileSystem.join(try TestPaths.scratchDirectory("validate-gguf-q4km"), "q4km.gguf")
    let checkpoint = try Checkpoint.open(sample)
    let plan = try GGUFConversionPlan(
      checkpoint: checkpoint, output: output, options: GGUFConversionPlan.Options(preset: .mostlyQ4_K_M))
    _ = try GGUFConversionRunner(plan: plan, checkpoint: checkpoint, chunkElements: 1 << 15, workerCount: 2)
      .run(resume: false) { _ in }

    let candidate = try CheckpointWeightProvider(path: output)
    let name = "model.layers.1.self_attn.kv_b_proj.weight"
    #expect(candidate.storage(of: name) == .plain)
    let judged = candidate.judgedStorages(of: name)
    #expect(judged.count == 2 && judged.allSatisfy { $0.storage != .plain && $0.dtype == .uint8 }, "\(judged)")
    #expect(candidate.storageDescription(of: name).hasPrefix("plain F32 from ggml-"), "\(candidate.storageDescription(of: name))")

    let report = try Validator(
      reference: try CheckpointWeightProvider(path: sample), candidate: candidate,
      options: ValidationOptions(levels: [.tensor, .layer], layers: IndexSelection([0, 1]))
    ).run()
    let keyValue = report.tensors.filter { $0.name.hasSuffix("kv_b_proj.weight") }
    #expect(keyValue.count == 2)
    for tensor in keyValue {
      #expect(tensor.failure == nil, "\(tensor.name): \(tensor.failure ?? "")")
      #expect(tensor.minimumSNRDecibels < 40, "\(tensor.name) held to \(tensor.minimumSNRDecibels) dB")
    }
    // An F32 tensor the GGUF stores as such is still held to the lossless floor.
    let norm = try #require(candidate.judgedStorages(of: "model.layers.1.input_layernorm.weight").first)
    #expect(norm.storage == .plain && norm.dtype == .float32)
    #expect(report.failures.isEmpty, "\(report.failures.map(\.summary))")
  }

  @Test("a GGUF of Kimi K2.5 is compared under the release's language_model names; the vision tower it does not hold is left out by design, not missing")
  func wrapperComparedUnderReleaseNames() throws {
    let sample = TestPaths.sample("tiny-kimi-k2.5")
    let output = FileSystem.join(try TestPaths.scratchDirectory("validate-gguf-kimi"), "kimi-f32.gguf")
    let checkpoint = try Checkpoint.open(sample)
    let plan = try GGUFConversionPlan(checkpoint: checkpoint, output: output, options: GGUFConversionPlan.Options(preset: .allF32))
    _ = try GGUFConversionRunner(plan: plan, checkpoint: checkpoint, workerCount: 2).run(resume: false) { _ in }

    let reference = try CheckpointWeightProvider(path: sample)
    let candidate = try CheckpointWeightProvider(path: output, comparedWith: reference)
    #expect(candidate.contains("language_model.model.layers.1.mlp.experts.3.up_proj.weight"))
    #expect(candidate.contains("model.layers.1.mlp.experts.3.up_proj.weight"))
    #expect(candidate.leavesOut("vision_tower.encoder.final_layernorm.weight"))
    #expect(!candidate.leavesOut("language_model.model.norm.weight"))
    // Opened on its own, the same GGUF leaves nothing of a wrapper out.
    #expect(!(try CheckpointWeightProvider(path: output)).leavesOut("vision_tower.encoder.final_layernorm.weight"))

    let report = try Validator(reference: reference, candidate: candidate, options: ValidationOptions(levels: [.tensor])).run()
    let leftOut = report.tensors.filter(\.leftOut)
    #expect(!leftOut.isEmpty && leftOut.allSatisfy { !$0.name.hasPrefix("language_model.") })
    let compared = report.tensors.filter { !$0.leftOut }
    #expect(compared.map(\.name).sorted() == reference.logicalNames.filter { $0.hasPrefix("language_model.") }.sorted())
    // F32 holds every decoded value exactly — each weight, kv_b_proj rebuilt from its halves — except the int4 routed
    // experts: there the GGUF keeps llama.cpp's converter's exact product (code − 8) · scale, which the registry's
    // decoder (compressed-tensors' rule) rounds to BF16, so they agree to a BF16 rounding.
    let int4Experts = compared.filter { $0.name.contains(".mlp.experts.") }
    #expect(!int4Experts.isEmpty && int4Experts.allSatisfy { ($0.metrics.snrDecibels ?? 0) > 45 })
    #expect(int4Experts.contains { ($0.metrics.snrDecibels ?? .infinity) < .infinity })
    #expect(compared.filter { !$0.name.contains(".mlp.experts.") }.allSatisfy { $0.metrics.snrDecibels == .infinity || $0.metrics.referenceIsZero })
    #expect(report.failures.isEmpty, "\(report.failures.map(\.summary))")
    // --json counts them apart from zero-reference weights and marks them, not as passes.
    #expect(report.json["summary"]?["left_out_tensors"]?.intValue == leftOut.count)
    #expect(report.json["summary"]?["zero_reference_tensors"]?.intValue == compared.filter(\.metrics.referenceIsZero).count)
    let vision = report.json["tensors"]?.arrayValue?.first { $0["name"]?.stringValue == leftOut[0].name }
    #expect(vision?["status"]?.stringValue == "left_out")
    // The other way round, only the wrapper's weights outside its language model are the candidate's own.
    let reversed = Validator(
      reference: try CheckpointWeightProvider(path: output), candidate: reference, options: ValidationOptions(levels: [.tensor]))
    #expect(reversed.candidateOnlyNote()?.contains("has \(leftOut.count) weight(s)") == true, "\(reversed.candidateOnlyNote() ?? "none")")
  }
}
