import Foundation
import JSON
import ReferenceModel
import Testing
import WeightSources
@testable import Validation

/// The model-level quality report: means with standard errors over a batch, perplexity, per-layer drift.
@Suite("validate's quality report")
struct QualityReportTests {
  func modelLevel(seed: UInt64, sequences: Int, length: Int) throws -> ModelComparison {
    var options = ValidationOptions(levels: [.model], randomTokenCount: length, seed: seed)
    options.randomSequenceCount = sequences
    let report = try Validator(
      reference: try CheckpointWeightProvider(path: Fixtures.bf16Sample),
      candidate: try CheckpointWeightProvider(path: Fixtures.fp8Sample), options: options
    ).run()
    return try #require(report.model)
  }

  @Test("two batches of other seeds agree within the standard errors the report gives")
  func stableAcrossSeedsWithinStandardError() throws {
    let first = try modelLevel(seed: 1, sequences: 4, length: 24)
    let second = try modelLevel(seed: 2, sequences: 4, length: 24)
    #expect(first.tokens.count == 4 && first.tokens.allSatisfy { $0.count == 24 } && first.positionCount == 96)
    #expect(first.tokens != second.tokens)
    for m in [first, second] {
      #expect(m.meanKLStandardError > 0 && m.meanKLStandardError < m.meanKL, "KL \(m.meanKL) ± \(m.meanKLStandardError)")
      #expect(m.top1StandardError > 0 && m.top1StandardError < 0.1, "top-1 ± \(m.top1StandardError)")
    }
    // Three combined standard errors: a 0.3 % chance of failing for two honest batches.
    let klBound = 3 * (first.meanKLStandardError * first.meanKLStandardError + second.meanKLStandardError * second.meanKLStandardError).squareRoot()
    #expect(abs(first.meanKL - second.meanKL) <= klBound, "KL \(first.meanKL) vs \(second.meanKL), bound \(klBound)")
    let top1Bound = 3 * (first.top1StandardError * first.top1StandardError + second.top1StandardError * second.top1StandardError).squareRoot()
    #expect(abs(first.top1Agreement - second.top1Agreement) <= top1Bound)
    let ratio = try #require(first.perplexityRatio)
    #expect(ratio > 0.5 && ratio < 2, "perplexity ratio \(ratio)")
    #expect(first.hiddenStates.allSatisfy { ($0.relativeError ?? 1) < 1 })
  }

  @Test("without --tokens, validate draws 8 sequences of 32 ids: standard errors small next to the gates")
  func defaultRandomBatch() throws {
    let options = ValidationOptions(levels: [.model])
    #expect(options.randomSequenceCount == 8 && options.randomTokenCount == 32)
    #expect(TokenBatch.randomShape(TokenBatch.defaultRandomShapeText).map { [$0.sequences, $0.length] } == [8, 32])
    let m = try modelLevel(seed: 0, sequences: options.randomSequenceCount, length: options.randomTokenCount)
    #expect(m.positionCount == 256)
    #expect(m.top1StandardError < 0.05 && m.meanKLStandardError < 0.25 * m.meanKL, "KL \(m.meanKL) ± \(m.meanKLStandardError), top-1 ± \(m.top1StandardError)")
  }

  @Test("perplexity is exp of the mean negative log-likelihood of each next token, per sequence")
  func perplexityOfNextTokens() throws {
    // Two sequences of 3 tokens over a vocabulary of 2; the last position of each predicts nothing.
    let logits = try FloatTensor(shape: [2, 3, 2], values: [0, 0, 0, log(3), 9, 9, log(3), 0, 0, 0, 5, -5])
    let tokens = [[0, 1, 0], [1, 0, 1]]
    // Predictions: p(1)=1/2, p(0)=1/4 | p(0)=3/4, p(1)=1/2.
    let expected = exp(-(log(0.5) + log(0.25) + log(0.75) + log(0.5)) / 4)
    let perplexity = try #require(LogitStatistics.perplexity(logits: logits, tokens: tokens))
    #expect(abs(perplexity - expected) < 1e-6 * expected, "\(perplexity) vs \(expected)")
    #expect(LogitStatistics.perplexity(logits: try FloatTensor(shape: [1, 1, 2], values: [0, 0]), tokens: [[1]]) == nil)
  }

  @Test("--random-tokens takes L or a batch BxL; the first sequence does not depend on B")
  func randomTokenBatches() {
    #expect(TokenBatch.randomShape("24").map { [$0.sequences, $0.length] } == [1, 24])
    #expect(TokenBatch.randomShape("8x32").map { [$0.sequences, $0.length] } == [8, 32])
    #expect(TokenBatch.randomShape("8×32").map { [$0.sequences, $0.length] } == [8, 32])
    for bad in ["", "x", "8x", "x32", "0x4", "4x0", "2x3x4", "-1", "1001x1000", "ax3"] {
      #expect(TokenBatch.randomShape(bad) == nil, "'\(bad)'")
    }
    let one = TokenBatch.random(count: 16, vocabularySize: 1000, seed: 7)
    let three = TokenBatch.random(count: 16, sequences: 3, vocabularySize: 1000, seed: 7)
    #expect(three.count == 3 && three[0] == one[0] && three[1] != three[0])
  }

  @Test("the JSON report carries the standard errors, the perplexities and each layer's relative error")
  func jsonCarriesTheQualityFigures() throws {
    var options = ValidationOptions(levels: [.model], randomTokenCount: 8)
    options.randomSequenceCount = 2
    let report = try Validator(
      reference: try CheckpointWeightProvider(path: Fixtures.bf16Sample),
      candidate: try CheckpointWeightProvider(path: Fixtures.fp8Sample), options: options
    ).run()
    let model = try #require(report.json["model"])
    for key in ["kl_mean_standard_error", "top1_standard_error", "perplexity_reference", "perplexity_candidate", "perplexity_ratio"] {
      #expect(model[key]?.numberValue != nil, "\(key)")
    }
    #expect(model["hidden_states"]?.arrayValue?.first?["rel_error"]?.numberValue != nil)
  }
}
