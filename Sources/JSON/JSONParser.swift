/// A strict RFC 8259 JSON parser.
///
/// Accepts exactly the JSON grammar: no byte order mark, comments, trailing commas, `NaN`/`Infinity`,
/// leading zeros, unescaped control characters, invalid escapes, lone surrogates or invalid UTF-8, and
/// nothing but whitespace (space, tab, CR, LF) after the value. Duplicate object keys are rejected
/// (RFC 8259 leaves them undefined; parsers disagree on which one wins). Parses bytes directly without
/// per-character allocation; numbers keep their source text.
///
/// The parser is iterative (an explicit stack of open containers), so nesting depth costs heap, never
/// call stack: it runs on the smallest thread stacks (`ulimit -s 64`).
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

  /// Parses the one value that starts at `scanner`'s position (after any whitespace), leaving the scanner
  /// just past it: for decoders that read most of a document themselves and hand nested values here.
  ///
  /// - Parameter maxDepth: the most arrays/objects that may be open at once inside the value.
  public static func parseValue(from scanner: inout JSONScanner, maxDepth: Int = defaultMaxDepth) throws(JSONError)
    -> JSONValue
  {
    var parser = Parser(scanner: scanner, maxDepth: maxDepth)
    let value = try parser.parseValue()
    scanner.position = parser.scanner.position
    return value
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

/// The tree builder over `JSONScanner`. Open arrays and objects live on `stack`; a value, once complete, is
/// appended to the container on top (or ends the document).
private struct Parser {
  var scanner: JSONScanner
  let maxDepth: Int

  /// An array or object being filled.
  struct Frame {
    var isObject: Bool
    var array: [JSONValue] = []
    var object = JSONObject()
    /// Offsets of the keys of large objects (checked for duplicates once, at the closing brace).
    var keyOffsets: [Int] = []
    /// The key whose value is being parsed.
    var key = ""
  }

  var stack: [Frame] = []

  init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
    self.init(scanner: JSONScanner(bytes), maxDepth: maxDepth)
  }

  init(scanner: JSONScanner, maxDepth: Int) {
    self.scanner = scanner
    self.maxDepth = maxDepth
  }

  var depth: Int { stack.count }

  mutating func parseDocument() throws(JSONError) -> JSONValue {
    if scanner.startsWithByteOrderMark { throw .byteOrderMark }
    scanner.skipWhitespace()
    let value = try parseValue()
    scanner.skipWhitespace()
    if let found = scanner.current { throw .trailingCharacters(byteOffset: scanner.position, found: found) }
    return value
  }

  /// Parses one value, with everything nested in it.
  mutating func parseValue() throws(JSONError) -> JSONValue {
    let bottom = stack.count
    while true {
      // A value starts at the scanner's position.
      guard let byte = scanner.current else { throw .unexpectedEnd(byteOffset: scanner.position, expected: "a value") }
      var value: JSONValue
      switch byte {
      case ASCII.openBrace, ASCII.openBracket:
        let isObject = byte == ASCII.openBrace
        if depth + 1 > maxDepth { throw .tooDeep(byteOffset: scanner.position, maxDepth: maxDepth) }
        scanner.position += 1
        scanner.skipWhitespace()
        if scanner.consume(isObject ? ASCII.closeBrace : ASCII.closeBracket) {
          value = isObject ? .object(JSONObject()) : .array([])
        } else {
          stack.append(Frame(isObject: isObject))
          if isObject { try readKey() }
          continue
        }
      case ASCII.quote: value = .string(try scanner.readString())
      case ASCII.minus, ASCII.zero...ASCII.nine:
        let range = try scanner.scanNumber()
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: scanner.bytes[range]), as: UTF8.self)
        value = .number(JSONNumber(validatedText: text))
      case UInt8(ascii: "t"):
        try scanner.readLiteral("true")
        value = .bool(true)
      case UInt8(ascii: "f"):
        try scanner.readLiteral("false")
        value = .bool(false)
      case UInt8(ascii: "n"):
        try scanner.readLiteral("null")
        value = .null
      case UInt8(ascii: "N"), UInt8(ascii: "I"): throw .nonFiniteNumber(byteOffset: scanner.position)
      default: throw scanner.unexpected("a value")
      }
      // Hand the finished value to the containers above it, closing each one it completes.
      while stack.count > bottom {
        guard let next = try add(value) else { break }
        value = next
      }
      if stack.count == bottom { return value }
    }
  }

  /// Adds `value` to the container on top of the stack and reads the separator after it. Returns the
  /// container itself when that separator closed it (popped), or `nil` when another member follows.
  mutating func add(_ value: JSONValue) throws(JSONError) -> JSONValue? {
    let top = stack.count - 1
    let isObject = stack[top].isObject
    if isObject {
      stack[top].object.appendDeferringIndex(key: stack[top].key, value: value)
    } else {
      stack[top].array.append(value)
    }
    scanner.skipWhitespace()
    guard let byte = scanner.current else { throw scanner.unexpected(isObject ? "',' or '}'" : "',' or ']'") }
    switch byte {
    case ASCII.comma:
      scanner.position += 1
      scanner.skipWhitespace()
      if isObject {
        try readKey()
      } else if scanner.current == ASCII.closeBracket {
        throw .trailingComma(byteOffset: scanner.position)
      }
      return nil
    case ASCII.closeBrace where isObject:
      scanner.position += 1
      var frame = stack.removeLast()
      if let duplicate = frame.object.buildIndex() {
        throw .duplicateKey(
          key: frame.object.members[duplicate].key, byteOffset: frame.keyOffsets[duplicate], depth: depth + 1)
      }
      return .object(frame.object)
    case ASCII.closeBracket where !isObject:
      scanner.position += 1
      return .array(stack.removeLast().array)
    default:
      throw scanner.unexpected(isObject ? "',' or '}'" : "',' or ']'")
    }
  }

  /// Reads `"key" :` into the object on top of the stack (after its `{` or a `,` and whitespace).
  mutating func readKey() throws(JSONError) {
    let top = stack.count - 1
    guard scanner.current == ASCII.quote else {
      if scanner.current == ASCII.closeBrace, !stack[top].object.isEmpty {
        throw .trailingComma(byteOffset: scanner.position)
      }
      throw scanner.unexpected("a string key")
    }
    let keyOffset = scanner.position
    let key = try scanner.readString()
    // Small objects are checked for duplicates as keys arrive (linear scan); larger ones once at the end,
    // with their key offsets kept for the error message.
    let memberCount = stack[top].object.count
    if memberCount < JSONObject.indexThreshold {
      if stack[top].object.members.contains(where: { $0.key == key }) {
        throw .duplicateKey(key: key, byteOffset: keyOffset, depth: depth)
      }
    } else {
      if stack[top].keyOffsets.isEmpty { stack[top].keyOffsets = Array(repeating: 0, count: memberCount) }
      stack[top].keyOffsets.append(keyOffset)
    }
    scanner.skipWhitespace()
    guard scanner.consume(ASCII.colon) else { throw scanner.unexpected("':' after an object key") }
    scanner.skipWhitespace()
    stack[top].key = key
  }
}
