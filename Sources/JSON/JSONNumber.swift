/// A JSON number, kept as its exact source text.
///
/// Keeping the text lets callers tell `8` from `8.0` and `1e3` (the safetensors crate accepts only the
/// first where an integer is expected) and read integers above 2^53 exactly.
/// Equality compares the text: `1.0` and `1.00` are different numbers here.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
  /// The number exactly as written, e.g. `-12`, `0.5`, `1e3`. Always valid RFC 8259 number syntax.
  public let text: String

  /// Wraps text the parser has already validated.
  init(validatedText: String) { self.text = validatedText }

  /// A number from its JSON text, or `nil` if `text` is not RFC 8259 number syntax.
  public init?(text: String) {
    let utf8 = Array(text.utf8)
    let valid = utf8.withUnsafeBytes { bytes -> Bool in
      var scanner = JSONScanner(bytes)
      guard let first = scanner.current, first == ASCII.minus || (first >= ASCII.zero && first <= ASCII.nine),
        (try? scanner.scanNumber()) != nil
      else { return false }
      return scanner.isAtEnd
    }
    guard valid else { return nil }
    self.text = text
  }

  /// An integer number.
  public init(_ value: Int) { self.text = String(value) }

  /// An unsigned 64-bit integer number.
  public init(_ value: UInt64) { self.text = String(value) }

  /// A floating-point number written in Swift's shortest round-trip form, or `nil` for NaN and infinities,
  /// which JSON cannot represent.
  public init?(_ value: Double) {
    guard value.isFinite else { return nil }
    self.text = value.description
  }

  public var description: String { text }

  /// True when the text has no fraction and no exponent (`12`, `-3`); `8.0` and `1e3` are not integers.
  public var isInteger: Bool {
    !text.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
  }

  /// The value as `Int` when the text is an integer (no fraction or exponent) that fits, else `nil`.
  public var int: Int? {
    var utf8 = text.utf8[...]
    let negative = utf8.first == UInt8(ascii: "-")
    if negative { utf8 = utf8.dropFirst() }
    guard !utf8.isEmpty else { return nil }
    // Accumulate towards the negative side so that Int.min parses too.
    var value = 0
    for byte in utf8 {
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
      let (times10, o1) = value.multipliedReportingOverflow(by: 10)
      let (next, o2) = times10.subtractingReportingOverflow(Int(byte &- UInt8(ascii: "0")))
      guard !o1, !o2 else { return nil }
      value = next
    }
    if negative { return value }
    let (positive, overflow) = (0).subtractingReportingOverflow(value)
    return overflow ? nil : positive
  }

  /// The value as `UInt64` when the text is a non-negative integer (no sign, fraction or exponent) that
  /// fits, else `nil`. This is the range the safetensors crate accepts for shapes and offsets.
  public var uint64: UInt64? { JSONNumber.parseUInt64(text.utf8) }

  /// The nearest `Double` (correctly rounded; out-of-range magnitudes become infinity or zero).
  public var double: Double { Double(text) ?? .nan }

  static func parseUInt64<C: Collection<UInt8>>(_ utf8: C) -> UInt64? {
    guard !utf8.isEmpty else { return nil }
    var value: UInt64 = 0
    for byte in utf8 {
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
      let (times10, o1) = value.multipliedReportingOverflow(by: 10)
      let (next, o2) = times10.addingReportingOverflow(UInt64(byte &- UInt8(ascii: "0")))
      guard !o1, !o2 else { return nil }
      value = next
    }
    return value
  }
}

