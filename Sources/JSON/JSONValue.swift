/// A JSON value as parsed by `JSONParser` or built in code for `JSONWriter`.
///
/// Objects keep their members in document order (`JSONObject`); numbers keep their exact source text
/// (`JSONNumber`), so nothing is lost or rounded between parsing and re-serializing.
///
/// Not declared `indirect`: arrays and objects already store their elements out of line, and avoiding a
/// box per value keeps parsing a 92k-tensor header allocation-light.
public enum JSONValue: Sendable, Equatable {
  case null
  case bool(Bool)
  case number(JSONNumber)
  case string(String)
  case array([JSONValue])
  case object(JSONObject)

  /// The value's JSON type, for error messages (`"a string"`, `"an object"`, ...).
  public var kindDescription: String {
    switch self {
    case .null: "null"
    case .bool: "a boolean"
    case .number(let number): number.isInteger ? "an integer" : "a number"
    case .string: "a string"
    case .array: "an array"
    case .object: "an object"
    }
  }

  // MARK: - Convenience accessors (return nil on a type mismatch)

  /// The member `key` when this is an object, else `nil`.
  public subscript(key: String) -> JSONValue? {
    if case .object(let object) = self { return object[key] }
    return nil
  }

  /// The element at `index` when this is an array and `index` is in range, else `nil`.
  public subscript(index: Int) -> JSONValue? {
    if case .array(let array) = self, array.indices.contains(index) { return array[index] }
    return nil
  }

  /// True for `null`.
  public var isNull: Bool {
    if case .null = self { return true }
    return false
  }

  /// The string, when this is a string.
  public var stringValue: String? {
    if case .string(let string) = self { return string }
    return nil
  }

  /// The Boolean, when this is `true` or `false`.
  public var boolValue: Bool? {
    if case .bool(let bool) = self { return bool }
    return nil
  }

  /// The number, when this is a number.
  public var numberValue: JSONNumber? {
    if case .number(let number) = self { return number }
    return nil
  }

  /// The integer, when this is a number written as an integer (no fraction or exponent) that fits `Int`.
  /// `8.0` and `1e3` give `nil`.
  public var intValue: Int? { numberValue?.int }

  /// The number as a `Double` (nearest value), when this is a number.
  public var doubleValue: Double? { numberValue?.double }

  /// The elements, when this is an array.
  public var arrayValue: [JSONValue]? {
    if case .array(let array) = self { return array }
    return nil
  }

  /// The object, when this is an object.
  public var objectValue: JSONObject? {
    if case .object(let object) = self { return object }
    return nil
  }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
  ExpressibleByDictionaryLiteral
{
  public init(nilLiteral: ()) { self = .null }
  public init(booleanLiteral value: Bool) { self = .bool(value) }
  public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
  /// Float literals must be finite (they always are in source code).
  public init(floatLiteral value: Double) { self = JSONNumber(value).map { .number($0) } ?? .null }
  public init(stringLiteral value: String) { self = .string(value) }
  public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
  /// Later duplicates replace earlier ones, keeping the first position.
  public init(dictionaryLiteral elements: (String, JSONValue)...) {
    var object = JSONObject()
    for (key, value) in elements { object[key] = value }
    self = .object(object)
  }
}

extension JSONValue {
  /// `.object(JSONObject(uniqueMembers: members))`: an object a writer builds from its own keys.
  public static func object(members: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(uniqueMembers: members)) }
}
