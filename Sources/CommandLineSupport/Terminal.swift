import SystemIO

/// The process environment as far as the command line cares: terminal width and environment variables.
/// Kept apart from the pure parser and formatter, which take the width as an argument.
public enum Terminal {
  /// The width to wrap help to: `$COLUMNS` when it is a positive integer, else 80 (argument-parser's rule
  /// when no terminal size is known).
  public static var columns: Int {
    columns(fromEnvironmentValue: environmentValue("COLUMNS"))
  }

  /// `value` as a column count when it is a positive integer below 10,000, else 80.
  public static func columns(fromEnvironmentValue value: String?) -> Int {
    guard let value, let columns = Int(value), columns > 0, columns < 10_000 else { return 80 }
    return columns
  }

  /// The environment variable `name`, or `nil`.
  public static func environmentValue(_ name: String) -> String? {
    ProcessEnvironment.current(name)
  }
}
