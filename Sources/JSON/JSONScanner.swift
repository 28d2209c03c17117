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
  @inlinable @inline(__always) public var current: UInt8? { position < count ? bytes[position] : nil }

  /// True when every byte has been read.
  @inlinable public var isAtEnd: Bool { position >= count }

  /// Skips JSON whitespace: space, tab, CR, LF.
  @inlinable @inline(__always) public mutating func skipWhitespace() {
    while position < count {
      switch bytes[position] {
      case 0x20, 0x0A, 0x0D, 0x09: position &+= 1
      default: return
      }
    }
  }

  /// Consumes `byte` if it is next; false (and nothing consumed) otherwise.
  @inlinable @inline(__always) public mutating func consume(_ byte: UInt8) -> Bool {
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

  /// Consumes `literal` (for example `"dtype"` with its quotes) if the bytes at `position` are exactly it;
  /// false (and nothing consumed) otherwise. Decoders use it to recognize expected keys without reading a
  /// string token.
  @inlinable @inline(__always) public mutating func consume(literal: StaticString) -> Bool {
    let length = literal.utf8CodeUnitCount
    guard position &+ length <= count, let base = bytes.baseAddress else { return false }
    let here = base + position
    let text = UnsafeRawPointer(literal.utf8Start)
    if length >= 8 {
      // Eight bytes at a time; the last word may overlap the one before it.
      var k = 0
      while k &+ 8 <= length {
        guard here.loadUnaligned(fromByteOffset: k, as: UInt64.self) == text.loadUnaligned(fromByteOffset: k, as: UInt64.self)
        else { return false }
        k &+= 8
      }
      if k < length {
        guard here.loadUnaligned(fromByteOffset: length &- 8, as: UInt64.self)
          == text.loadUnaligned(fromByteOffset: length &- 8, as: UInt64.self)
        else { return false }
      }
    } else {
      for k in 0..<length where here.load(fromByteOffset: k, as: UInt8.self) != text.load(fromByteOffset: k, as: UInt8.self) {
        return false
      }
    }
    position &+= length
    return true
  }

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
    if let value = readPlainUnsignedInteger() { return value }
    let range = try scanNumber()
    return JSONNumber.parseUInt64(UnsafeRawBufferPointer(rebasing: bytes[range]))
  }

  /// The fast path of `readUnsignedInteger`: a number of 1-15 digits (no leading zero, no fraction or
  /// exponent after it) at `position`, consumed; `nil` and nothing consumed for anything else (including
  /// numbers within 16 bytes of the end of the buffer), which the caller reads the slow way.
  public mutating func readPlainUnsignedInteger() -> UInt64? {
    // Up to 15 digits, eight at a time (SWAR), cannot overflow; a leading zero must stand alone.
    let start = position
    guard start &+ 16 <= count, let base = bytes.baseAddress else { return nil }
    let first = base.loadUnaligned(fromByteOffset: start, as: UInt64.self)
    let run = JSONScanner.digitRun(first)
    guard run > 0 else { return nil }
    var value: UInt64
    var digits = run
    if run == 8 {
      let second = base.loadUnaligned(fromByteOffset: start &+ 8, as: UInt64.self)
      let more = JSONScanner.digitRun(second)
      value = JSONScanner.digitsValue(first, count: 8)
      if more > 0 { value = value &* JSONScanner.powersOfTen[more] &+ JSONScanner.digitsValue(second, count: more) }
      digits = 8 &+ more
    } else {
      value = JSONScanner.digitsValue(first, count: run)
    }
    guard digits < 16, digits == 1 || first & 0xFF != UInt64(ASCII.zero) else { return nil }
    let next = base.load(fromByteOffset: start &+ digits, as: UInt8.self)
    guard next != UInt8(ascii: "."), next != UInt8(ascii: "e"), next != UInt8(ascii: "E") else { return nil }
    position = start &+ digits
    return value
  }

  /// 1, 10, ..., 10^8.
  static let powersOfTen: [UInt64] = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]

  /// How many of `word`'s bytes, from the lowest address, are ASCII digits (0...8).
  @inline(__always) static func digitRun(_ word: UInt64) -> Int {
    // A byte below '0' borrows (high bit set), one above '9' carries into its high bit (bytes of 0x80 and
    // more are caught by one or the other); borrows and carries only disturb bytes above a non-digit.
    let below = word &- 0x3030_3030_3030_3030
    let above = word &+ 0x4646_4646_4646_4646
    let nonDigits = (below | above) & 0x8080_8080_8080_8080
    return nonDigits.trailingZeroBitCount >> 3
  }

  /// The value of the first `count` (1...8) bytes of `word`, all ASCII digits, the first most significant.
  @inline(__always) static func digitsValue(_ word: UInt64, count: Int) -> UInt64 {
    // Shift the digits to the top bytes (the bytes below become leading zeros), then combine pairs,
    // quads and octets with three multiplications.
    var v = (word & 0x0F0F_0F0F_0F0F_0F0F) << UInt64(64 &- 8 &* count)
    v = (v &* 2561) >> 8
    v = ((v & 0x00FF_00FF_00FF_00FF) &* 6_553_601) >> 16
    return ((v & 0x0000_FFFF_0000_FFFF) &* 42_949_672_960_001) >> 32
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
      // Eight bytes at a time while none is a quote, a backslash, a control character or non-ASCII; the
      // first such byte of a word is found from its bit mask.
      while i &+ 8 <= count {
        let special = JSONScanner.specialStringBytes(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        if special != 0 {
          i &+= special.trailingZeroBitCount >> 3
          break
        }
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

  /// The high bit of each byte of `word` that is `"`, `\\`, below 0x20 or 0x80 and above — exact for the
  /// lowest such byte (bytes above it may be flagged spuriously by borrows).
  @inline(__always) static func specialStringBytes(_ word: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    @inline(__always) func zeroBytes(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }
    let quote = zeroBytes(word ^ (ones &* UInt64(ASCII.quote)))
    let backslash = zeroBytes(word ^ (ones &* UInt64(ASCII.backslash)))
    let control = (word &- ones &* 0x20) & ~word & highs
    return quote | backslash | control | (word & highs)
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
