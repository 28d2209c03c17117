import Checkpoint
import Foundation
import ReferenceModel
import Quantization
import Testing
@testable import Validation

@Suite("selections, tokens, configuration, metrics")
struct ParsingTests {
  @Test("layer and expert selections accept lists and ranges")
  func selections() throws {
    #expect(try IndexSelection(parsing: "0,3,60", option: "--layers").indices == [0, 3, 60])
    #expect(try IndexSelection(parsing: "4-7,0, 2", option: "--experts").indices == [0, 2, 4, 5, 6, 7])
    #expect(try IndexSelection(parsing: "0-3,5", option: "--experts").description == "0-3,5")
    for bad in ["", "a", "3-1", "1,,2", "-1", "1-2-3"] {
      #expect(throws: ValidationError.self, "'\(bad)'") { try IndexSelection(parsing: bad, option: "--layers") }
    }
    #expect(throws: ValidationError.self) { try IndexSelection([0, 61]).check(below: 61, option: "--layers") }
  }

  @Test("token lists: sequences by ';' or newline, ids by ',' or spaces; ragged and negative rejected")
  func tokens() throws {
    #expect(try TokenBatch.parse("1,2,3;4,5,6") == [[1, 2, 3], [4, 5, 6]])
    #expect(try TokenBatch.parse("1 2\n3 4\n") == [[1, 2], [3, 4]])
    #expect(throws: ReferenceModelError.self) { try TokenBatch.parse("1,2;3") }
    #expect(throws: ReferenceModelError.self) { try TokenBatch.parse("1,-2") }
    #expect(throws: ReferenceModelError.self) { try TokenBatch.parse(" ; ") }
    #expect(throws: ReferenceModelError.self) { try TokenBatch.check([[1, 512]], vocabularySize: 512) }
    let random = TokenBatch.random(count: 10, vocabularySize: 7, seed: 3)
    #expect(random == TokenBatch.random(count: 10, vocabularySize: 7, seed: 3))
    #expect(random[0].allSatisfy { (0..<7).contains($0) })
  }

  @Test("config.json maps to the forward pass's configuration; missing and unsupported fields are named")
  func configurationMapping() throws {
    let sample = try #require(try Checkpoint.open(Fixtures.bf16Sample).config)
    let configuration = try ModelConfiguration(checkpointConfig: sample)
    #expect(configuration.layerCount == 4 && configuration.attention.queryLoraRank == 192)
    #expect(configuration.rope.yarn?.factor == 40)
    #expect(configuration.mixtureOfExperts?.routedExpertCount == 16)

    func config(_ json: String) throws -> ModelConfig { try ModelConfig(json: Array(json.utf8), path: "config.json") }
    let base = """
      "vocab_size": 8, "hidden_size": 4, "intermediate_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1,
      "kv_lora_rank": 2, "qk_nope_head_dim": 2, "qk_rope_head_dim": 2, "v_head_dim": 2
      """
    #expect(try ModelConfiguration(checkpointConfig: try config("{\(base)}")).mixtureOfExperts == nil)
    #expect(throws: ReferenceModelError.invalidConfiguration(field: "vocab_size", value: "missing", reason: "config.json must set it")) {
      try ModelConfiguration(checkpointConfig: try config("{\(base.replacingOccurrences(of: "\"vocab_size\": 8,", with: ""))}"))
    }
    for (extra, field) in [
      (#""hidden_act": "gelu""#, "hidden_act"), (#""rope_scaling": {"type": "linear", "factor": 2}"#, "rope_scaling.type"),
      (#""n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 2, "scoring_func": "relu""#, "scoring_func"),
    ] {
      #expect(throws: ReferenceModelError.self) { try ModelConfiguration(checkpointConfig: try config("{\(base), \(extra)}")) }
      do { _ = try ModelConfiguration(checkpointConfig: try config("{\(base), \(extra)}")) } catch {
        #expect("\(error)".contains(field), "\(error)")
      }
    }
    #expect(throws: ReferenceModelError.self) {
      try ModelConfiguration(checkpointConfig: try config(#"{"vocab_size": 8, "hidden_size": 4, "intermediate_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1}"#))
    }
  }

  @Test("metrics: identical is +inf dB, a zero reference has no SNR, non-finite candidates are counted")
  func metrics() {
    let same = ComparisonMetrics(reference: [1, 2, 3], candidate: [1, 2, 3])
    #expect(same.snrDecibels == .infinity && same.cosineSimilarity == 1)
    let noisy = ComparisonMetrics(reference: [1, 0, 0, 0], candidate: [1, 0.1, 0, 0])
    #expect(abs((noisy.snrDecibels ?? 0) - 20) < 1e-5)
    let zero = ComparisonMetrics(reference: [0, 0], candidate: [0, 0])
    #expect(zero.snrDecibels == nil && zero.referenceIsZero && zero.candidateIsZero)
    #expect(ComparisonMetrics(reference: [1, 2], candidate: [.nan, 2]).nonFiniteCount == 1)
    let large = (0..<200_000).map { Float($0 % 97) }
    let shifted = large.map { $0 + 0.5 }
    var streamed = ErrorStatistics()
    large.withUnsafeBufferPointer { r in
      shifted.withUnsafeBufferPointer { c in
        streamed.add(reference: UnsafeBufferPointer(rebasing: r[..<1000]), candidate: UnsafeBufferPointer(rebasing: c[..<1000]))
        streamed.addParallel(reference: UnsafeBufferPointer(rebasing: r[1000...]), candidate: UnsafeBufferPointer(rebasing: c[1000...]))
      }
    }
    let whole = ComparisonMetrics(reference: large, candidate: shifted)
    #expect(abs((ComparisonMetrics(streamed).snrDecibels ?? 0) - (whole.snrDecibels ?? 1)) < 1e-9)
    #expect(whole.maxAbsoluteError == 0.5)
  }

  @Test("logit statistics: KL of identical logits is 0; a known two-token case; top-1 agreement")
  func logitStatistics() throws {
    let reference = try FloatTensor(shape: [1, 2, 2], values: [0, 0, 2, 0])
    let candidate = try FloatTensor(shape: [1, 2, 2], values: [0, 0, 0, 2])
    let stats = LogitStatistics(reference: reference, candidate: candidate)
    #expect(stats.perPositionKL[0] == 0)
    // p = (e²/(e²+1), 1/(e²+1)), q = reversed: KL = (p0 − p1)·2.
    let p0 = 7.38905609893065 / 8.38905609893065
    #expect(abs(stats.perPositionKL[1] - (p0 - (1 - p0)) * 2) < 1e-12)
    #expect(stats.top1Agreements == 1 && stats.positionCount == 2)
    #expect(stats.maxAbsoluteDifference == 2)
    #expect(stats.maxKL == stats.perPositionKL[1] && stats.p99KL == stats.maxKL)
  }
}
