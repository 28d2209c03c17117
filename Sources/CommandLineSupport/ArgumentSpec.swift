/// One declared command-line argument: a positional argument, an option that takes a value, or a flag.
///
/// Build specs with the factories `positional`, `option` and `flag`; the `name` is both the key for
/// `ParsedArguments` accessors and (for options and flags) the long name without dashes.
public struct ArgumentSpec: Sendable, Equatable {
  /// What the argument looks like on the command line.
  public enum Kind: Sendable, Equatable {
    /// `<name>`, matched by position.
    case positional
    /// `--name VALUE`, `--name=VALUE` or `-n VALUE`.
    case option
    /// `--name` (and `--no-name` when `hasInversion`).
    case flag
  }

  public var kind: Kind
  /// Accessor key and long name (`max-shard-size` for `--max-shard-size`).
  public var name: String
  /// Optional one-letter name (`-o`).
  public var shortName: Character?
  /// The placeholder in help and errors: `<valueName>`.
  public var valueName: String
  /// One-line help text.
  public var help: String
  /// The value used when an option is absent, shown as `(default: …)`.
  public var defaultValue: String?
  /// When not empty, the only accepted values, shown as `(values: …)` and checked while parsing.
  public var allowedValues: [String]
  /// Options: may be given several times (`[String]`). Positionals: takes every remaining argument.
  public var isRepeating: Bool
  /// Positionals and options: may be absent. Options are optional unless declared `required`.
  public var isOptional: Bool
  /// Flags: `--no-name` is accepted and sets the flag to false.
  public var hasInversion: Bool
  /// Flags: the value when neither `--name` nor `--no-name` is given.
  public var defaultFlagValue: Bool
  /// Options: other long names accepted for the same option (an old spelling kept working), not shown in help.
  public var aliases: [String] = []

  /// A positional argument `<name>`.
  /// - Parameters:
  ///   - optional: the argument may be absent.
  ///   - repeating: takes every remaining positional (`<name> ...`); must be the last positional.
  public static func positional(
    _ name: String, help: String, optional: Bool = false, repeating: Bool = false
  ) -> ArgumentSpec {
    ArgumentSpec(
      kind: .positional, name: name, shortName: nil, valueName: name, help: help, defaultValue: nil,
      allowedValues: [], isRepeating: repeating, isOptional: optional || repeating, hasInversion: false,
      defaultFlagValue: false)
  }

  /// An option `--name <valueName>`.
  /// - Parameters:
  ///   - short: a one-letter alias (`-n VALUE`).
  ///   - valueName: the placeholder; defaults to `name`.
  ///   - default: the value when absent, shown in help.
  ///   - values: the allowed values, checked while parsing.
  ///   - required: parsing fails with `Missing expected argument` when absent.
  ///   - repeating: may be given several times; read with `strings(_:)`.
  ///   - aliases: other long names for the option (`--max-kl` for `--max-kld`), read under `name`.
  public static func option(
    _ name: String, short: Character? = nil, valueName: String? = nil, help: String, default: String? = nil,
    values: [String] = [], required: Bool = false, repeating: Bool = false, aliases: [String] = []
  ) -> ArgumentSpec {
    ArgumentSpec(
      kind: .option, name: name, shortName: short, valueName: valueName ?? name, help: help,
      defaultValue: `default`, allowedValues: values, isRepeating: repeating, isOptional: !required,
      hasInversion: false, defaultFlagValue: false, aliases: aliases)
  }

  /// A boolean flag `--name`.
  /// - Parameters:
  ///   - inversion: also accept `--no-name`; help shows `--name/--no-name` and the default.
  ///   - default: the value when neither form is given.
  public static func flag(
    _ name: String, short: Character? = nil, help: String, inversion: Bool = false, default: Bool = false
  ) -> ArgumentSpec {
    ArgumentSpec(
      kind: .flag, name: name, shortName: short, valueName: name, help: help, defaultValue: nil,
      allowedValues: [], isRepeating: false, isOptional: true, hasInversion: inversion,
      defaultFlagValue: `default`)
  }

