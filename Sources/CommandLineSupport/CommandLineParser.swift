/// Pure parsing of one command's arguments (no I/O), following swift-argument-parser's tokenizing rules:
///
/// - `--name value` and `--name=value` (split at the first `=`); `-n value`, `-nvalue`, packed short flags
///   `-vq`.
/// - An option's value is the next argument unless that looks like an option (`--x`, `-x`; negative numbers
///   such as `-1` are values). `--name=-x` always works.
/// - `--` ends the options: everything after it is positional. A lone `-` is positional (stdin convention).
/// - `-h` or `--help` anywhere before `--` requests help, whatever else is on the line.
/// - Repeating options collect every value; a non-repeating option given twice keeps the last value.
public enum CommandLineParser {
  /// The outcome of a successful parse.
  public enum Outcome: Sendable, Equatable {
    /// `-h` or `--help` was given.
    case helpRequested
    /// The parsed values.
    case arguments(ParsedArguments)
  }

  /// Parses `arguments` (without the tool and subcommand names) against `configuration`.
  /// - Throws: the first `UsageError` in this order: tokens left to right (unknown option, missing or
  ///   invalid value), then extra positionals, then missing positionals, then missing required options.
  public static func parse(
    _ arguments: [String], for configuration: CommandConfiguration
  ) throws(UsageError) -> Outcome {
    for token in arguments {
      if token == "--" { break }
      if token == "--help" || token == "-h" { return .helpRequested }
    }

    var result = ParsedArguments(configuration: configuration)
    var positionals: [String] = []
    var index = 0
    var optionsEnded = false

    /// The value for `spec` (which was typed as `typedName`): inline, or the next argument.
    func takeValue(for spec: ArgumentSpec, inline: String?) throws(UsageError) -> String {
      if let inline { return inline }
      if index < arguments.count, !looksLikeOption(arguments[index]) {
        index += 1
        return arguments[index - 1]
      }
      throw .missingValue(argument: spec.synopsis)
    }

    while index < arguments.count {
      let token = arguments[index]
      index += 1
      if optionsEnded || !looksLikeOption(token) {
        positionals.append(token)
        result.given.append(([token], nil))
      } else if token == "--" {
        optionsEnded = true
        result.given.append(([token], nil))
      } else if token.hasPrefix("--") {
        let body = token.dropFirst(2)
        let name: String
        let inline: String?
        if let equals = body.firstIndex(of: "=") {
          name = String(body[..<equals])
          inline = String(body[body.index(after: equals)...])
        } else {
          name = String(body)
          inline = nil
        }
        if let spec = configuration.arguments.first(where: {
          $0.kind != .positional && ($0.name == name || $0.aliases.contains(name))
        }) {
          if spec.kind == .flag {
            if let inline { throw .flagTakesNoValue(flag: "--\(name)", value: inline) }
            result.flags[spec.name] = true
            result.given.append(([token], spec.name))
          } else {
            let start = index - 1
            try result.append(try takeValue(for: spec, inline: inline), to: spec)
            result.given.append((Array(arguments[start..<index]), spec.name))
          }
        } else if name.hasPrefix("no-"),
          let spec = configuration.arguments.first(where: {
            $0.kind == .flag && $0.hasInversion && $0.name == name.dropFirst(3)
          })
        {
          if let inline { throw .flagTakesNoValue(flag: "--\(name)", value: inline) }
          result.flags[spec.name] = false
          result.given.append(([token], spec.name))
        } else {
          throw .unknownOption("--\(name)", suggestion: suggestion(for: "--\(name)", in: configuration))
        }
      } else {
        // A pack of short names: flags, optionally ending in (or followed by the value of) one option.
        var letters = Substring(token.dropFirst())
        while let letter = letters.first {
          letters = letters.dropFirst()
          guard let spec = configuration.arguments.first(where: { $0.shortName == letter }) else {
            throw .unknownOption("-\(letter)", suggestion: nil)
          }
          if spec.kind == .flag {
            result.flags[spec.name] = true
            result.given.append((["-\(letter)"], spec.name))
          } else {
            let start = index
            let inline = letters.isEmpty ? nil : String(letters)
            try result.append(try takeValue(for: spec, inline: inline), to: spec)
            result.given.append((["-\(letter)" + (inline ?? "")] + arguments[start..<index], spec.name))
            break
          }
        }
      }
    }

    try assignPositionals(positionals, to: &result)
    // Name the positional entries of `given` by the spec each was assigned to.
    let positionalSpecs = result.configuration.arguments.filter { $0.kind == .positional }
    var k = 0
    for i in result.given.indices where result.given[i].spec == nil && result.given[i].tokens != ["--"] {
      guard !positionalSpecs.isEmpty else { break }
      let spec = positionalSpecs[min(k, positionalSpecs.count - 1)]
      result.given[i].spec = spec.name
      if !spec.isRepeating { k += 1 }
    }
    for spec in configuration.arguments where spec.kind == .option && !spec.isOptional {
      if result.values[spec.name] == nil && spec.defaultValue == nil {
        throw .missingArgument(spec.synopsis)
      }
    }
    return .arguments(result)
  }

