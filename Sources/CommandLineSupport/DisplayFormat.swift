/// Short human-readable numbers for progress lines and messages.
public enum DisplayFormat {
  /// Decimal units with one decimal below 100 (`1.2 GB`, `12.3 MB`) and none above (`850 MB`);
  /// plain bytes below 1000 (`512 B`). Negative counts print as `0 B`.
  public static func bytes(_ byteCount: Int) -> String {
    if byteCount < 1000 { return "\(max(byteCount, 0)) B" }
    let units = ["kB", "MB", "GB", "TB", "PB", "EB"]
    var value = Double(byteCount) / 1000
    var unit = 0
    while value >= 999.95, unit < units.count - 1 {
      value /= 1000
      unit += 1
    }
    return "\(decimal(value)) \(units[unit])"
  }

  /// A count of things (not bytes) with two decimals and the noun, so it cannot read as a byte size:
  /// `684.49 B params`, `5.80 M params`, `512 params` (B = 10^9, M = 10^6, k = 10^3; rounded half up).
  public static func count(_ n: Int, noun: String) -> String {
    let scales: [(Int, String)] = [(1_000_000_000_000, "T"), (1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")]
    guard let (scale, unit) = scales.first(where: { n >= $0.0 }) else { return "\(max(n, 0)) \(noun)" }
    let hundredths = n / (scale / 100) + (n % (scale / 100) >= scale / 200 ? 1 : 0)
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction) \(unit) \(noun)"
  }

  /// `12.3` below 100, `850` above (rounded half to even, like printf).
  public static func decimal(_ value: Double) -> String {
    guard value.isFinite else { return "-" }
    if value >= 99.95 { return String(Int(value.rounded(.toNearestOrEven))) }
    let tenths = Int((value * 10).rounded(.toNearestOrEven))
    return "\(tenths / 10).\(tenths % 10)"
  }

  /// `m:ss` below an hour, `h:mm:ss` above; `--:--` when unknown (negative or not finite).
  public static func duration(seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0, seconds < 360_000_000 else { return "--:--" }
    let total = Int(seconds.rounded(.up))
    let (hours, minutes, secs) = (total / 3600, (total / 60) % 60, total % 60)
    func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    if hours > 0 { return "\(hours):\(twoDigits(minutes)):\(twoDigits(secs))" }
    return "\(minutes):\(twoDigits(secs))"
  }
}
