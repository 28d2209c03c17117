#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// Number formatting shared by the validation table, failure messages and `smelt forward`.
public enum ReportFormat {
  /// `31.4`, `inf`, `-` (undefined).
  public static func decibels(_ value: Double?) -> String {
    guard let value else { return "-" }
    if value == .infinity { return "inf" }
    if value == -.infinity { return "-inf" }
    if value.isNaN { return "nan" }
    return printf("%.1f", value)
  }

  /// `0.999512` (six decimals).
  public static func cosine(_ value: Double) -> String {
    value.isNaN ? "nan" : printf("%.6f", value)
  }

  /// Four significant digits: `0.04813`, `1.25e-05`, `12.35`.
  public static func number(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value > 0 ? "inf" : "-inf" }
    return printf("%.4g", value)
  }

  /// `87.5%`.
  public static func percent(_ fraction: Double) -> String {
    printf("%.1f%%", fraction * 100)
  }

  /// C `printf` formatting of one number (the binary does not link Foundation, whose start-up and
  /// memory `inspect` would pay for).
  private static func printf(_ format: String, _ value: Double) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    let length = withVaList([value]) { arguments in
      buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, $0.count, format, arguments) }
    }
    return String(decoding: buffer.prefix(max(0, min(Int(length), 63))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
