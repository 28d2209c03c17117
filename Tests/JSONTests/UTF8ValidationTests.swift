import Testing

@testable import JSON

@Suite("UTF-8 validation")
struct UTF8ValidationTests {
  @Test(
    "finds the first invalid byte, across the ASCII fast path",
    arguments: [
      (Array("plain ascii that is longer than eight bytes".utf8), nil as Int?),
      (Array("é😀€ mixed ascii and multibyte text, long enough".utf8), nil),
      (Array(repeating: UInt8(ascii: "a"), count: 17) + [0xFF], 17),
      (Array(repeating: UInt8(ascii: "a"), count: 9) + [0xF0, 0x9F, 0x98], 9),  // truncated 4-byte sequence
      ([0xF4, 0x8F, 0xBF, 0xBF], nil),  // U+10FFFF, the largest scalar
      ([0xEF, 0xBF, 0xBF, 0x80], 3),  // stray continuation byte
      ([0xE0, 0x9F, 0x80], 0),  // overlong 3-byte form
      ([0xF0, 0x8F, 0x80, 0x80], 0),  // overlong 4-byte form
      ([0xC1, 0xBF], 0),  // overlong 2-byte form
      ([0xF5, 0x80, 0x80, 0x80], 0),  // above U+10FFFF
    ] as [([UInt8], Int?)])
  func firstInvalid(bytes: [UInt8], expected: Int?) {
    #expect(bytes.withUnsafeBytes { UTF8Validation.firstInvalidByteOffset(in: $0) } == expected)
  }
}
