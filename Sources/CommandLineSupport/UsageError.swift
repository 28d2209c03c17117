/// A command-line usage error. Printed as `Error: <description>` plus the usage line; exit status 64.
///
/// The wording of each case is swift-argument-parser's, so users see the messages they know. `argument` values
/// are synopses such as `--kind <kind>` or `<input>`.
public enum UsageError: Error, Sendable, Equatable, CustomStringConvertible {
  /// An option nobody declared; `suggestion` is a declared long name within edit distance 2.
  case unknownOption(String, suggestion: String?)
  /// An option that needs a value came last or was followed by another option.
  case missingValue(argument: String)
  /// A value that failed to convert or is not among the allowed values.
  case invalidValue(String, argument: String, reason: String?, allowedValues: [String])
  /// `--flag=value` for a flag that takes no value.
  case flagTakesNoValue(flag: String, value: String)
  /// Positional arguments left over after every declared positional was filled.
  case unexpectedArguments([String])
  /// A required positional argument or option that was not given.
  case missingArgument(String)
  /// A subcommand name the tool does not have; `suggestion` is a close existing name.
  case unknownSubcommand(String, suggestion: String?)
  /// A rule a command checks itself (argument-parser's `ValidationError`), e.g. two options that conflict.
  case invalid(String)

  public var description: String {
    switch self {
    case .unknownOption(let name, let suggestion):
      return "Unknown option '\(name)'" + (suggestion.map { ". Did you mean '\($0)'?" } ?? "")
    case .missingValue(let argument):
      return "Missing value for '\(argument)'"
    case .invalidValue(let value, let argument, let reason, let allowedValues):
      let base = "The value '\(value)' is invalid for '\(argument)'"
      if let reason { return base + ": " + reason }
      return base + UsageError.formattedValueList(allowedValues)
    case .flagTakesNoValue(let flag, let value):
      return "The option '\(flag)' does not take any value, but '\(value)' was specified."
    case .unexpectedArguments(let values):
      if values.count == 1 { return "Unexpected argument '\(values[0])'" }
      return "\(values.count) unexpected arguments: '\(values.joined(separator: "', '"))'"
    case .missingArgument(let argument):
      return "Missing expected argument '\(argument)'"
    case .unknownSubcommand(let name, let suggestion):
      return "Unexpected argument '\(name)'" + (suggestion.map { ". Did you mean '\($0)'?" } ?? "")
    case .invalid(let message):
      return message
    }
  }

  /// `. Please provide one of 'a', 'b' or 'c'.` (argument-parser's list; a bullet list from six values).
  static func formattedValueList(_ values: [String]) -> String {
    if values.isEmpty { return "" }
    if values.count >= 6 {
      return ". Please provide one of the following:\n" + values.map { "  - \($0)" }.joined(separator: "\n")
    }
    let quoted = values.map { "'\($0)'" }
    if quoted.count <= 2 { return ". Please provide one of \(quoted.joined(separator: " and "))." }
    return ". Please provide one of \(quoted.dropLast().joined(separator: ", ")) or \(quoted[quoted.count - 1])."
  }

  /// The synopsis of the argument the error is about, used to print argument-parser's `Help:` line.
  var argumentSynopsis: String? {
    switch self {
    case .missingValue(let argument), .missingArgument(let argument): return argument
    case .invalidValue(_, let argument, _, _): return argument
    default: return nil
    }
  }
}
