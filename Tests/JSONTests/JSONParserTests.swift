import Testing

@testable import JSON

@Suite("JSON parser")
struct JSONParserTests {
  @Test(
    "accepts valid documents",
    arguments: [
      ("{}", JSONValue.object(JSONObject())),
      ("[]", .array([])),
      (" \t\r\n{\"a\" : [1, -2, 3.5e-1, true, false, null]} \n", ["a": [1, -2, .number(JSONNumber(text: "3.5e-1")!), true, false, nil]]),
      ("\"x\"", "x"),
      ("0", 0),
      ("-0", .number(JSONNumber(text: "-0")!)),
      ("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\u{8}\u{c}\n\r\t"),
      ("\"\\u00e9\\uD83D\\uDE00\"", "é😀"),
      ("\"héllo wörld 😀\"", "héllo wörld 😀"),
      ("[[[]]]", [[[]]]),
    ] as [(String, JSONValue)])
  func acceptsValid(text: String, expected: JSONValue) throws {
    #expect(try JSONParser.parse(text) == expected)
  }

  @Test(
    "rejects each violation with its specific error",
    arguments: [
      ("", JSONError.unexpectedEnd(byteOffset: 0, expected: "a value")),
      ("   ", .unexpectedEnd(byteOffset: 3, expected: "a value")),
      ("\u{FEFF}{}", .byteOrderMark),
      ("[1,]", .trailingComma(byteOffset: 3)),
      ("{\"a\":1,}", .trailingComma(byteOffset: 7)),
      ("[1,,2]", .unexpectedByte(byteOffset: 3, found: UInt8(ascii: ","), expected: "a value")),
      ("{\"a\":1 // c\n}", .comment(byteOffset: 7)),
      ("/* c */ {}", .comment(byteOffset: 0)),
      ("NaN", .nonFiniteNumber(byteOffset: 0)),
      ("[Infinity]", .nonFiniteNumber(byteOffset: 1)),
      ("-Infinity", .nonFiniteNumber(byteOffset: 0)),
      ("01", .leadingZero(byteOffset: 0)),
      ("-007", .leadingZero(byteOffset: 0)),
      ("1.", .invalidNumber(byteOffset: 0, reason: "expected a digit after '.'")),
      (".5", .unexpectedByte(byteOffset: 0, found: UInt8(ascii: "."), expected: "a value")),
      ("1e", .invalidNumber(byteOffset: 0, reason: "expected a digit in the exponent")),
      ("-", .invalidNumber(byteOffset: 0, reason: "expected a digit after '-'")),
      ("+1", .unexpectedByte(byteOffset: 0, found: UInt8(ascii: "+"), expected: "a value")),
      ("\"a\tb\"", .controlCharacterInString(byteOffset: 2, byte: 9)),
      ("\"a\u{0}\"", .controlCharacterInString(byteOffset: 2, byte: 0)),
      ("\"\\x\"", .invalidEscape(byteOffset: 1)),
      ("\"\\u12G4\"", .invalidEscape(byteOffset: 1)),
      ("\"\\ud800\"", .loneSurrogate(byteOffset: 1, codeUnit: 0xD800)),
      ("\"\\udc00\"", .loneSurrogate(byteOffset: 1, codeUnit: 0xDC00)),
      ("\"\\ud800\\u0041\"", .loneSurrogate(byteOffset: 1, codeUnit: 0xD800)),
      ("{} x", .trailingCharacters(byteOffset: 3, found: UInt8(ascii: "x"))),
      ("{}\u{0}", .trailingCharacters(byteOffset: 2, found: 0)),
      ("{\"a\":1,\"a\":2}", .duplicateKey(key: "a", byteOffset: 7, depth: 1)),
      ("[{\"k\":{\"x\":1,\"x\":1}}]", .duplicateKey(key: "x", byteOffset: 13, depth: 3)),
      ("tru", .unexpectedByte(byteOffset: 0, found: UInt8(ascii: "t"), expected: "a value")),
      ("{\"a\" 1}", .unexpectedByte(byteOffset: 5, found: UInt8(ascii: "1"), expected: "':' after an object key")),
      ("{a:1}", .unexpectedByte(byteOffset: 1, found: UInt8(ascii: "a"), expected: "a string key")),
      ("[1 2]", .unexpectedByte(byteOffset: 3, found: UInt8(ascii: "2"), expected: "',' or ']'")),
      ("\"abc", .unexpectedEnd(byteOffset: 4, expected: "'\"' to close the string")),
      ("{\"a\":", .unexpectedEnd(byteOffset: 5, expected: "a value")),
      ("'a'", .unexpectedByte(byteOffset: 0, found: UInt8(ascii: "'"), expected: "a value")),
    ] as [(String, JSONError)])
  func rejects(text: String, expected: JSONError) {
    #expect(throws: expected) { try JSONParser.parse(text) }
  }

