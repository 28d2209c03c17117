import Testing

@testable import JSON

/// The token reader's fast paths (eight bytes at a time) agree with the byte-by-byte definitions.
@Suite("JSON scanner")
struct JSONScannerTests {
  /// Reads the number at the start of `text` with `readUnsignedInteger`; also returns where it stopped.
  static func unsignedInteger(_ text: String) throws -> (UInt64?, Int) {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBytes { raw in
      var scanner = JSONScanner(raw)
      let value = try scanner.readUnsignedInteger()
      return (value, scanner.position)
    }
  }

  @Test("unsigned integers of every length, at every distance from the end of the buffer")
  func unsignedIntegers() throws {
    var values: [UInt64] = [0, 7, 10, 99, 12_345_678, 123_456_789, 9_999_999_999_999_999, UInt64.max]
    var power: UInt64 = 1
    for _ in 0..<19 {
      values.append(power)
      values.append(power &* 9 &+ (power - 1))  // 9 followed by nines
      power &*= 10
    }
    for value in values {
      let digits = String(value)
      for padding in [0, 1, 7, 8, 9, 16, 17] {
        for suffix in ["", ",", "]", " ", "}"] {
          let text = digits + suffix + String(repeating: " ", count: padding)
          let (parsed, end) = try Self.unsignedInteger(text)
          #expect(parsed == value, "\(text)")
          #expect(end == digits.utf8.count, "\(text)")
        }
      }
    }
    // Beyond UInt64: a valid number, but not a UInt64.
    #expect(try Self.unsignedInteger("18446744073709551616,").0 == nil)
  }

  @Test("numbers that are not plain non-negative integers are read whole and give nil, or throw")
  func otherNumbers() throws {
    for text in ["1.5", "1e3", "12345678.25", "123456789012E2 ", "-1", "0.0000000001"] {
      let (value, end) = try Self.unsignedInteger(text)
      #expect(value == nil, "\(text)")
      #expect(end == text.trimmingSuffix(" ").utf8.count, "\(text)")
    }
    #expect(throws: JSONError.leadingZero(byteOffset: 0)) { try Self.unsignedInteger("0123456789012345678") }
    #expect(throws: JSONError.leadingZero(byteOffset: 0)) { try Self.unsignedInteger("01") }
    #expect(throws: JSONError.invalidNumber(byteOffset: 0, reason: "expected a digit after '.'")) {
      try Self.unsignedInteger("12345678901.]                 ")
    }
  }

  @Test("string tokens end at the first quote, backslash, control character or invalid byte in any word position")
  func stringSpecialsAtEveryOffset() throws {
    for length in 0..<20 {
      let plain = String(repeating: "a", count: length)
      let bytes = Array(("\"" + plain + "\"" + "        ").utf8)
      try bytes.withUnsafeBytes { raw in
        var scanner = JSONScanner(raw)
        let token = try scanner.readStringToken()
        #expect(token.contentRange == 1..<(1 + length))
        #expect(!token.hasEscapes)
        #expect(scanner.position == length + 2)
      }
      #expect(throws: JSONError.controlCharacterInString(byteOffset: 1 + length, byte: 0x0A)) {
        try JSONParser.parse("\"" + plain + "\n\"")
      }
      #expect(try JSONParser.parse("\"" + plain + "\\n" + plain + "é\"") == .string(plain + "\n" + plain + "é"))
      var invalid = Array(("\"" + plain).utf8)
      invalid.append(0xFF)
      invalid.append(contentsOf: Array("\"       ".utf8))
      #expect(throws: JSONError.invalidUTF8(byteOffset: 1 + length)) { try JSONParser.parse(invalid) }
    }
  }
}

extension String {
  fileprivate func trimmingSuffix(_ character: Character) -> String {
    var result = self
    while result.last == character { result.removeLast() }
    return result
  }
}
