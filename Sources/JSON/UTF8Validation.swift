/// Strict UTF-8 validation (RFC 3629): rejects overlong forms, encoded surrogates, values above U+10FFFF,
/// stray continuation bytes and truncated sequences.
public enum UTF8Validation {
  /// The offset of the first byte that does not start a well-formed UTF-8 sequence in `bytes`, or `nil`
  /// when all of `bytes` is valid UTF-8.
  public static func firstInvalidByteOffset(in bytes: UnsafeRawBufferPointer) -> Int? {
    firstInvalidByteOffset(in: bytes, range: 0..<bytes.count)
  }

  /// Like `firstInvalidByteOffset(in:)`, limited to `range` (offsets stay relative to `bytes`).
  static func firstInvalidByteOffset(in bytes: UnsafeRawBufferPointer, range: Range<Int>) -> Int? {
    precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count)
    guard let base = bytes.baseAddress else { return nil }
    var i = range.lowerBound
    let end = range.upperBound
    while i < end {
      // ASCII fast path, 8 bytes at a time.
      while i + 8 <= end, base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
        i += 8
      }
      guard i < end else { break }
      let b0 = base.load(fromByteOffset: i, as: UInt8.self)
      if b0 < 0x80 {
        i += 1
        continue
      }
      let length: Int
      var lower: UInt8 = 0x80
      var upper: UInt8 = 0xBF
      switch b0 {
      case 0xC2...0xDF: length = 2
      case 0xE0: length = 3; lower = 0xA0
      case 0xE1...0xEC, 0xEE...0xEF: length = 3
      case 0xED: length = 3; upper = 0x9F  // excludes encoded surrogates
      case 0xF0: length = 4; lower = 0x90
      case 0xF1...0xF3: length = 4
      case 0xF4: length = 4; upper = 0x8F  // excludes > U+10FFFF
      default: return i
      }
      guard i + length <= end else { return i }
      let b1 = base.load(fromByteOffset: i + 1, as: UInt8.self)
      guard b1 >= lower, b1 <= upper else { return i }
      for k in 2..<length {
        let b = base.load(fromByteOffset: i + k, as: UInt8.self)
        guard b & 0xC0 == 0x80 else { return i }
      }
      i += length
    }
    return nil
  }
}
