/// Deterministic JSON serialization.
///
/// - Compact form has no whitespace at all (`{"a":[1,2]}`), the form serde_json (and so the safetensors
///   crate) writes.
/// - Pretty form indents by two spaces with `": "` after keys, like Python's `json.dumps(indent=2)`; empty
///   arrays and objects stay `[]` / `{}`.
/// - Strings escape only what RFC 8259 requires, the way serde_json does: `"` and `\`, `\b \f \n \r \t`,
///   and other control characters as `\u00xx`. `/` and non-ASCII characters are written as is.
/// - Numbers are written from their text (`JSONNumber.text`), so integers round-trip exactly.
public struct JSONWriter: Sendable {
  /// Indent nested values on separate lines.
  public var pretty: Bool
  /// Write object members sorted by key (by UTF-8 bytes, which is Unicode code point order, as Python's
  /// `sort_keys=True`) instead of in document order.
  public var sortedKeys: Bool

  public init(pretty: Bool = false, sortedKeys: Bool = false) {
    self.pretty = pretty
    self.sortedKeys = sortedKeys
  }

  /// The UTF-8 bytes of `value`.
  public func bytes(_ value: JSONValue) -> [UInt8] {
    var output: [UInt8] = []
    output.reserveCapacity(256)
    write(value, to: &output)
    return output
  }

  /// `value` as a string.
  public func string(_ value: JSONValue) -> String { String(decoding: bytes(value), as: UTF8.self) }

  /// Appends the serialization of `value` to `output`.
  public func write(_ value: JSONValue, to output: inout [UInt8]) {
    write(value, indent: 0, to: &output)
  }

  /// Appends `string` as a JSON string literal (quotes and escapes) to `output`.
  public static func writeString(_ string: String, to output: inout [UInt8]) {
    output.append(UInt8(ascii: "\""))
    var contiguous = string  // withUTF8 is mutating: it makes bridged strings contiguous first
    contiguous.withUTF8 { appendEscaped(UnsafeRawBufferPointer($0), to: &output) }
    output.append(UInt8(ascii: "\""))
  }

  private static func appendEscaped(_ bytes: UnsafeRawBufferPointer, to output: inout [UInt8]) {
    let hex: [UInt8] = Array("0123456789abcdef".utf8)
    var runStart = 0
    for (i, b) in bytes.enumerated() where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
      output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<i]))
      runStart = i + 1
      output.append(UInt8(ascii: "\\"))
      switch b {
      case UInt8(ascii: "\""), UInt8(ascii: "\\"): output.append(b)
      case 0x08: output.append(UInt8(ascii: "b"))
      case 0x0C: output.append(UInt8(ascii: "f"))
      case 0x0A: output.append(UInt8(ascii: "n"))
      case 0x0D: output.append(UInt8(ascii: "r"))
      case 0x09: output.append(UInt8(ascii: "t"))
      default:
        output.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 15)]])
      }
    }
    output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count]))
  }

  private func newline(_ indent: Int, to output: inout [UInt8]) {
    output.append(UInt8(ascii: "\n"))
    output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
  }

  private func write(_ value: JSONValue, indent: Int, to output: inout [UInt8]) {
    switch value {
    case .null: output.append(contentsOf: "null".utf8)
    case .bool(let bool): output.append(contentsOf: (bool ? "true" : "false").utf8)
    case .number(let number): output.append(contentsOf: number.text.utf8)
    case .string(let string): JSONWriter.writeString(string, to: &output)
    case .array(let array):
      output.append(UInt8(ascii: "["))
      for (k, element) in array.enumerated() {
        if k > 0 { output.append(UInt8(ascii: ",")) }
        if pretty { newline(indent + 1, to: &output) }
        write(element, indent: indent + 1, to: &output)
      }
      if pretty, !array.isEmpty { newline(indent, to: &output) }
      output.append(UInt8(ascii: "]"))
    case .object(let object):
      output.append(UInt8(ascii: "{"))
      var members = object.members
      if sortedKeys { members.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) } }
      for (k, member) in members.enumerated() {
        if k > 0 { output.append(UInt8(ascii: ",")) }
        if pretty { newline(indent + 1, to: &output) }
        JSONWriter.writeString(member.key, to: &output)
        output.append(UInt8(ascii: ":"))
        if pretty { output.append(UInt8(ascii: " ")) }
        write(member.value, indent: indent + 1, to: &output)
      }
      if pretty, !members.isEmpty { newline(indent, to: &output) }
      output.append(UInt8(ascii: "}"))
    }
  }
}
