/// Shell-style patterns for tensor names: `*` matches any run of characters (dots included), `?` one
/// character, `[abc]` / `[0-9]` a class. Used by `--include`, `--exclude`, `--rule` and `--place`.
public struct Glob: Sendable, Hashable, CustomStringConvertible {
  /// The pattern text.
  public let pattern: String
  private let characters: [Character]

  public init(_ pattern: String) {
    self.pattern = pattern
    characters = Array(pattern)
  }

  public var description: String { pattern }

  /// True if `name` matches the whole pattern.
  public func matches(_ name: String) -> Bool {
    let text = Array(name)
    var p = 0
    var t = 0
    var starP = -1
    var starT = 0
    while t < text.count {
      if p < characters.count {
        switch characters[p] {
        case "*":
          starP = p
          starT = t
          p += 1
          continue
        case "?":
          p += 1
          t += 1
          continue
        case "[":
          if let (matched, next) = matchClass(at: p, text[t]) {
            if matched {
              p = next
              t += 1
              continue
            }
          } else if text[t] == "[" {
            p += 1
            t += 1
            continue
          }
        default:
          if characters[p] == text[t] {
            p += 1
            t += 1
            continue
          }
        }
      }
      guard starP >= 0 else { return false }
      p = starP + 1
      starT += 1
      t = starT
    }
    while p < characters.count, characters[p] == "*" { p += 1 }
    return p == characters.count
  }

  /// Matches a `[...]` class starting at `start`; `nil` when the bracket is not closed (then it is literal).
  private func matchClass(at start: Int, _ c: Character) -> (Bool, Int)? {
    var i = start + 1
    var negate = false
    if i < characters.count, characters[i] == "!" || characters[i] == "^" {
      negate = true
      i += 1
    }
    var matched = false
    var first = true
    while i < characters.count {
      if characters[i] == "]" && !first { return (matched != negate, i + 1) }
      first = false
      if i + 2 < characters.count, characters[i + 1] == "-", characters[i + 2] != "]" {
        if characters[i] <= c && c <= characters[i + 2] { matched = true }
        i += 3
      } else {
        if characters[i] == c { matched = true }
        i += 1
      }
    }
    return nil
  }
}