  /// The conventional `-q, --quiet` flag. `CommandContext.isQuiet` follows it automatically.
  public static let quiet = ArgumentSpec.flag(
    "quiet", short: "q", help: "Print no progress or log lines; results and errors still appear.")

  /// The conventional `--json` flag: the result goes to stdout as JSON; progress and logs stay on stderr.
  public static let json = ArgumentSpec.flag("json", help: "Print the result as JSON to stdout.")

  /// The conventional `--json-file PATH`: `--json`, with the JSON written to PATH instead of stdout (declare it
  /// next to `.json`; `CommandLineTool` redirects, `ParsedArguments.flag("json")` reads true).
  public static let jsonFile = ArgumentSpec.option(
    "json-file", valueName: "path", help: "Write the JSON result to PATH instead of stdout (implies --json).")

  /// `--name <valueName>`, `--name` or `<name>`: how errors and the usage line name this argument.
  public var synopsis: String {
    switch kind {
    case .positional: return "<\(valueName)>"
    case .option: return "--\(name) <\(valueName)>"
    case .flag: return "--\(name)"
    }
  }
}

/// Everything a command declares about itself: name, help texts and arguments.
public struct CommandConfiguration: Sendable, Equatable {
  /// The subcommand name (`inspect`).
  public var name: String
  /// One line for `OVERVIEW:` and the root's subcommand list.
  public var abstract: String
  /// Optional paragraphs printed after the overview (`\n` separates paragraphs).
  public var discussion: String
  /// Declared arguments, in the order help lists them. Positionals are filled in declaration order.
  public var arguments: [ArgumentSpec]

  /// A command configuration.
  public init(name: String, abstract: String, discussion: String = "", arguments: [ArgumentSpec] = []) {
    self.name = name
    self.abstract = abstract
    self.discussion = discussion
    self.arguments = arguments
  }

  /// The spec called `name`, if declared.
  public func spec(named name: String) -> ArgumentSpec? {
    arguments.first { $0.name == name }
  }

  /// Declaration mistakes (duplicate names, a reserved `-h`/`--help`, a repeating positional that is not
  /// last, a required positional after an optional one, a default outside the allowed values). Empty when
  /// the declaration is sound; a test asserts this for every Smelt command.
  public var problems: [String] {
    var problems: [String] = []
    var seenNames: Set<String> = []
    var seenShort: Set<Character> = []
    for spec in arguments {
      let key = spec.kind == .positional ? "<\(spec.name)>" : spec.name
      if !seenNames.insert(spec.name).inserted { problems.append("'\(key)' is declared twice") }
      if spec.name.isEmpty || spec.name.hasPrefix("-") || spec.name.contains("=") {
        problems.append("'\(key)' is not a valid argument name")
      }
      if spec.kind != .positional && (spec.name == "help" || spec.name == "version") {
        problems.append("'--\(spec.name)' is reserved")
      }
      if let short = spec.shortName {
        if short == "h" { problems.append("'-h' is reserved for help") }
        if !seenShort.insert(short).inserted { problems.append("'-\(short)' is declared twice") }
      }
      if let value = spec.defaultValue, !spec.allowedValues.isEmpty, !spec.allowedValues.contains(value) {
        problems.append("the default '\(value)' of '--\(spec.name)' is not an allowed value")
      }
      if spec.hasInversion, arguments.contains(where: { $0.name == "no-\(spec.name)" }) {
        problems.append("'--no-\(spec.name)' clashes with the inversion of '--\(spec.name)'")
      }
    }
    let positionals = arguments.filter { $0.kind == .positional }
    for (index, spec) in positionals.enumerated() {
      if spec.isRepeating && index != positionals.count - 1 {
        problems.append("the repeating positional '<\(spec.name)>' must be the last positional")
      }
      if !spec.isOptional, positionals[..<index].contains(where: { $0.isOptional }) {
        problems.append("the required positional '<\(spec.name)>' follows an optional one")
      }
    }
    return problems
  }
}