  /// Fills positionals in declaration order; a repeating positional takes the rest.
  private static func assignPositionals(
    _ positionals: [String], to result: inout ParsedArguments
  ) throws(UsageError) {
    var remaining = positionals[...]
    var missing: ArgumentSpec?
    for spec in result.configuration.arguments where spec.kind == .positional {
      if spec.isRepeating {
        if !remaining.isEmpty { result.values[spec.name] = Array(remaining) }
        remaining = []
      } else if let value = remaining.first {
        remaining = remaining.dropFirst()
        result.values[spec.name] = [value]
      } else if !spec.isOptional && missing == nil {
        missing = spec
      }
    }
    if !remaining.isEmpty { throw .unexpectedArguments(Array(remaining)) }
    if let missing { throw .missingArgument(missing.synopsis) }
  }

  /// `--x`, `-x` and `--` are options; `-`, `-1` and `-0.5` are values.
  static func looksLikeOption(_ token: String) -> Bool {
    guard token.hasPrefix("-"), token.count > 1 else { return false }
    if token.hasPrefix("--") { return true }
    return Double(token) == nil
  }

  /// The declared long name closest to `typed` within edit distance 2, if any.
  static func suggestion(for typed: String, in configuration: CommandConfiguration) -> String? {
    var candidates: [String] = ["--help"]
    for spec in configuration.arguments where spec.kind != .positional {
      candidates.append("--\(spec.name)")
      if spec.hasInversion { candidates.append("--no-\(spec.name)") }
    }
    return closestMatch(to: typed, among: candidates)
  }
}

/// The candidate with the smallest edit distance to `typed` if that distance is at most `maximumDistance`;
/// ties go to the earlier candidate.
func closestMatch(to typed: String, among candidates: [String], maximumDistance: Int = 2) -> String? {
  var best: (candidate: String, distance: Int)?
  for candidate in candidates {
    let distance = editDistance(typed, candidate)
    if distance <= maximumDistance && distance < (best?.distance ?? Int.max) {
      best = (candidate, distance)
    }
  }
  return best?.candidate
}

/// Levenshtein distance over characters (insertions, deletions, substitutions each cost 1).
func editDistance(_ a: String, _ b: String) -> Int {
  let a = Array(a)
  let b = Array(b)
  if a.isEmpty { return b.count }
  if b.isEmpty { return a.count }
  var previous = Array(0...b.count)
  var current = [Int](repeating: 0, count: b.count + 1)
  for i in 1...a.count {
    current[0] = i
    for j in 1...b.count {
      let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
      current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
    }
    swap(&previous, &current)
  }
  return previous[b.count]
}
