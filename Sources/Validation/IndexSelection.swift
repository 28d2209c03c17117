/// A set of layer or expert indices from the command line: `0,3,60`, `0-7`, `0-3,10,12-15`.
public struct IndexSelection: Sendable, Equatable, CustomStringConvertible {
  /// The chosen indices, sorted, without duplicates.
  public let indices: [Int]
  private let members: Set<Int>

  /// Every index in `indices`.
  public init(_ indices: [Int]) {
    members = Set(indices)
    self.indices = members.sorted()
  }

  /// Parses `text` (comma-separated indices and inclusive `a-b` ranges).
  ///
  /// - Throws: `ValidationError.invalidSelection` for empty items, non-numbers, negative numbers, reversed
  ///   ranges or ranges of more than 1,000,000 indices.
  public init(parsing text: String, option: String) throws(ValidationError) {
    var indices: [Int] = []
    for item in text.split(separator: ",", omittingEmptySubsequences: false) {
      let item = item.trimmingSpaces
      let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
      guard !item.isEmpty, bounds.count <= 2, let low = Int(bounds[0]), low >= 0,
        let high = bounds.count == 2 ? Int(bounds[1]) : low
      else {
        throw .invalidSelection(
          option: option, text: text, reason: "expected indices and ranges such as 0,3,60 or 0-7, got '\(item)'")
      }
      guard high >= low, high - low < 1_000_000 else {
        throw .invalidSelection(option: option, text: text, reason: "range '\(item)' is empty or too large")
      }
      indices += Array(low...high)
    }
    self.init(indices)
  }

  /// Whether `index` is selected.
  public func contains(_ index: Int) -> Bool { members.contains(index) }

  /// Checks every index is below `limit` (e.g. the layer count).
  public func check(below limit: Int, option: String) throws(ValidationError) {
    if let bad = indices.first(where: { $0 >= limit }) {
      throw .invalidSelection(option: option, text: description, reason: "\(bad) is not below \(limit)")
    }
  }

  /// `0,3,60` (ranges collapsed: `0-7`).
  public var description: String {
    var parts: [String] = []
    var i = 0
    while i < indices.count {
      var j = i
      while j + 1 < indices.count && indices[j + 1] == indices[j] + 1 { j += 1 }
      parts.append(j > i ? "\(indices[i])-\(indices[j])" : "\(indices[i])")
      i = j + 1
    }
    return parts.joined(separator: ",")
  }
}

extension Substring {
  var trimmingSpaces: Substring {
    var text = self
    while text.first == " " { text = text.dropFirst() }
    while text.last == " " { text = text.dropLast() }
    return text
  }
}