  @Test(
    "rejects invalid UTF-8 inside strings at the offending byte",
    arguments: [
      ([0x22, 0xFF, 0x22], 1),  // invalid lead byte
      ([0x22, 0x61, 0xC0, 0xAF, 0x22], 2),  // overlong '/'
      ([0x22, 0xED, 0xA0, 0x80, 0x22], 1),  // encoded surrogate U+D800
      ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1),  // above U+10FFFF
      ([0x22, 0xE2, 0x82, 0x22], 1),  // truncated sequence
      ([0x22, 0x5C, 0x6E, 0x80, 0x22], 3),  // stray continuation after an escape
    ] as [([UInt8], Int)])
  func rejectsInvalidUTF8(bytes: [UInt8], offset: Int) {
    #expect(throws: JSONError.invalidUTF8(byteOffset: offset)) { try JSONParser.parse(bytes) }
  }

  @Test("rejects nesting deeper than the limit")
  func rejectsDeepNesting() throws {
    let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
    #expect(throws: Never.self) { try JSONParser.parse(ok) }
    let deep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
    #expect(throws: JSONError.tooDeep(byteOffset: 128, maxDepth: 128)) { try JSONParser.parse(deep) }
    #expect(throws: JSONError.tooDeep(byteOffset: 6, maxDepth: 2)) { try JSONParser.parse("[{\"a\":[]}]", maxDepth: 2) }
    // Deep input far beyond the limit fails cleanly instead of overflowing the stack.
    let hostile = String(repeating: "[", count: 100_000)
    #expect(throws: JSONError.tooDeep(byteOffset: 128, maxDepth: 128)) { try JSONParser.parse(hostile) }
  }

  @Test("keeps object members in document order and looks them up by key")
  func objectOrderAndLookup() throws {
    let keys = (0..<40).map { "key\(39 - $0)" }
    let text = "{" + keys.enumerated().map { "\"\($1)\":\($0)" }.joined(separator: ",") + "}"
    let value = try JSONParser.parse(text)
    let object = try #require(value.objectValue)
    #expect(object.keys == keys)
    #expect(value["key39"]?.intValue == 0)
    #expect(value["key0"]?.intValue == 39)
    #expect(value["missing"] == nil)
    // Duplicates are found in large (indexed) objects too.
    let duplicate = "{" + keys.map { "\"\($0)\":0" }.joined(separator: ",") + ",\"key7\":1}"
    #expect(throws: JSONError.duplicateKey(key: "key7", byteOffset: duplicate.utf8.count - 9, depth: 1)) {
      try JSONParser.parse(duplicate)
    }
  }

  @Test("convenience accessors return nil on type mismatch")
  func accessors() throws {
    let value = try JSONParser.parse(#"{"s":"x","i":7,"d":0.5,"b":true,"a":[1],"o":{},"n":null}"#)
    #expect(value["s"]?.stringValue == "x")
    #expect(value["i"]?.intValue == 7)
    #expect(value["i"]?.doubleValue == 7)
    #expect(value["d"]?.doubleValue == 0.5)
    #expect(value["d"]?.intValue == nil)
    #expect(value["b"]?.boolValue == true)
    #expect(value["a"]?.arrayValue?.count == 1)
    #expect(value["a"]?[0]?.intValue == 1)
    #expect(value["a"]?[1] == nil)
    #expect(value["o"]?.objectValue?.isEmpty == true)
    #expect(value["n"]?.isNull == true)
    #expect(value["s"]?.intValue == nil)
    #expect(value["i"]?.stringValue == nil)
    #expect(value[0] == nil)
  }
}
