import SystemIO
/// Number formatting shared by the validation table, failure messages and `smelt forward`.
public enum ReportFormat {
  /// `31.4`, `inf`, `-` (undefined).
  public static func decibels(_ value: Double?) -> String {
    guard let value else { return "-" }
    if value == .infinity { return "inf" }
    if value == -.infinity { return "-inf" }
    if value.isNaN { return "nan" }
    return NumberFormatting.printf("%.1f", value)
  }

  /// `0.999512` (six decimals).
  public static func cosine(_ value: Double) -> String {
    value.isNaN ? "nan" : NumberFormatting.printf("%.6f", value)
  }

  /// Four significant digits: `0.04813`, `1.25e-05`, `12.35`.
  public static func number(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value > 0 ? "inf" : "-inf" }
    return NumberFormatting.printf("%.4g", value)
  }

  /// `87.5%`.
  public static func percent(_ fraction: Double) -> String {
    NumberFormatting.printf("%.1f%%", fraction * 100)
  }

}
