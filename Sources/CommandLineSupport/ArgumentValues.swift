/// Why a command-line value could not be converted: one lowercase phrase, printed after
/// `The value 'x' is invalid for '--name <v>': `. A `nil` reason prints the allowed-values list instead.
public struct InvalidArgumentValue: Error, Sendable, Equatable {
  public var reason: String?

  public init(_ reason: String?) { self.reason = reason }
}

/// Converters from command-line text to values. Each is pure and throws `InvalidArgumentValue`; the
/// `ParsedArguments` accessors turn that into a `UsageError` naming the argument.
public enum ArgumentValues {
  /// A decimal integer (optional sign), optionally limited to `range`.
  public static func int(_ text: String, in range: ClosedRange<Int>? = nil) throws(InvalidArgumentValue) -> Int {
    guard let value = Int(text) else { throw InvalidArgumentValue("not an integer") }
    if let range, !range.contains(value) { throw InvalidArgumentValue(outOfRange(range)) }
    return value
  }

  /// A finite decimal number, optionally limited to `range`.
  public static func double(
    _ text: String, in range: ClosedRange<Double>? = nil
  ) throws(InvalidArgumentValue) -> Double {
    guard let value = Double(text), value.isFinite, !text.contains(where: { $0.isLetter && $0 != "e" && $0 != "E" })
    else { throw InvalidArgumentValue("not a number") }
    if let range, !range.contains(value) { throw InvalidArgumentValue(outOfRange(range)) }
    return value
  }

  /// A `String`-backed enum case whose raw value is `text`.
  public static func choice<T: RawRepresentable>(
    _ text: String, as type: T.Type
  ) throws(InvalidArgumentValue) -> T where T.RawValue == String {
    guard let value = T(rawValue: text) else { throw InvalidArgumentValue(nil) }
    return value
  }

  /// Splits `text` at the first `separator` into a non-empty key and a value converted by `value`.
  public static func pair<Value>(
    _ text: String, separator: Character, value convert: (String) throws(InvalidArgumentValue) -> Value
  ) throws(InvalidArgumentValue) -> KeyValuePair<Value> {
    guard let (key, rawValue) = split(text, on: separator), !key.isEmpty, !rawValue.isEmpty else {
      throw InvalidArgumentValue("expected KEY\(separator)VALUE")
    }
    return KeyValuePair(key: key, value: try convert(rawValue))
  }

  /// `text` split at the first `separator`, or `nil` when the separator does not occur.
  public static func split(_ text: String, on separator: Character) -> (key: String, value: String)? {
    guard let index = text.firstIndex(of: separator) else { return nil }
    return (String(text[..<index]), String(text[text.index(after: index)...]))
  }

  /// A byte size: a non-negative decimal number (`5`, `4.5`) and an optional case-insensitive unit,
  /// optionally separated by one space. `B`; decimal `KB MB GB TB PB` (10^3…10^15, as Hugging Face shard
  /// sizes are); binary `KiB MiB GiB TiB PiB` (2^10…2^50). A fraction must give a whole number of bytes
  /// (`4.5GB` is fine, `1.5B` is not). Bare `K M G T P` (`2G`, `500M`) are the decimal units, as llama.cpp's
  /// `gguf-split --split-max-size` reads them.
  public static func byteCount(
    _ text: String, in range: ClosedRange<Int>? = nil
  ) throws(InvalidArgumentValue) -> Int {
    let bytes = try parseByteCount(text)
    if let range, !range.contains(bytes) {
      if range.upperBound == Int.max {
        throw InvalidArgumentValue("must be at least \(DisplayFormat.bytes(range.lowerBound))")
      }
      throw InvalidArgumentValue(
        "must be between \(DisplayFormat.bytes(range.lowerBound)) and \(DisplayFormat.bytes(range.upperBound))")
    }
    return bytes
  }

  private static let byteUnits: [String: Int] = [
    "": 1, "b": 1,
    "k": 1_000, "m": 1_000_000, "g": 1_000_000_000, "t": 1_000_000_000_000, "p": 1_000_000_000_000_000,
    "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000, "tb": 1_000_000_000_000, "pb": 1_000_000_000_000_000,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
  ]

  private static func parseByteCount(_ text: String) throws(InvalidArgumentValue) -> Int {
    let invalid = InvalidArgumentValue("expected a byte size such as 5GB, 2G, 4.5GB, 80GiB, 512MB or 1048576")
    let utf8 = Array(text.utf8)
    var position = 0
    var integerDigits: [UInt8] = []
    var fractionDigits: [UInt8] = []
    while position < utf8.count, utf8[position] >= 0x30, utf8[position] <= 0x39 {
      integerDigits.append(utf8[position] - 0x30)
      position += 1
    }
    if position < utf8.count, utf8[position] == UInt8(ascii: ".") {
      position += 1
      while position < utf8.count, utf8[position] >= 0x30, utf8[position] <= 0x39 {
        fractionDigits.append(utf8[position] - 0x30)
        position += 1
      }
      if fractionDigits.isEmpty { throw invalid }
    }
    if integerDigits.isEmpty { throw invalid }
    if fractionDigits.count > 15 { throw InvalidArgumentValue("too many decimal places") }
    let hasSpace = position < utf8.count && utf8[position] == UInt8(ascii: " ")
    if hasSpace { position += 1 }
    let unitText = String(decoding: utf8[position...], as: UTF8.self).lowercased()
    guard let unit = byteUnits[unitText], !(hasSpace && unitText.isEmpty) else { throw invalid }

    // bytes = (integer * 10^f + fraction) * unit / 10^f, exactly, with overflow checks.
    let tooLarge = InvalidArgumentValue("too large")
    var scaled = 0
    var denominator = 1
    for digit in integerDigits + fractionDigits {
      let (times10, overflow1) = scaled.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(Int(digit))
      if overflow1 || overflow2 { throw tooLarge }
      scaled = sum
    }
    for _ in fractionDigits {
      let (next, overflow) = denominator.multipliedReportingOverflow(by: 10)
      if overflow { throw tooLarge }
      denominator = next
    }
    // Divide out common factors first so `4.5GB` does not overflow on long fractions.
    let divisor = greatestCommonDivisor(unit, denominator)
    let (numerator, overflow) = scaled.multipliedReportingOverflow(by: unit / divisor)
    if overflow { throw tooLarge }
    let reducedDenominator = denominator / divisor
    guard numerator % reducedDenominator == 0 else { throw InvalidArgumentValue("not a whole number of bytes") }
    return numerator / reducedDenominator
  }

  private static func greatestCommonDivisor(_ a: Int, _ b: Int) -> Int {
    var (a, b) = (a, b)
    while b != 0 { (a, b) = (b, a % b) }
    return a
  }

  private static func outOfRange<T: Comparable>(_ range: ClosedRange<T>) -> String {
    if range.upperBound == (Int.max as? T) { return "must be at least \(range.lowerBound)" }
    return "must be between \(range.lowerBound) and \(range.upperBound)"
  }
}
