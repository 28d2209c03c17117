import Foundation
import Synchronization
import Testing
@testable import ReferenceModel

@Suite("tiny DeepSeek-V3 sample")
struct SampleModelTests {
  static let sampleDirectory = Fixtures.repositoryRoot.appendingPathComponent("samples/tiny-deepseek-v3")

  @Test("config.json maps to the sample's sizes (q_lora_rank, YaRN, noaux_tc)")
  func configuration() throws {
    let configuration = try Fixtures.loadConfiguration(directory: Self.sampleDirectory)
    #expect(configuration.hiddenSize == 256 && configuration.layerCount == 4 && configuration.headCount == 4)
    #expect(configuration.attention.queryLoraRank == 192 && configuration.attention.queryKeyHeadDimension == 96)
    #expect(configuration.rope.yarn?.factor == 40 && configuration.rope.interleaved)
    #expect(configuration.mixtureOfExperts?.router == .sigmoidGroupLimited(
      groupCount: 4, selectedGroupCount: 2, maskedScore: .negativeInfinity))
    #expect((0..<4).map(configuration.isMixtureOfExpertsLayer) == [false, true, true, true])
  }

  @Test("the BF16 sample runs: finite logits, MTP layer untouched, experts from the two kept groups")
  func runsTheSample() throws {
    let configuration = try Fixtures.loadConfiguration(directory: Self.sampleDirectory)
    let tensors = try Fixtures.loadTensors(directory: Self.sampleDirectory)
    #expect(tensors.keys.contains { $0.hasPrefix("model.layers.4.") }, "the sample has an MTP layer")
    let provider = RecordingProvider(InMemoryWeightProvider(tensors))
    let model = try ReferenceModel(configuration: configuration, weights: provider)
    let tokens = [[0, 17, 255, 3, 99, 511]]
    let result = try model.forward(tokens)
    #expect(result.logits.shape == [1, 6, 512])
    #expect(result.logits.values.allSatisfy { $0.isFinite })
    #expect(!provider.requests.withLock { $0 }.contains { $0.hasPrefix("model.layers.4.") })
    #expect(result.routing.map(\.layer) == [1, 2, 3])
    for layer in result.routing {
      for decision in layer.decisions {
        #expect(decision.expertIDs.count == 4)
        #expect(Set(decision.expertIDs.map { $0 / 4 }).count <= 2, "at most topk_group = 2 groups of 4 experts")
        #expect(abs(decision.weights.reduce(0, +) - 2.5) < 1e-5)
      }
    }
  }
}
