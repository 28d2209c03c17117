/// A strict RFC 8259 JSON parser.
///
/// Accepts exactly the JSON grammar: no byte order mark, comments, trailing commas, `NaN`/`Infinity`,
/// leading zeros, unescaped control characters, invalid escapes, lone surrogates or invalid UTF-8, and
/// nothing but whitespace (space, tab, CR, LF) after the value. Duplicate object keys are rejected
/// (RFC 8259 leaves them undefined; parsers disagree on which one wins). Parses bytes directly without
/// per-character allocation; numbers keep their source text.
public enum JSONParser {
  /// The default nesting limit, the same number serde_json (used by the safetensors crate) starts from.
  public static let defaultMaxDepth = 128

  /// Parses one JSON text.
  ///
  /// - Parameters:
  ///   - bytes: the UTF-8 JSON text.
  ///   - maxDepth: the most arrays/objects that may be open at once; one more is `JSONError.tooDeep`.
  public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws(JSONError)
    -> JSONValue
  {
    var parser = Parser(bytes: bytes, maxDepth: maxDepth)
    return try parser.parseDocument()
  }

  /// Parses one JSON text.
  public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONValue {
    let result: Result<JSONValue, JSONError> = bytes.withUnsafeBytes { raw in
      Result { () throws(JSONError) -> JSONValue in try parse(raw, maxDepth: maxDepth) }
    }
    return try result.get()
  }

  /// Parses one JSON text given as a string.
  public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONValue {
    try parse(Array(text.utf8), maxDepth: maxDepth)
  }
}

private enum ASCII {
  static let quote = UInt8(ascii: "\"")
  static let backslash = UInt8(ascii: "\\")
  static let slash = UInt8(ascii: "/")
  static let comma = UInt8(ascii: ",")
  static let colon = UInt8(ascii: ":")
  static let openBrace = UInt8(ascii: "{")
  static let closeBrace = UInt8(ascii: "}")
  static let openBracket = UInt8(ascii: "[")
  static let closeBracket = UInt8(ascii: "]")
  static let minus = UInt8(ascii: "-")
  static let zero = UInt8(ascii: "0")
  static let nine = UInt8(ascii: "9")
}

private struct Parser {
  let bytes: UnsafeRawBufferPointer
  let count: Int
  let maxDepth: Int
  var position = 0
  var depth = 0
  /// Reused buffer for strings that contain escapes.
  var scratch: [UInt8] = []

