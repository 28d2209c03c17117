import Foundation
import SafeTensors
import SystemIO
import TensorCore
import TestSupport
import Testing

@testable import Checkpoint

/// Issue 14 item 2: verify reads a checkpoint as its consumer does, config.json first.
@Suite("verify: every tensor is explained by config.json, every declared method has tensors")
struct ConsumerVerificationTests {
  /// A copy of sample `name` with its config.json rewritten by `edit`.
  static func copy(_ name: String, as label: String, editing edit: (inout [String: Any]) -> Void) throws -> String {
    let directory = try TestPaths.scratchDirectory(label)
    let sample = TestPaths.sample(name)
    for file in try FileManager.default.contentsOfDirectory(atPath: sample) where !file.hasPrefix(".") {
      try FileManager.default.copyItem(atPath: sample + "/" + file, toPath: directory + "/" + file)
    }
    let path = directory + "/config.json"
    var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    edit(&config)
    try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
    return directory
  }

  @Test("FP8 codes with scales but no quantization_config are errors naming the tensor and its file")
  func scalesWithoutQuantizationConfig() throws {
    let directory = try Self.copy("tiny-deepseek-v3-fp8", as: "no-quantization-config") { $0.removeValue(forKey: "quantization_config") }
    let report = Verification.verify(directory: directory, deep: false)
    #expect(!report.isClean)
    let first = try #require(report.errors.first { $0.code == .unexplainedTensor })
    #expect(first.tensor?.hasSuffix(".weight") == true && first.file?.hasSuffix(".safetensors") == true, "\(first)")
    #expect(first.message.contains("fp8-block") && first.message.contains("weight_scale_inv") && first.message.contains("no quantization_config"), "\(first)")
    #expect(Verification.consumerCheck(directory: directory).contains { $0.code == .unexplainedTensor })
  }

  @Test("a quantization method the tensors do not use is an error on config.json")
  func declaredMethodWithoutTensors() throws {
    let directory = try Self.copy("tiny-deepseek-v3", as: "fp8-config-bf16-tensors") {
      $0["quantization_config"] = ["quant_method": "fp8", "weight_block_size": [128, 128], "fmt": "e4m3"]
    }
    let report = Verification.verify(directory: directory, deep: false)
    let finding = try #require(report.errors.first { $0.code == .configWithoutTensors })
    #expect(finding.file == "config.json" && finding.message.contains("quant_method 'fp8'"), "\(finding)")
  }

  @Test("a scale tensor no weight uses is an error naming it")
  func orphanScale() throws {
    let directory = try TestPaths.scratchDirectory("orphan-scale")
    let tensors: [(String, DType, [Int])] = [
      ("model.layers.0.mlp.up_proj.weight", .bfloat16, [2, 2]), ("model.layers.0.mlp.up_proj.weight_scale_inv", .float32, [1, 1]),
    ]
    let layout = try SafeTensorsLayout(tensors: tensors.map { PlannedTensor(name: $0.0, dtype: $0.1, shape: $0.2) })
    var file = layout.headerBytes
    file.append(contentsOf: [0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0, 0, 0x80, 0x3F])
    try FileSystem.writeFileAtomically(file, to: directory + "/model.safetensors")
    try FileSystem.writeFileAtomically(Array(#"{"model_type": "deepseek_v3"}"#.utf8), to: directory + "/config.json")
    let report = Verification.verify(directory: directory, deep: false)
    let finding = try #require(report.errors.first { $0.code == .unexplainedTensor })
    #expect(finding.tensor == "model.layers.0.mlp.up_proj.weight_scale_inv" && finding.file == "model.safetensors", "\(finding)")
    #expect(finding.message.contains("no weight uses it"), "\(finding)")
  }

  @Test("every bundled sample (released layouts) is explained by its own config")
  func samplesAreConsistent() throws {
    for name in try FileManager.default.contentsOfDirectory(atPath: TestPaths.repositoryRoot + "/samples") where name.hasPrefix("tiny-") {
      let findings = Verification.consumerCheck(directory: TestPaths.sample(name))
      #expect(findings.isEmpty, "\(name): \(findings)")
    }
  }
}
