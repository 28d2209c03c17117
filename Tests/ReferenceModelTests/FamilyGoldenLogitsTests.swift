import Foundation
import Testing
@testable import ReferenceModel

/// Each new family's forward pass (Qwen3-MoE, GLM-4.5, MiniMax-M2, DeepSeek-V3.2; gpt-oss's MXFP4 sample is read
/// by the checkpoint reader, in ValidationTests) against its transformers 5.23 class on the family's tiny FP8 sample
/// dequantized in F32 (`scripts/golden-family-logits.py`): logits within 1e-5 × max |logit|, every layer's
/// residual stream within 1e-5 of its scale, expert selection identical.
@Suite("golden logits from transformers: Qwen3-MoE, GLM-4.5, MiniMax-M2, DeepSeek-V3.2")
struct FamilyGoldenLogitsTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var golden: String
    var sample: String
    /// DeepSeek-V3.2's golden runs with `index_topk` 2 (see scripts/golden-family-logits.py).
    var indexTopK: Int?
    var testDescription: String { golden }
  }

  static let cases = [
    Case(golden: "tiny-qwen3-moe-fp8", sample: "tiny-qwen3-moe-fp8"),
    Case(golden: "tiny-glm4-moe-fp8", sample: "tiny-glm4-moe-fp8"),
    Case(golden: "tiny-minimax-m2-fp8", sample: "tiny-minimax-m2-fp8"),
    Case(golden: "tiny-deepseek-v3.2-fp8-topk-2", sample: "tiny-deepseek-v3.2-fp8", indexTopK: 2),
  ]

  static func goldenURL(_ name: String) -> URL {
    Fixtures.goldenDirectory.appendingPathComponent("families/\(name).golden.safetensors")
  }

  @Test(
    "logits match transformers to 1e-5 × max |logit|; expert selection matches exactly", arguments: cases)
  func matchesTransformers(_ testCase: Case) throws {
    let golden = try Fixtures.loadSafetensors(Self.goldenURL(testCase.golden))
    let directory = Fixtures.repositoryRoot.appendingPathComponent("samples/\(testCase.sample)")
    var configuration = try Fixtures.loadConfiguration(directory: directory)
    if let topK = testCase.indexTopK, case .deepSeekV32(var indexer) = configuration.architecture {
      indexer.topK = topK
      configuration.architecture = .deepSeekV32(indexer)
    }
    let tensors = try Fixtures.dequantizeBlockFP8(
      try Fixtures.loadTensors(directory: directory, skippingPrefix: "model.layers.\(configuration.layerCount)."))
    let model = try ReferenceModel(configuration: configuration, weights: InMemoryWeightProvider(tensors))
    try model.checkWeightShapes()

    let ids = try #require(golden["input_ids"])
    let T = ids.shape[1]
    let tokens = (0..<ids.shape[0]).map { b in (0..<T).map { t in Int(ids.values[b * T + t]) } }
    let result = try model.forward(tokens, options: ForwardOptions(recordLayerOutputs: true))

    let expected = try #require(golden["logits"])
    #expect(result.logits.shape == expected.shape)
    let maxLogit = expected.values.map(abs).max() ?? 0
    let maxError = zip(result.logits.values, expected.values).map { abs($0 - $1) }.max() ?? 0
    #expect(maxError <= 1e-5 * maxLogit, "max |Δlogit| \(maxError) vs max |logit| \(maxLogit)")
    print("golden \(testCase.golden): max |Δlogit| / max |logit| = \(maxError / maxLogit)")

    for (layer, output) in result.layerOutputs.enumerated() {
      let reference = try #require(golden["hidden.layer.\(layer)"])
      let scale = reference.values.map(abs).max() ?? 1
      let error = zip(output.values, reference.values).map { abs($0 - $1) }.max() ?? 0
      #expect(error <= 1e-5 * scale, "layer \(layer) hidden state: max error \(error) vs max \(scale)")
    }

    var moeLayers = 0
    for routing in result.routing {
      moeLayers += 1
      let experts = try #require(golden["router.layer.\(routing.layer).experts"])
      let k = experts.shape[1]
      for (row, decision) in routing.decisions.enumerated() {
        let theirs = (0..<k).map { Int(experts.values[row * k + $0]) }
        #expect(decision.expertIDs.sorted() == theirs, "layer \(routing.layer) token \(row)")
      }
    }
    #expect(moeLayers == (0..<configuration.layerCount).filter { golden["router.layer.\($0).experts"] != nil }.count)
  }
}
