import TensorCore

/// Token ids for a forward pass: one or more sequences of equal length.
public enum TokenBatch {
  /// Parses `ID,ID,...[;ID,...]`: sequences separated by `;` or newlines, ids by commas or spaces.
  /// A `--tokens-file` uses the same syntax (one sequence per line is the natural layout).
  ///
  /// - Throws: `ReferenceModelError.invalidTokens` for a non-number, a negative id, an empty input or sequences
  ///   of different lengths.
  public static func parse(_ text: String) throws(ReferenceModelError) -> [[Int]] {
    var batch: [[Int]] = []
    for line in text.split(whereSeparator: { $0 == ";" || $0 == "\n" || $0 == "\r" }) {
      let items = line.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
      guard !items.isEmpty else { continue }
      var sequence: [Int] = []
      for item in items {
        guard let id = Int(item), id >= 0 else {
          throw .invalidTokens("'\(item)' is not a token id (a non-negative integer)")
        }
        sequence.append(id)
      }
      batch.append(sequence)
    }
    guard let first = batch.first else { throw .invalidTokens("no token ids given") }
    if let ragged = batch.firstIndex(where: { $0.count != first.count }) {
      throw .invalidTokens(
        "sequence \(ragged) has \(batch[ragged].count) tokens but sequence 0 has \(first.count); all sequences need the same length")
    }
    return batch
  }

  /// `sequences` sequences of `count` ids drawn uniformly from `0..<vocabularySize` with one SplitMix64
  /// generator seeded by `seed`, sequence after sequence (the same ids for the same seed on every machine; the
  /// first sequence is the same whatever `sequences` is).
  public static func random(count: Int, sequences: Int = 1, vocabularySize: Int, seed: UInt64) -> [[Int]] {
    var generator = SplitMix64(seed: seed)
    return (0..<max(1, sequences)).map { _ in
      (0..<count).map { _ in Int(generator.next() % UInt64(max(1, vocabularySize))) }
    }
  }

  /// The batch `validate` draws without `--tokens`: 8 sequences of 32 ids, 256 positions, enough that the mean
  /// KL's and the top-1 agreement's standard errors are small next to the gates (24 ids in one sequence gave
  /// ±26 % on the KL and ±10 points on the top-1 agreement of the FP8 sample; 8x32 gives ±17 % and ±3 points).
  public static let defaultRandomShape = (sequences: 8, length: 32)
  /// `defaultRandomShape` as `--random-tokens` spells it.
  public static let defaultRandomShapeText = "\(defaultRandomShape.sequences)x\(defaultRandomShape.length)"

  /// Parses a `--random-tokens` value: `L` (one sequence of L ids) or `BxL` / `B×L` (B sequences of L).
  /// - Returns: `nil` unless both numbers are in 1...1,000,000 and their product too.
  public static func randomShape(_ text: String) -> (sequences: Int, length: Int)? {
    let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "x" || $0 == "×" })
    guard parts.count <= 2, let length = parts.last.flatMap({ Int($0) }) else { return nil }
    let sequences = parts.count == 2 ? Int(parts[0]) : 1
    guard let sequences, (1...1_000_000).contains(sequences), (1...1_000_000).contains(length),
      sequences * length <= 1_000_000
    else { return nil }
    return (sequences, length)
  }

  /// Checks every id is below `vocabularySize`.
  public static func check(_ batch: [[Int]], vocabularySize: Int) throws(ReferenceModelError) {
    for (b, sequence) in batch.enumerated() {
      if let t = sequence.firstIndex(where: { $0 >= vocabularySize }) {
        throw .invalidTokens(
          "token id \(sequence[t]) (sequence \(b), position \(t)) is outside the model's vocabulary of \(vocabularySize) (0..<\(vocabularySize))")
      }
    }
  }
}

