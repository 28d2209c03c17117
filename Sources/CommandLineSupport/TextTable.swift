/// Aligned plain-text tables for human output (`inspect`, `shard --dry-run`, `validate`).
public enum TextTable {
  /// Renders `rows` as columns separated by two spaces; columns in `rightAligned` are right-aligned
  /// (numbers), the rest left-aligned; no trailing spaces.
  public static func render(_ rows: [[String]], indent: Int = 0, rightAligned: Set<Int> = []) -> String {
    guard let columns = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    var out = ""
    for row in rows {
      var cells: [String] = []
      for (i, cell) in row.enumerated() {
        let pad = String(repeating: " ", count: widths[i] - cell.count)
        let last = i == row.count - 1
        cells.append(rightAligned.contains(i) ? pad + cell : (last ? cell : cell + pad))
      }
      out += String(repeating: " ", count: indent) + cells.joined(separator: "  ") + "\n"
    }
    return out
  }
}
