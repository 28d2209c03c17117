/// The values of one parsed command line, read through typed accessors keyed by `ArgumentSpec.name`.
///
/// Every accessor throws `UsageError` (exit 64) with argument-parser's wording, e.g.
/// `The value 'x' is invalid for '--threads <n>': not an integer`. Reading a name the command did not
/// declare is a programming error and traps with a message naming the command and the argument.
public struct ParsedArguments: Sendable, Equatable {
  public static func == (lhs: ParsedArguments, rhs: ParsedArguments) -> Bool {
    lhs.configuration == rhs.configuration && lhs.values == rhs.values && lhs.flags == rhs.flags
      && lhs.given.map(\.tokens) == rhs.given.map(\.tokens) && lhs.given.map(\.spec) == rhs.given.map(\.spec)
  }

  /// The declaration these values were parsed against.
  public let configuration: CommandConfiguration
  /// Raw values of positionals and options, in command-line order.
  var values: [String: [String]] = [:]
  /// Flags that were given (`--x` true, `--no-x` false).
  var flags: [String: Bool] = [:]
  /// The arguments as given, in order, each with the spec it belongs to (`nil` for `--`): `--to bf16` is
  /// one entry of two tokens, a pack `-vq` one entry per letter.
  var given: [(tokens: [String], spec: String?)] = []

  init(configuration: CommandConfiguration) {
    self.configuration = configuration
  }

  /// Parses `arguments` against `configuration`, treating `--help` as an error (for tests and helpers).
  public init(_ arguments: [String], configuration: CommandConfiguration) throws(UsageError) {
    switch try CommandLineParser.parse(arguments, for: configuration) {
    case .arguments(let parsed): self = parsed
    case .helpRequested: throw .invalid("help was requested")
    }
  }

  mutating func append(_ value: String, to spec: ArgumentSpec) throws(UsageError) {
    if !spec.allowedValues.isEmpty && !spec.allowedValues.contains(value) {
      throw .invalidValue(value, argument: spec.synopsis, reason: nil, allowedValues: spec.allowedValues)
    }
    if spec.isRepeating {
      values[spec.name, default: []].append(value)
    } else {
      values[spec.name] = [value]
    }
  }

  private func declared(_ name: String) -> ArgumentSpec {
    guard let spec = configuration.spec(named: name) else {
      preconditionFailure("command '\(configuration.name)' reads undeclared argument '\(name)'")
    }
    return spec
  }

  // MARK: Raw values

  /// The arguments as given, without the options and flags named in `names` (and their values): the
  /// command line a job records, minus what changes how it runs but not what it produces (`--resume`,
  /// `--part`, `--quiet`).
  ///
  /// - Parameters:
  ///   - paths: positionals and options whose values are paths, rewritten by `transform` (made absolute for
  ///     a job script that runs elsewhere).
  public func commandLine(
    excluding names: Set<String>, paths: Set<String> = [], transform: (String) -> String = { $0 }
  ) -> [String] {
    var result: [String] = []
    for entry in given {
      guard let spec = entry.spec else {
        result += entry.tokens
        continue
      }
      if names.contains(spec) { continue }
      guard paths.contains(spec) else {
        result += entry.tokens
        continue
      }
      if entry.tokens.count == 1, configuration.spec(named: spec)?.kind == .positional {
        result.append(transform(entry.tokens[0]))
      } else if entry.tokens.count == 2 {
        result += [entry.tokens[0], transform(entry.tokens[1])]
      } else if let token = entry.tokens.first, token.hasPrefix("--"), let equals = token.firstIndex(of: "=") {
        result.append(String(token[...equals]) + transform(String(token[token.index(after: equals)...])))
      } else {
        result += entry.tokens
      }
    }
    return result
  }

  /// Whether the user gave this positional or option (defaults do not count).
  public func isPresent(_ name: String) -> Bool {
    let spec = declared(name)
    return spec.kind == .flag ? flags[name] != nil : values[name] != nil
  }

  /// The value of a positional or option: the last one given, else the default, else `nil`.
  public func optionalString(_ name: String) -> String? {
    let spec = declared(name)
    return values[name]?.last ?? spec.defaultValue
  }

  /// The value of a positional or option, or its default.
  /// - Throws: `Missing expected argument '--name <value>'` when absent with no default.
  public func string(_ name: String) throws(UsageError) -> String {
    guard let value = optionalString(name) else { throw .missingArgument(declared(name).synopsis) }
    return value
  }

  /// Every value of a repeating option or positional (or `[default]` when absent and a default exists).
  public func strings(_ name: String) -> [String] {
    let spec = declared(name)
    return values[name] ?? spec.defaultValue.map { [$0] } ?? []
  }

  /// A flag's value: `--name` true, `--no-name` false, otherwise the declared default.
  public func flag(_ name: String) -> Bool {
    let spec = declared(name)
    // `--json-file PATH` is `--json` written elsewhere (see `ArgumentSpec.jsonFile`).
    if name == ArgumentSpec.json.name, values[ArgumentSpec.jsonFile.name] != nil { return true }
    return flags[name] ?? spec.defaultFlagValue
  }

  // MARK: Converted values

