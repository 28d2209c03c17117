import Testing

@testable import Quantization

@Suite("4/8-bit packing")
struct PackingTests {
  @Test("4-bit words hold element 8j+k at bits 4k")
  func fourBitWords() {
    let codes: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 15, 0, 0, 0, 0, 0, 0, 9]
    #expect(Packing.packRowsIntoWords(codes, rowCount: 1, columnCount: 16, bits: 4) == [0x8765_4321, 0x9000_000F])
  }

  @Test("zero points pack along dim 0 with zero padding")
  func columnPacking() {
    // 9 rows x 2 columns: word row 0 holds rows 0...7, word row 1 holds row 8 and seven zero nibbles.
    let codes: [UInt8] = (0..<18).map { UInt8($0 % 16) }
    let words = Packing.packColumnsIntoWords(codes, rowCount: 9, columnCount: 2)
    #expect(words == [0xECA8_6420, 0xFDB9_7531, 0x0000_0000, 0x0000_0001])
    #expect(Packing.unpackColumnsFromWords(words, rowCount: 9, columnCount: 2) == codes)
  }

  @Test("parallel packers equal the scalar references", arguments: [4, 8])
  func fastEqualsReference(bits: Int) {
    let codes: [UInt8] = (0..<(3 * 4096)).map {
      UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) & UInt8((1 << bits) - 1)
    }
    #expect(
      Packing.packRowsIntoWords(codes, rowCount: 3, columnCount: 4096, bits: bits)
        == Packing.packRowsIntoWordsReference(codes, rowCount: 3, columnCount: 4096, bits: bits))
    let nibbles = codes.map { $0 & 0xF }
    #expect(Packing.packNibblePairs(nibbles) == Packing.packNibblePairsReference(nibbles))
    #expect(Packing.unpackNibblePairs(Packing.packNibblePairs(nibbles)) == nibbles)
    let words = Packing.packRowsIntoWords(codes, rowCount: 3, columnCount: 4096, bits: bits)
    #expect(Packing.unpackRowsFromWords(words, rowCount: 3, columnCount: 4096, bits: bits) == codes)
    #expect(GroupQuantRounding.encodeWords(words) == GroupQuantRounding.encodeWordsReference(words))
  }
}
