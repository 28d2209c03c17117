import Foundation
import Synchronization
import Testing
@testable import ReferenceModel

/// Records every tensor name it serves, in order.
final class RecordingProvider: WeightProvider, Sendable {
  let inner: InMemoryWeightProvider
  let requests = Mutex<[String]>([])
  init(_ inner: InMemoryWeightProvider) { self.inner = inner }
  func weight(_ name: String) throws -> FloatTensor {
    requests.withLock { $0.append(name) }
    return try inner.weight(name)
  }
  func contains(_ name: String) -> Bool { inner.contains(name) }
}

@Suite("forward pass")
struct ForwardPassTests {
  @Test("logits have shape [B, T, V] and are finite")
  func logitsShape() throws {
    let model = try Fixtures.randomModel()
    let result = try model.forward([[1, 2, 3], [4, 5, 6]], options: ForwardOptions(recordLayerOutputs: true))
    #expect(result.logits.shape == [2, 3, 40])
    #expect(result.logits.values.allSatisfy { $0.isFinite })
    #expect(result.layerOutputs.count == 2)
    #expect(result.embeddings?.values.count == 2 * 3 * 32)
    #expect(result.routing.map(\.layer) == [1], "layer 0 is dense, layer 1 MoE")
    #expect(result.routing[0].decisions.count == 6)
    #expect(result.routing[0].decisions.allSatisfy { $0.expertIDs.count == 2 && Set($0.expertIDs).count == 2 })
  }

  @Test("changing a later token leaves earlier logits unchanged (causal)")
  func causal() throws {
    let model = try Fixtures.randomModel()
    let a = try model.forward([[1, 2, 3, 4, 5]]).logits.values
    let b = try model.forward([[1, 2, 3, 4, 9]]).logits.values
    let V = 40
    #expect(Array(a[..<(4 * V)]) == Array(b[..<(4 * V)]))
    #expect(Array(a[(4 * V)...]) != Array(b[(4 * V)...]))
  }

  @Test("each sequence of a batch computes bit-identically as if alone", arguments: [true, false])
  func batchIndependence(queryLowRank: Bool) throws {
    let model = try Fixtures.randomModel(queryLoraRank: queryLowRank ? 24 : nil, yarn: !queryLowRank)
    let batch = try model.forward([[7, 8, 9, 10], [11, 12, 13, 14]]).logits.values
    let first = try model.forward([[7, 8, 9, 10]]).logits.values
    let second = try model.forward([[11, 12, 13, 14]]).logits.values
    #expect(batch == first + second)
  }

  @Test("weights are requested one layer at a time, and only the experts some token selects")
  func layerAtATime() throws {
    let model = try Fixtures.randomModel()
    guard let inner = model.weights as? InMemoryWeightProvider else { return }
    let provider = RecordingProvider(inner)
    let recorded = try ReferenceModel(configuration: model.configuration, weights: provider)
    let result = try recorded.forward([[1, 2]])
    let requests = provider.requests.withLock { $0 }
    let layers = requests.compactMap { name -> Int? in
      guard name.hasPrefix("model.layers.") else { return nil }
      return Int(name.split(separator: ".")[2])
    }
    #expect(layers == layers.sorted(), "no layer's weights are requested after the next layer started")
    let selected = Set(result.routing[0].decisions.flatMap(\.expertIDs))
    let loadedExperts = Set(
      requests.filter { $0.contains(".mlp.experts.") }.compactMap { Int($0.split(separator: ".")[5]) })
    #expect(loadedExperts == selected)
  }

  @Test("a ragged batch, an unknown token and a missing tensor are errors that say what is wrong")
  func errors() throws {
    let model = try Fixtures.randomModel()
    #expect(throws: ReferenceModelError.raggedBatch(sequence: 1, length: 1, expectedLength: 2)) {
      try model.forward([[1, 2], [3]])
    }
    #expect(throws: ReferenceModelError.tokenOutOfRange(token: 40, sequence: 0, position: 1, vocabularySize: 40)) {
      try model.forward([[1, 40]])
    }
    #expect(throws: ReferenceModelError.emptyInput) { try model.forward([]) }
    guard var inner = model.weights as? InMemoryWeightProvider else { return }
    inner.tensors["model.layers.1.self_attn.kv_b_proj.weight"] = nil
    let broken = try ReferenceModel(configuration: model.configuration, weights: inner)
    #expect(throws: ReferenceModelError.missingWeight(name: "model.layers.1.self_attn.kv_b_proj.weight")) {
      try broken.forward([[1]])
    }
    inner.tensors["model.layers.1.self_attn.kv_b_proj.weight"] = try FloatTensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
    let misshapen = try ReferenceModel(configuration: model.configuration, weights: inner)
    #expect(
      throws: ReferenceModelError.weightShapeMismatch(
        name: "model.layers.1.self_attn.kv_b_proj.weight", expected: [32, 16], actual: [2, 3])
    ) { try misshapen.forward([[1]]) }
  }

  @Test("configurations that cannot run are rejected up front")
  func invalidConfiguration() throws {
    var configuration = try Fixtures.randomModel().configuration
    configuration.mixtureOfExperts?.router = .sigmoidGroupLimited(
      groupCount: 3, selectedGroupCount: 1, maskedScore: .zero)
    #expect(throws: ReferenceModelError.self) {
      try ReferenceModel(configuration: configuration, weights: InMemoryWeightProvider())
    }
  }
}
