/// The lexical layer of the strict JSON grammar: a cursor over UTF-8 bytes that reads one token at a time
/// and throws the precise `JSONError` for a malformed one.
///
/// `JSONParser` builds `JSONValue` trees with it; decoders of big fixed-schema documents (safetensors
/// headers, checkpoint indexes) use it directly to read straight into their own structs: strings are
/// handed out as byte spans (no allocation unless the caller asks for a `String`), numbers are scanned in
/// place, and nothing is allocated per character.
///
/// A scanner never reads outside its buffer. The buffer must outlive the scanner.
public struct JSONScanner {
  /// The text being scanned.
  public let bytes: UnsafeRawBufferPointer
  /// The number of bytes in `bytes`.
  public let count: Int
  /// The offset of the next unread byte.
  public var position: Int
  /// Decoded bytes of the last string read that contained escapes.
  @usableFromInline var scratch: [UInt8] = []

  public init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
    self.bytes = bytes
    self.count = bytes.count
    self.position = position
  }

  /// The byte at `position`, or `nil` at the end.
  @inlinable public var current: UInt8? { position < count ? bytes[position] : nil }

  /// True when every byte has been read.
  @inlinable public var isAtEnd: Bool { position >= count }

  /// Skips JSON whitespace: space, tab, CR, LF.
  @inlinable public mutating func skipWhitespace() {
    while position < count {
      switch bytes[position] {
      case 0x20, 0x0A, 0x0D, 0x09: position &+= 1
      default: return
      }
    }
  }

  /// Consumes `byte` if it is next; false (and nothing consumed) otherwise.
  @inlinable public mutating func consume(_ byte: UInt8) -> Bool {
    guard position < count, bytes[position] == byte else { return false }
    position &+= 1
    return true
  }

  /// The error for an unexpected byte (or the end) at `position`, recognizing comments.
  public func unexpected(_ expected: String) -> JSONError {
    guard position < count else { return .unexpectedEnd(byteOffset: position, expected: expected) }
    let found = bytes[position]
    if found == ASCII.slash, position + 1 < count,
      bytes[position + 1] == ASCII.slash || bytes[position + 1] == UInt8(ascii: "*")
    {
      return .comment(byteOffset: position)
    }
    return .unexpectedByte(byteOffset: position, found: found, expected: expected)
  }

  /// True when the document starts with a UTF-8 byte order mark.
  public var startsWithByteOrderMark: Bool {
    count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF
  }

  // MARK: - Literals and numbers

  /// Reads `true`, `false` or `null` at `position` (which holds its first letter). On a mismatch the
  /// position is left at the literal's start and the error is "expected a value" there.
  public mutating func readLiteral(_ literal: StaticString) throws(JSONError) {
    let length = literal.utf8CodeUnitCount
    let text = UnsafeRawBufferPointer(start: literal.utf8Start, count: length)
    guard position + length <= count else { throw unexpected("a value") }
    for k in 0..<length where bytes[position + k] != text[k] { throw unexpected("a value") }
    position += length
  }

  /// Scans an RFC 8259 number at `position` (a `-` or a digit) and returns its byte range.
  public mutating func scanNumber() throws(JSONError) -> Range<Int> {
    let start = position
    var i = position
    if bytes[i] == ASCII.minus {
      i += 1
      if i < count, bytes[i] == UInt8(ascii: "I") { throw .nonFiniteNumber(byteOffset: start) }
      guard isDigit(i) else { throw .invalidNumber(byteOffset: start, reason: "expected a digit after '-'") }
    }
    if bytes[i] == ASCII.zero {
      i += 1
      if isDigit(i) { throw .leadingZero(byteOffset: start) }
    } else {
      while isDigit(i) { i += 1 }
    }
    if i < count, bytes[i] == UInt8(ascii: ".") {
      i += 1
      guard isDigit(i) else { throw .invalidNumber(byteOffset: start, reason: "expected a digit after '.'") }
      while isDigit(i) { i += 1 }
    }
    if i < count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
      i += 1
      if i < count, bytes[i] == UInt8(ascii: "+") || bytes[i] == ASCII.minus { i += 1 }
      guard isDigit(i) else { throw .invalidNumber(byteOffset: start, reason: "expected a digit in the exponent") }
      while isDigit(i) { i += 1 }
    }
    position = i
    return start..<i
  }

  /// Reads a number and returns its value when it is a plain non-negative integer (digits only, no sign,
  /// fraction or exponent) that fits `UInt64`; `nil` for any other valid number. The number is consumed
  /// either way; malformed numbers throw.
  public mutating func readUnsignedInteger() throws(JSONError) -> UInt64? {
    // Fast path: fewer than 19 digits cannot overflow UInt64; a leading zero must stand alone.
    let start = position
    var i = start
    var value: UInt64 = 0
    while i < count, i &- start < 19 {
      let digit = bytes[i] &- ASCII.zero
      guard digit < 10 else { break }
      value = value &* 10 &+ UInt64(digit)
      i &+= 1
    }
    let digits = i - start
    if digits > 0, digits < 19, !(digits > 1 && bytes[start] == ASCII.zero) {
      let next = i < count ? bytes[i] : 0
      if next != UInt8(ascii: "."), next != UInt8(ascii: "e"), next != UInt8(ascii: "E") {
        position = i
        return value
      }
    }
    let range = try scanNumber()
    return JSONNumber.parseUInt64(UnsafeRawBufferPointer(rebasing: bytes[range]))
  }

  @inline(__always) @usableFromInline func isDigit(_ index: Int) -> Bool {
    index < count && bytes[index] >= ASCII.zero && bytes[index] <= ASCII.nine
  }

  // MARK: - Strings

  /// A string token: where its content lies, and whether it had escapes (then its decoded bytes are in
  /// the scanner's scratch buffer until the next string is read).
  public struct StringToken: Sendable {
    /// The offset of the opening quote.
    public let start: Int
    /// The raw content between the quotes (escapes not decoded).
    public let contentRange: Range<Int>
    /// True when the content has at least one escape.
    public let hasEscapes: Bool
  }

  /// Reads a string at `position` (its opening quote), validating control characters, escapes and UTF-8.
  public mutating func readStringToken() throws(JSONError) -> StringToken {
    let start = position
    let contentStart = position + 1
    var i = contentStart
    var asciiOnly = true
    let base = bytes.baseAddress!
    while true {
      // Eight bytes at a time while none is a quote, a backslash, a control character or non-ASCII.
      while i &+ 8 <= count {
        let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        if JSONScanner.hasSpecialStringByte(word) { break }
        i &+= 8
      }
      guard i < count else { break }
      let b = base.load(fromByteOffset: i, as: UInt8.self)
      if b == ASCII.quote {
        if !asciiOnly, let bad = UTF8Validation.firstInvalidByteOffset(in: bytes, range: contentStart..<i) {
          throw .invalidUTF8(byteOffset: bad)
        }
        position = i + 1
        return StringToken(start: start, contentRange: contentStart..<i, hasEscapes: false)
      }
      if b == ASCII.backslash { break }
      if b < 0x20 { throw .controlCharacterInString(byteOffset: i, byte: b) }
      if b >= 0x80 { asciiOnly = false }
      i &+= 1
    }
    guard i < count else { throw .unexpectedEnd(byteOffset: i, expected: "'\"' to close the string") }
    if !asciiOnly, let bad = UTF8Validation.firstInvalidByteOffset(in: bytes, range: contentStart..<i) {
      throw .invalidUTF8(byteOffset: bad)
    }
    let end = try decodeEscapedString(contentStart: contentStart, firstEscape: i)
    return StringToken(start: start, contentRange: contentStart..<end, hasEscapes: true)
  }

  /// Calls `body` with the decoded bytes of `token`, the last string read.
  @inlinable public func withBytes<R>(of token: StringToken, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    if token.hasEscapes { return try scratch.withUnsafeBytes(body) }
    return try body(UnsafeRawBufferPointer(rebasing: bytes[token.contentRange]))
  }

  /// The decoded text of `token`, the last string read.
  public func string(of token: StringToken) -> String {
    withBytes(of: token) { String(decoding: $0, as: UTF8.self) }
  }

  /// Reads a string and returns its decoded text.
  public mutating func readString() throws(JSONError) -> String {
    let token = try readStringToken()
    return string(of: token)
  }

  /// True when `word`'s eight bytes contain `"`, `\`, a byte below 0x20 or a byte of 0x80 and above.
  @inline(__always) static func hasSpecialStringByte(_ word: UInt64) -> Bool {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    @inline(__always) func hasZeroByte(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }
    let quote = hasZeroByte(word ^ (ones &* UInt64(ASCII.quote)))
    let backslash = hasZeroByte(word ^ (ones &* UInt64(ASCII.backslash)))
    // A byte below 0x20 borrows when 0x20 is subtracted (exact when no byte has its high bit set, and
    // high bytes are caught by `word & highs` anyway).
    let control = (word &- ones &* 0x20) & ~word & highs
    return (quote | backslash | control | (word & highs)) != 0
  }

  /// The slow path: a string with at least one escape at `firstEscape`. Decodes into `scratch`; returns the
  /// offset of the closing quote.
  mutating func decodeEscapedString(contentStart: Int, firstEscape: Int) throws(JSONError) -> Int {
    scratch.removeAll(keepingCapacity: true)
    scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[contentStart..<firstEscape]))
    var i = firstEscape
    var runStart = i  // start of the current run of plain bytes
    while true {
      guard i < count else { throw .unexpectedEnd(byteOffset: i, expected: "'\"' to close the string") }
      let b = bytes[i]
      if b == ASCII.quote || b == ASCII.backslash {
        if runStart < i {
          if let bad = UTF8Validation.firstInvalidByteOffset(in: bytes, range: runStart..<i) {
            throw .invalidUTF8(byteOffset: bad)
          }
          scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<i]))
        }
        if b == ASCII.quote {
          position = i + 1
          return i
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
    switch bytes[start + 1] {
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
        guard next + 1 < count, bytes[next] == ASCII.backslash, bytes[next + 1] == UInt8(ascii: "u") else {
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
      if let encoded = UTF8.encode(scalar) { scratch.append(contentsOf: encoded) }
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
      let b = bytes[index + k]
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

/// The structural bytes of JSON.
@usableFromInline enum ASCII {
  @usableFromInline static let quote = UInt8(ascii: "\"")
  @usableFromInline static let backslash = UInt8(ascii: "\\")
  @usableFromInline static let slash = UInt8(ascii: "/")
  @usableFromInline static let comma = UInt8(ascii: ",")
  @usableFromInline static let colon = UInt8(ascii: ":")
  @usableFromInline static let openBrace = UInt8(ascii: "{")
  @usableFromInline static let closeBrace = UInt8(ascii: "}")
  @usableFromInline static let openBracket = UInt8(ascii: "[")
  @usableFromInline static let closeBracket = UInt8(ascii: "]")
  @usableFromInline static let minus = UInt8(ascii: "-")
  @usableFromInline static let zero = UInt8(ascii: "0")
  @usableFromInline static let nine = UInt8(ascii: "9")
}
