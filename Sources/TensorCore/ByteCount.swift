/// Checked arithmetic for tensor sizes read from untrusted headers.
///
/// Swift traps on overflow, and a trap on a hostile file is a denial of service, so every product of
/// header-supplied numbers goes through these helpers.
public enum ByteCount {
  /// The number of elements of `shape`, or `nil` if the product overflows `Int` or a dimension is negative.
  ///
  /// A zero dimension makes the count zero even if later dimensions are huge (the crate folds left to
  /// right and stops overflowing at zero; Smelt checks every dimension for overflow regardless of order).
  public static func elementCount(_ shape: [Int]) -> Int? {
    var count = 1
    for dim in shape {
      guard dim >= 0 else { return nil }
      let (product, overflow) = count.multipliedReportingOverflow(by: dim)
      if overflow { return nil }
      count = product
    }
    return count
  }

  /// The number of bytes `shape` occupies in `dtype`, or `nil` on overflow or when the bit count is not a
  /// whole number of bytes (a sub-byte dtype with an odd element count).
  public static func of(_ dtype: DType, shape: [Int]) -> Int? {
    guard let elements = elementCount(shape) else { return nil }
    let (bits, overflow) = elements.multipliedReportingOverflow(by: dtype.bitWidth)
    guard !overflow, bits % 8 == 0 else { return nil }
    return bits / 8
  }

  /// Formats a byte count for people: `1.23 GB` (decimal units, as Hugging Face shard sizes are).
  public static func formatted(_ bytes: Int) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000, unit < units.count - 1 {
      value /= 1000
      unit += 1
    }
    if unit == 0 { return "\(bytes) B" }
    let rounded = (value * 100).rounded() / 100
    return "\(rounded) \(units[unit])"
  }
}
