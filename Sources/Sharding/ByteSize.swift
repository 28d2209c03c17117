/// Parses human byte sizes: `80GB` (decimal units, as disk and GPU vendors and Hugging Face write them),
/// `512GiB` (binary units), `1.5TB`, `2G` (bare units are decimal), or a plain byte count.
public enum ByteSize {
  private static let units: [(String, Double)] = [
    ("kib", 1024), ("mib", 1_048_576), ("gib", 1_073_741_824), ("tib", 1_099_511_627_776),
    ("kb", 1e3), ("mb", 1e6), ("gb", 1e9), ("tb", 1e12),
    ("b", 1), ("k", 1e3), ("m", 1e6), ("g", 1e9), ("t", 1e12),
  ]

  /// The byte count `text` denotes.
  /// - Throws: `ShardingError.invalidByteSize`.
  public static func parse(_ text: String) throws(ShardingError) -> Int {
    let lower = text.lowercased().filter { $0 != " " && $0 != "_" }
    var number = Substring(lower)
    var multiplier = 1.0
    for (suffix, value) in units where lower.hasSuffix(suffix) {
      number = lower.dropLast(suffix.count)
      multiplier = value
      break
    }
    guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
      let value = Double(number), value.isFinite, value >= 0
    else { throw .invalidByteSize(text: text) }
    let bytes = (value * multiplier).rounded()
    guard bytes < 9.2e18 else { throw .invalidByteSize(text: text) }
    return Int(bytes)
  }
}
