/// Help and usage text in swift-argument-parser's layout, at an explicit width (pure; no I/O).
///
/// ```
/// OVERVIEW: <abstract>
///
/// <discussion>
///
/// USAGE: <tool> <command> <synopsis>
///
/// ARGUMENTS:
///   <input>                 Help text.
///
/// OPTIONS:
///   -o, --output <dir>      Help text. (default: out)
///   -h, --help              Show help information.
/// ```
public enum HelpFormatter {
  /// Help descriptions start at this column (argument-parser's `labelColumnWidth`).
  public static let labelColumn = 26
  /// Labels are indented by this much.
  public static let indent = 2

  /// The usage line's synopsis: `smelt inspect <path> [--tensors] [--filter <glob>]`.
  ///
  /// Positionals and options appear in declaration order; optional ones in brackets, repeating ones with
  /// ` ...`. Inverted flags show as `[--name|--no-name]`.
  public static func synopsis(toolName: String, configuration: CommandConfiguration) -> String {
    var parts = ["\(toolName) \(configuration.name)"]
    for spec in configuration.arguments {
      var part: String
      switch spec.kind {
      case .positional: part = spec.synopsis
      case .option: part = spec.synopsis
      case .flag: part = spec.hasInversion ? "--\(spec.name)|--no-\(spec.name)" : spec.synopsis
      }
      if spec.isRepeating { part += " ..." }
      let optional = spec.kind == .option ? (spec.isOptional || spec.defaultValue != nil) : spec.isOptional
      if optional { part = "[\(part)]" }
      parts.append(part)
    }
    return parts.joined(separator: " ")
  }

  /// The full help screen for a subcommand, without a trailing newline.
  public static func help(toolName: String, configuration: CommandConfiguration, columns: Int) -> String {
    var sections: [String] = []
    sections.append(overview(abstract: configuration.abstract, discussion: configuration.discussion, columns: columns))
    sections.append(
      wrap("USAGE: " + synopsis(toolName: toolName, configuration: configuration), width: columns, indent: 2))

    let positionals = configuration.arguments.filter { $0.kind == .positional }
    if !positionals.isEmpty {
      let rows = positionals.map { spec in
        (spec.isRepeating ? "<\(spec.valueName)> ..." : "<\(spec.valueName)>", spec.help)
      }
      sections.append(section("ARGUMENTS:", rows: rows, columns: columns))
    }

    var optionRows: [(String, String)] = []
    for spec in configuration.arguments where spec.kind != .positional {
      optionRows.append((label(for: spec), description(for: spec)))
    }
    optionRows.append(("-h, --help", "Show help information."))
    sections.append(section("OPTIONS:", rows: optionRows, columns: columns))
    return sections.joined(separator: "\n\n")
  }

  /// The root help screen: overview, `USAGE: <tool> <subcommand>`, `--version`, `--help`, the subcommand
  /// list and `See '<tool> help <subcommand>' for detailed help.`
  public static func rootHelp(
    toolName: String, abstract: String, discussion: String, subcommands: [CommandConfiguration], columns: Int
  ) -> String {
    var sections: [String] = []
    sections.append(overview(abstract: abstract, discussion: discussion, columns: columns))
    sections.append(wrap("USAGE: \(toolName) <subcommand>", width: columns, indent: 2))
    sections.append(
      section(
        "OPTIONS:", rows: [("--version", "Show the version."), ("-h, --help", "Show help information.")],
        columns: columns))
    if !subcommands.isEmpty {
      sections.append(
        section("SUBCOMMANDS:", rows: subcommands.map { ($0.name, $0.abstract) }, columns: columns) + "\n\n"
          + wrap("  See '\(toolName) help <subcommand>' for detailed help.", width: columns, indent: 2))
    }
    return sections.joined(separator: "\n\n")
  }

