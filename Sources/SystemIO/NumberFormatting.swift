#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// C `printf` formatting of numbers, for reports that promise printf's exact output (`%.4g`). The binary does
/// not link Foundation, whose start-up and memory `inspect` would pay for.
public enum NumberFormatting {
  /// `value` formatted by `snprintf` with `format`, which must take exactly one `double` (`"%.4g"`,
  /// `"%.1f%%"`); at most 63 bytes.
  public static func printf(_ format: String, _ value: Double) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    let length = withVaList([value]) { arguments in
      buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, $0.count, format, arguments) }
    }
    return String(decoding: buffer.prefix(max(0, min(Int(length), 63))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