  init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
    self.bytes = bytes
    self.count = bytes.count
    self.maxDepth = maxDepth
  }

  @inline(__always) func byte(at index: Int) -> UInt8 { bytes[index] }

  mutating func parseDocument() throws(JSONError) -> JSONValue {
    if count >= 3, byte(at: 0) == 0xEF, byte(at: 1) == 0xBB, byte(at: 2) == 0xBF { throw .byteOrderMark }
    skipWhitespace()
    let value = try parseValue()
    skipWhitespace()
    if position < count { throw .trailingCharacters(byteOffset: position, found: byte(at: position)) }
    return value
  }

  @inline(__always) mutating func skipWhitespace() {
    while position < count {
      switch byte(at: position) {
      case 0x20, 0x0A, 0x0D, 0x09: position += 1
      default: return
      }
    }
  }

  /// The error for an unexpected byte (or end) at `position`, recognizing comments.
  func unexpected(_ expected: String) -> JSONError {
    guard position < count else { return .unexpectedEnd(byteOffset: position, expected: expected) }
    let found = byte(at: position)
    if found == ASCII.slash, position + 1 < count, byte(at: position + 1) == ASCII.slash || byte(at: position + 1) == UInt8(ascii: "*") {
      return .comment(byteOffset: position)
    }
    return .unexpectedByte(byteOffset: position, found: found, expected: expected)
  }

  mutating func parseValue() throws(JSONError) -> JSONValue {
    guard position < count else { throw .unexpectedEnd(byteOffset: position, expected: "a value") }
    switch byte(at: position) {
    case ASCII.openBrace: return .object(try parseObject())
    case ASCII.openBracket: return .array(try parseArray())
    case ASCII.quote: return .string(try parseString())
    case ASCII.minus, ASCII.zero...ASCII.nine: return .number(try parseNumber())
    case UInt8(ascii: "t"):
      try expectLiteral("true")
      return .bool(true)
    case UInt8(ascii: "f"):
      try expectLiteral("false")
      return .bool(false)
    case UInt8(ascii: "n"):
      try expectLiteral("null")
      return .null
    case UInt8(ascii: "N"), UInt8(ascii: "I"): throw .nonFiniteNumber(byteOffset: position)
    default: throw unexpected("a value")
    }
  }

  mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
    let start = position
    let text = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
    for (k, expected) in text.enumerated() {
      position = start + k
      guard position < count, byte(at: position) == expected else {
        position = start
        throw unexpected("a value")
      }
    }
    position = start + text.count
  }

  mutating func enterContainer() throws(JSONError) {
    depth += 1
    if depth > maxDepth { throw .tooDeep(byteOffset: position, maxDepth: maxDepth) }
  }

  mutating func parseObject() throws(JSONError) -> JSONObject {
    try enterContainer()
    position += 1  // '{'
    var object = JSONObject()
    skipWhitespace()
    if position < count, byte(at: position) == ASCII.closeBrace {
      position += 1
      depth -= 1
      return object
    }
    // Small objects are checked for duplicates as keys arrive (linear scan); larger ones once at the end,
    // with their key offsets kept for the error message.
    var keyOffsets: [Int] = []
    while true {
      guard position < count, byte(at: position) == ASCII.quote else {
        if position < count, byte(at: position) == ASCII.closeBrace, !object.isEmpty {
          throw .trailingComma(byteOffset: position)
        }
        throw unexpected("a string key")
      }
      let keyOffset = position
      let key = try parseString()
      if object.count < JSONObject.indexThreshold {
        if object.members.contains(where: { $0.key == key }) {
          throw .duplicateKey(key: key, byteOffset: keyOffset, depth: depth)
        }
      } else {
        if keyOffsets.isEmpty { keyOffsets = Array(repeating: 0, count: object.count) }
        keyOffsets.append(keyOffset)
      }
      skipWhitespace()
      guard position < count, byte(at: position) == ASCII.colon else { throw unexpected("':' after an object key") }
      position += 1
      skipWhitespace()
      let value = try parseValue()
      object.appendDeferringIndex(key: key, value: value)
      skipWhitespace()
      guard position < count else { throw unexpected("',' or '}'") }
      switch byte(at: position) {
      case ASCII.comma:
        position += 1
        skipWhitespace()
      case ASCII.closeBrace:
        position += 1
        if let duplicate = object.buildIndex() {
          throw .duplicateKey(key: object.members[duplicate].key, byteOffset: keyOffsets[duplicate], depth: depth)
        }
        depth -= 1
        return object
      default:
        throw unexpected("',' or '}'")
      }
    }
  }

  mutating func parseArray() throws(JSONError) -> [JSONValue] {
    try enterContainer()
    position += 1  // '['
    var array: [JSONValue] = []
    skipWhitespace()
    if position < count, byte(at: position) == ASCII.closeBracket {
      position += 1
      depth -= 1
      return array
    }
    while true {
      if position < count, byte(at: position) == ASCII.closeBracket, !array.isEmpty {
        throw .trailingComma(byteOffset: position)
      }
      array.append(try parseValue())
      skipWhitespace()
      guard position < count else { throw unexpected("',' or ']'") }
      switch byte(at: position) {
      case ASCII.comma:
        position += 1
        skipWhitespace()
      case ASCII.closeBracket:
        position += 1
        depth -= 1
        return array
      default:
        throw unexpected("',' or ']'")
      }
    }
  }

  @inline(__always) func isDigit(_ index: Int) -> Bool {
    index < count && byte(at: index) >= ASCII.zero && byte(at: index) <= ASCII.nine
  }

  mutating func parseNumber() throws(JSONError) -> JSONNumber {
    let start = position
    var i = position
    if byte(at: i) == ASCII.minus {
      i += 1
      if i < count, byte(at: i) == UInt8(ascii: "I") { throw .nonFiniteNumber(byteOffset: start) }
      guard isDigit(i) else { throw .invalidNumber(byteOffset: start, reason: "expected a digit after '-'") }
    }
    if byte(at: i) == ASCII.zero {
      i += 1
      if isDigit(i) { throw .leadingZero(byteOffset: start) }
    } else {
      while isDigit(i) { i += 1 }
    }
    if i < count, byte(at: i) == UInt8(ascii: ".") {
      i += 1
      guard isDigit(i) else { throw .invalidNumber(byteOffset: start, reason: "expected a digit after '.'") }
      while isDigit(i) { i += 1 }
    }
    if i < count, byte(at: i) == UInt8(ascii: "e") || byte(at: i) == UInt8(ascii: "E") {
      i += 1
      if i < count, byte(at: i) == UInt8(ascii: "+") || byte(at: i) == ASCII.minus { i += 1 }
      guard isDigit(i) else { throw .invalidNumber(byteOffset: start, reason: "expected a digit in the exponent") }
      while isDigit(i) { i += 1 }
    }
    position = i
    let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
    return JSONNumber(validatedText: text)
  }

  /// Parses a string starting at the opening quote.
  mutating func parseString() throws(JSONError) -> String {
    let contentStart = position + 1
    var i = contentStart
    var asciiOnly = true
    // Fast path: no escapes.
    while i < count {
      let b = byte(at: i)
      if b == ASCII.quote {
        if !asciiOnly, let bad = UTF8Validation.firstInvalidByteOffset(in: bytes, range: contentStart..<i) {
          throw .invalidUTF8(byteOffset: bad)
        }
        position = i + 1
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[contentStart..<i]), as: UTF8.self)
      }
      if b == ASCII.backslash { break }
      if b < 0x20 { throw .controlCharacterInString(byteOffset: i, byte: b) }
      if b >= 0x80 { asciiOnly = false }
      i += 1
    }
    guard i < count else { throw .unexpectedEnd(byteOffset: i, expected: "'\"' to close the string") }
    if !asciiOnly, let bad = UTF8Validation.firstInvalidByteOffset(in: bytes, range: contentStart..<i) {
      throw .invalidUTF8(byteOffset: bad)
    }
    return try parseEscapedString(contentStart: contentStart, firstEscape: i)
  }

  /// The slow path: a string with at least one escape at `firstEscape`.
  mutating func parseEscapedString(contentStart: Int, firstEscape: Int) throws(JSONError) -> String {
    scratch.removeAll(keepingCapacity: true)
    scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[contentStart..<firstEscape]))
    var i = firstEscape
    var runStart = i  // start of the current run of plain bytes
    while true {
      guard i < count else { throw .unexpectedEnd(byteOffset: i, expected: "'\"' to close the string") }
      let b = byte(at: i)
      if b == ASCII.quote || b == ASCII.backslash {
        if runStart < i {
          if let bad = UTF8Validation.firstInvalidByteOffset(in: bytes, range: runStart..<i) {
            throw .invalidUTF8(byteOffset: bad)
          }
          scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<i]))
        }
        if b == ASCII.quote {
          position = i + 1
          return String(decoding: scratch, as: UTF8.self)
        }
        i = try appendEscape(at: i)
        runStart = i
        continue
      }
      if b < 0x20 { throw .controlCharacterInString(byteOffset: i, byte: b) }
      i += 1
    }
  }

  /// Decodes the escape at `start` (a backslash) into `scratch`; returns the index after it.
  mutating func appendEscape(at start: Int) throws(JSONError) -> Int {
    guard start + 1 < count else { throw .unexpectedEnd(byteOffset: start + 1, expected: "an escape character") }
    let simple: UInt8
    switch byte(at: start + 1) {
    case ASCII.quote: simple = ASCII.quote
    case ASCII.backslash: simple = ASCII.backslash
    case ASCII.slash: simple = ASCII.slash
    case UInt8(ascii: "b"): simple = 0x08
    case UInt8(ascii: "f"): simple = 0x0C
    case UInt8(ascii: "n"): simple = 0x0A
    case UInt8(ascii: "r"): simple = 0x0D
    case UInt8(ascii: "t"): simple = 0x09
    case UInt8(ascii: "u"):
      let unit = try hex4(at: start + 2, escapeStart: start)
      var next = start + 6
      var scalarValue = UInt32(unit)
      switch unit {
      case 0xD800...0xDBFF:
        guard next + 1 < count, byte(at: next) == ASCII.backslash, byte(at: next + 1) == UInt8(ascii: "u") else {
          throw .loneSurrogate(byteOffset: start, codeUnit: unit)
        }
        let low = try hex4(at: next + 2, escapeStart: next)
        guard (0xDC00...0xDFFF).contains(low) else { throw .loneSurrogate(byteOffset: start, codeUnit: unit) }
        scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
        next += 6
      case 0xDC00...0xDFFF:
        throw .loneSurrogate(byteOffset: start, codeUnit: unit)
      default:
        break
      }
      guard let scalar = Unicode.Scalar(scalarValue) else { throw .invalidEscape(byteOffset: start) }
      scratch.append(contentsOf: UTF8.encode(scalar).map { Array($0) } ?? [])
      return next
    default:
      throw .invalidEscape(byteOffset: start)
    }
    scratch.append(simple)
    return start + 2
  }

  func hex4(at index: Int, escapeStart: Int) throws(JSONError) -> UInt16 {
    guard index + 4 <= count else { throw .unexpectedEnd(byteOffset: count, expected: "four hex digits after \\u") }
    var value: UInt16 = 0
    for k in 0..<4 {
      let b = byte(at: index + k)
      let digit: UInt8
      switch b {
      case ASCII.zero...ASCII.nine: digit = b - ASCII.zero
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
      default: throw .invalidEscape(byteOffset: escapeStart)
      }
      value = value << 4 | UInt16(digit)
    }
    return value
  }
}
