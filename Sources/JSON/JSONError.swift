/// Why `JSONParser` rejected its input. Every case carries the byte offset (from the start of the parsed
/// bytes) where the problem was found.
public enum JSONError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The input ended while `expected` was still needed.
  case unexpectedEnd(byteOffset: Int, expected: String)
  /// `found` appeared where `expected` was needed.
  case unexpectedByte(byteOffset: Int, found: UInt8, expected: String)
  /// The input starts with a UTF-8 byte order mark (EF BB BF), which RFC 8259 parsers may not accept.
  case byteOrderMark
  /// A `,` directly before `]` or `}`.
  case trailingComma(byteOffset: Int)
  /// A `//` or `/*` comment.
  case comment(byteOffset: Int)
  /// `NaN`, `Infinity` or `-Infinity`, which JSON does not have.
  case nonFiniteNumber(byteOffset: Int)
  /// A number with a leading zero such as `01` or `-007`.
  case leadingZero(byteOffset: Int)
  /// A malformed number (`1.`, `.5`, `1e`, `-`); `reason` says what was missing.
  case invalidNumber(byteOffset: Int, reason: String)
  /// An unescaped control character (U+0000 to U+001F) inside a string.
  case controlCharacterInString(byteOffset: Int, byte: UInt8)
  /// A backslash escape other than `\" \\ \/ \b \f \n \r \t \uXXXX`.
  case invalidEscape(byteOffset: Int)
  /// A `\uD800`-`\uDFFF` escape that is not part of a high/low surrogate pair.
  case loneSurrogate(byteOffset: Int, codeUnit: UInt16)
  /// Bytes that are not well-formed UTF-8 (overlong forms, surrogates and values above U+10FFFF included).
  case invalidUTF8(byteOffset: Int)
  /// Non-whitespace after the top-level value (including NUL padding).
  case trailingCharacters(byteOffset: Int, found: UInt8)
  /// Arrays and objects nested deeper than `maxDepth`.
  case tooDeep(byteOffset: Int, maxDepth: Int)
  /// An object repeats `key`; `depth` is the nesting level of that object (1 for the top-level object).
  case duplicateKey(key: String, byteOffset: Int, depth: Int)

  /// The byte offset of the problem.
  public var byteOffset: Int {
    switch self {
    case .byteOrderMark: 0
    case .unexpectedEnd(let offset, _), .unexpectedByte(let offset, _, _), .trailingComma(let offset),
      .comment(let offset), .nonFiniteNumber(let offset), .leadingZero(let offset), .invalidNumber(let offset, _),
      .controlCharacterInString(let offset, _), .invalidEscape(let offset), .loneSurrogate(let offset, _),
      .invalidUTF8(let offset), .trailingCharacters(let offset, _), .tooDeep(let offset, _),
      .duplicateKey(_, let offset, _):
      offset
    }
  }

  /// The message without the "at byte N" suffix.
  public var reason: String {
    switch self {
    case .unexpectedEnd(_, let expected): "unexpected end of input, expected \(expected)"
    case .unexpectedByte(_, let found, let expected): "expected \(expected) but found \(describeByte(found))"
    case .byteOrderMark: "a UTF-8 byte order mark (EF BB BF) is not allowed before the JSON text"
    case .trailingComma: "trailing comma before a closing bracket"
    case .comment: "comments are not allowed in JSON"
    case .nonFiniteNumber: "NaN and Infinity are not JSON numbers"
    case .leadingZero: "numbers may not have leading zeros"
    case .invalidNumber(_, let reason): "invalid number: \(reason)"
    case .controlCharacterInString(_, let byte):
      "unescaped control character \(hexByte(byte)) in a string (write it as \\u00\(hexDigits(byte)))"
    case .invalidEscape: "invalid escape sequence in a string"
    case .loneSurrogate(_, let unit): "lone UTF-16 surrogate \\u\(String(unit, radix: 16)) in a string"
    case .invalidUTF8: "invalid UTF-8"
    case .trailingCharacters(_, let found): "trailing characters after the JSON value, starting with \(describeByte(found))"
    case .tooDeep(_, let maxDepth): "arrays and objects nested deeper than \(maxDepth) levels"
    case .duplicateKey(let key, _, _): "duplicate key \"\(key)\""
    }
  }

  public var description: String { "\(reason) at byte \(byteOffset)" }
}

private func hexDigits(_ byte: UInt8) -> String {
  let digits = Array("0123456789abcdef")
  return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
}

private func hexByte(_ byte: UInt8) -> String { "0x" + hexDigits(byte) }

/// `'x'` for printable ASCII, else the hex value (`NUL 0x00`).
func describeByte(_ byte: UInt8) -> String {
  if byte == 0 { return "NUL (0x00)" }
  if byte >= 0x21, byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
  return hexByte(byte)
}