  /// The value converted by `convert`, or `nil` when absent with no default.
  /// - Throws: `The value 'v' is invalid for '--name <value>': <reason>` when `convert` fails.
  public func optionalValue<T>(
    _ name: String, _ convert: (String) throws(InvalidArgumentValue) -> T
  ) throws(UsageError) -> T? {
    guard let raw = optionalString(name) else { return nil }
    return try converted(raw, of: declared(name), convert)
  }

  /// The value converted by `convert`.
  /// - Throws: `Missing expected argument` when absent with no default; `The value … is invalid` when
  ///   `convert` fails.
  public func value<T>(
    _ name: String, _ convert: (String) throws(InvalidArgumentValue) -> T
  ) throws(UsageError) -> T {
    try converted(try string(name), of: declared(name), convert)
  }

  /// Every value of a repeating option or positional, each converted by `convert`.
  public func values<T>(
    _ name: String, _ convert: (String) throws(InvalidArgumentValue) -> T
  ) throws(UsageError) -> [T] {
    let spec = declared(name)
    var result: [T] = []
    for raw in strings(name) { result.append(try converted(raw, of: spec, convert)) }
    return result
  }

  private func converted<T>(
    _ raw: String, of spec: ArgumentSpec, _ convert: (String) throws(InvalidArgumentValue) -> T
  ) throws(UsageError) -> T {
    do {
      return try convert(raw)
    } catch {
      throw .invalidValue(raw, argument: spec.synopsis, reason: error.reason, allowedValues: spec.allowedValues)
    }
  }

  // MARK: Typed conveniences

  /// An integer option or positional, optionally limited to `range`.
  public func int(_ name: String, in range: ClosedRange<Int>? = nil) throws(UsageError) -> Int {
    try value(name) { (raw) throws(InvalidArgumentValue) in try ArgumentValues.int(raw, in: range) }
  }

  /// An integer, or `nil` when absent with no default.
  public func optionalInt(_ name: String, in range: ClosedRange<Int>? = nil) throws(UsageError) -> Int? {
    try optionalValue(name) { (raw) throws(InvalidArgumentValue) in try ArgumentValues.int(raw, in: range) }
  }

  /// A finite floating-point option, optionally limited to `range`.
  public func double(_ name: String, in range: ClosedRange<Double>? = nil) throws(UsageError) -> Double {
    try value(name) { (raw) throws(InvalidArgumentValue) in try ArgumentValues.double(raw, in: range) }
  }

  /// A finite floating-point option, or `nil` when absent with no default.
  public func optionalDouble(
    _ name: String, in range: ClosedRange<Double>? = nil
  ) throws(UsageError) -> Double? {
    try optionalValue(name) { (raw) throws(InvalidArgumentValue) in try ArgumentValues.double(raw, in: range) }
  }

  /// A byte size (`5GB`, `4.5GB`, `80GiB`, `512MB`, `1048576`) in bytes; see `ArgumentValues.byteCount`.
  public func byteCount(_ name: String, in range: ClosedRange<Int>? = nil) throws(UsageError) -> Int {
    try value(name) { (raw) throws(InvalidArgumentValue) in try ArgumentValues.byteCount(raw, in: range) }
  }

  /// A byte size in bytes, or `nil` when absent with no default.
  public func optionalByteCount(_ name: String, in range: ClosedRange<Int>? = nil) throws(UsageError) -> Int? {
    try optionalValue(name) { (raw) throws(InvalidArgumentValue) in
      try ArgumentValues.byteCount(raw, in: range)
    }
  }

  /// An option declared with `values:` converted to a `String`-backed enum (raw values = allowed values).
  public func choice<T: RawRepresentable>(_ name: String, as type: T.Type) throws(UsageError) -> T
  where T.RawValue == String {
    try value(name) { (raw) throws(InvalidArgumentValue) in try ArgumentValues.choice(raw, as: type) }
  }

  /// Like `choice(_:as:)`, or `nil` when absent with no default.
  public func optionalChoice<T: RawRepresentable>(_ name: String, as type: T.Type) throws(UsageError) -> T?
  where T.RawValue == String {
    try optionalValue(name) { (raw) throws(InvalidArgumentValue) in try ArgumentValues.choice(raw, as: type) }
  }

  /// Every value of a repeating option split at the first `separator` into (key, value), e.g.
  /// `--capacity gpu0:80GiB` with `":"` or `--keep 'mlp.*=bf16'` with `"="`. Use `values(_:_:)` with
  /// `ArgumentValues.pair(_:separator:value:)` to convert the value part as well.
  /// - Throws: `The value 'x' is invalid for '--name <v>': expected KEY:VALUE` when a side is missing.
  public func pairs(_ name: String, separator: Character) throws(UsageError) -> [KeyValuePair<String>] {
    try values(name) { (raw) throws(InvalidArgumentValue) in
      try ArgumentValues.pair(raw, separator: separator) { (text) throws(InvalidArgumentValue) in text }
    }
  }
}

/// A `KEY<separator>VALUE` command-line value, such as `gpu0:80GiB` or `*.experts.*=int4`.
public struct KeyValuePair<Value>: Sendable where Value: Sendable {
  /// The text before the separator (never empty).
  public var key: String
  /// The converted text after the separator.
  public var value: Value

  public init(key: String, value: Value) {
    self.key = key
    self.value = value
  }
}

extension KeyValuePair: Equatable where Value: Equatable {}
