import TensorCore

/// Bit packing of 4- and 8-bit codes into the words and bytes that checkpoints store.
///
/// Every layout here is LSB-first: element k of a word sits at bits `bits·k`.
public enum Packing {
  /// Parallel `packRowsIntoWordsReference` (bits 4 or 8): word-sized chunks in parallel, no per-element
  /// bounds checks. Bit-identical to the reference.
  public static func packRowsIntoWords(_ codes: [UInt8], rowCount: Int, columnCount: Int, bits: Int) -> [UInt32] {
    let perWord = 32 / bits
    let wordCount = rowCount * columnCount / perWord
    var words = [UInt32](repeating: 0, count: wordCount)
    codes.withUnsafeBytes { raw in
      let input = SharedRawBuffer(raw)
      words.withUnsafeMutableBufferPointer { out in
        let output = DisjointMutableBuffer(out)
        Parallel.forEachChunk(count: wordCount, minimumChunk: 1 << 14) { range in
          let c = input.bytes
          for j in range {
            var word: UInt32 = 0
            let base = j * perWord
            for k in 0..<perWord { word |= UInt32(c[base + k]) << UInt32(bits * k) }
            output.buffer[j] = word
          }
        }
      }
    }
    return words
  }

  /// Parallel `packNibblePairsReference`. Bit-identical to the reference.
  public static func packNibblePairs(_ codes: [UInt8]) -> [UInt8] {
    let byteCount = codes.count / 2
    var bytes = [UInt8](repeating: 0, count: byteCount)
    codes.withUnsafeBytes { raw in
      let input = SharedRawBuffer(raw)
      bytes.withUnsafeMutableBufferPointer { out in
        let output = DisjointMutableBuffer(out)
        Parallel.forEachChunk(count: byteCount, minimumChunk: 1 << 16) { range in
          let c = input.bytes
          for i in range { output.buffer[i] = (c[2 * i] & 0xF) | (c[2 * i + 1] & 0xF) << 4 }
        }
      }
    }
    return bytes
  }

  /// Packs `codes` (`[rowCount, columnCount]`, each < 2^bits) along the columns into 32-bit words:
  /// word j of a row holds elements `(32/bits)·j ...`, element `(32/bits)·j + k` at bits `bits·k`.
  /// `columnCount` must be a multiple of `32/bits`.
  public static func packRowsIntoWordsReference(_ codes: [UInt8], rowCount: Int, columnCount: Int, bits: Int)
    -> [UInt32]
  {
    let perWord = 32 / bits
    let wordsPerRow = columnCount / perWord
    var words = [UInt32](repeating: 0, count: rowCount * wordsPerRow)
    for r in 0..<rowCount {
      for j in 0..<wordsPerRow {
        var word: UInt32 = 0
        for k in 0..<perWord {
          word |= UInt32(codes[r * columnCount + j * perWord + k]) << UInt32(bits * k)
        }
        words[r * wordsPerRow + j] = word
      }
    }
    return words
  }

  /// Packs 4-bit `codes` (`[rowCount, columnCount]`) along the rows (compressed-tensors `packed_dim=0`):
  /// word (i, c) holds rows `8i ..< 8i+8` of column c, row `8i + k` at bits `4k`; missing rows are 0.
  public static func packColumnsIntoWords(_ codes: [UInt8], rowCount: Int, columnCount: Int) -> [UInt32] {
    let wordRows = (rowCount + 7) / 8
    var words = [UInt32](repeating: 0, count: wordRows * columnCount)
    for r in 0..<rowCount {
      for c in 0..<columnCount {
        words[(r / 8) * columnCount + c] |= UInt32(codes[r * columnCount + c] & 0xF) << UInt32(4 * (r % 8))
      }
    }
    return words
  }

  /// Packs pairs of 4-bit codes into bytes: low nibble = even element, high nibble = odd element.
  public static func packNibblePairsReference(_ codes: [UInt8]) -> [UInt8] {
    (0..<codes.count / 2).map { i in (codes[2 * i] & 0xF) | (codes[2 * i + 1] & 0xF) << 4 }
  }

  /// The inverse of `packNibblePairs`.
  public static func unpackNibblePairs(_ bytes: [UInt8]) -> [UInt8] {
    var codes = [UInt8](repeating: 0, count: bytes.count * 2)
    for (i, b) in bytes.enumerated() {
      codes[2 * i] = b & 0xF
      codes[2 * i + 1] = b >> 4
    }
    return codes
  }

  /// The inverse of `packRowsIntoWords`.
  public static func unpackRowsFromWords(_ words: [UInt32], rowCount: Int, columnCount: Int, bits: Int) -> [UInt8] {
    let perWord = 32 / bits
    let wordsPerRow = columnCount / perWord
    let mask = UInt32((1 << bits) - 1)
    var codes = [UInt8](repeating: 0, count: rowCount * columnCount)
    for r in 0..<rowCount {
      for j in 0..<wordsPerRow {
        let word = words[r * wordsPerRow + j]
        for k in 0..<perWord {
          codes[r * columnCount + j * perWord + k] = UInt8(truncatingIfNeeded: (word >> UInt32(bits * k)) & mask)
        }
      }
    }
    return codes
  }

  /// The inverse of `packColumnsIntoWords`.
  public static func unpackColumnsFromWords(_ words: [UInt32], rowCount: Int, columnCount: Int) -> [UInt8] {
    var codes = [UInt8](repeating: 0, count: rowCount * columnCount)
    for r in 0..<rowCount {
      for c in 0..<columnCount {
        codes[r * columnCount + c] = UInt8(
          truncatingIfNeeded: (words[(r / 8) * columnCount + c] >> UInt32(4 * (r % 8))) & 0xF)
      }
    }
    return codes
  }

  /// Transposes a row-major `[rowCount, columnCount]` array.
  public static func transpose<T>(_ values: [T], rowCount: Int, columnCount: Int) -> [T] {
    guard let first = values.first else { return [] }
    var out = [T](repeating: first, count: values.count)
    for r in 0..<rowCount {
      for c in 0..<columnCount { out[c * rowCount + r] = values[r * columnCount + c] }
    }
    return out
  }
}