  /// `-o, --output <dir>`, `--json`, `--index/--no-index`.
  static func label(for spec: ArgumentSpec) -> String {
    var names: [String] = []
    if let short = spec.shortName { names.append("-\(short)") }
    names.append(spec.hasInversion ? "--\(spec.name)/--no-\(spec.name)" : "--\(spec.name)")
    let label = names.joined(separator: ", ")
    return spec.kind == .option ? "\(label) <\(spec.valueName)>" : label
  }

  /// The help text plus `(values: a, b; default: a)`, `(default: x)` or, for inverted flags,
  /// `(default: --name)`.
  static func description(for spec: ArgumentSpec) -> String {
    var defaultText = spec.defaultValue
    if spec.kind == .flag && spec.hasInversion {
      defaultText = spec.defaultFlagValue ? "--\(spec.name)" : "--no-\(spec.name)"
    }
    var notes: [String] = []
    if !spec.allowedValues.isEmpty { notes.append("values: " + spec.allowedValues.joined(separator: ", ")) }
    if let defaultText, !defaultText.isEmpty { notes.append("default: " + defaultText) }
    if notes.isEmpty { return spec.help }
    let note = "(" + notes.joined(separator: "; ") + ")"
    return spec.help.isEmpty ? note : spec.help + " " + note
  }

  /// The `Help:  --kind <kind>  Help text.` line argument-parser prints under some usage errors.
  static func helpLine(for error: UsageError, configuration: CommandConfiguration) -> String? {
    guard let synopsis = error.argumentSynopsis,
      let spec = configuration.arguments.first(where: { $0.synopsis == synopsis }), !spec.help.isEmpty
    else { return nil }
    return "Help:  \(synopsis)  \(spec.help)"
  }

  private static func overview(abstract: String, discussion: String, columns: Int) -> String {
    var text = wrap("OVERVIEW: " + abstract, width: columns, indent: 0)
    if !discussion.isEmpty {
      text += "\n\n" + discussion.split(separator: "\n", omittingEmptySubsequences: false)
        .map { wrap(String($0), width: columns, indent: 0) }
        .joined(separator: "\n")
    }
    return text
  }

  private static func section(_ title: String, rows: [(String, String)], columns: Int) -> String {
    var lines = [title]
    let pad = String(repeating: " ", count: indent)
    for (label, description) in rows {
      let prefix = pad + label
      if description.isEmpty {
        lines.append(prefix)
        continue
      }
      let column = String(repeating: " ", count: labelColumn)
      let wrapped = wrapLines(description, width: max(columns - labelColumn, 10))
      if prefix.count < labelColumn {
        lines.append(prefix + String(repeating: " ", count: labelColumn - prefix.count) + wrapped[0])
      } else {
        lines.append(prefix)
        lines.append(column + wrapped[0])
      }
      lines += wrapped.dropFirst().map { column + $0 }
    }
    return lines.joined(separator: "\n")
  }

  /// Word-wraps `text` to lines of at most `width` characters (a longer word gets a line of its own).
  static func wrapLines(_ text: String, width: Int) -> [String] {
    var lines: [String] = []
    var current = ""
    for word in text.split(separator: " ") {
      if !current.isEmpty && current.count + 1 + word.count > width {
        lines.append(current)
        current = String(word)
      } else {
        current += (current.isEmpty ? "" : " ") + word
      }
    }
    lines.append(current)
    return lines
  }

  /// Word-wraps `text` to `width` columns; continuation lines start with `indent` spaces. Leading spaces of
  /// the first line are kept; a word longer than a line is not split.
  public static func wrap(_ text: String, width: Int, indent: Int) -> String {
    let leading = text.prefix { $0 == " " }
    let words = text.dropFirst(leading.count).split(separator: " ", omittingEmptySubsequences: true)
    var lines: [String] = []
    var current = String(leading)
    var currentHasWord = false
    let continuation = String(repeating: " ", count: indent)
    for word in words {
      if currentHasWord && current.count + 1 + word.count > width {
        lines.append(current)
        current = continuation + word
      } else {
        current += (currentHasWord ? " " : "") + word
      }
      currentHasWord = true
    }
    lines.append(current)
    return lines.joined(separator: "\n")
  }
}
