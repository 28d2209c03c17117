/// A JSON object: members in document order plus constant-time lookup by key.
///
/// Keys are unique (the parser rejects duplicates; assignment through the subscript replaces a member in
/// place). Equality is ordered: same members in the same order.
public struct JSONObject: Sendable, Equatable, Sequence {
  public typealias Member = (key: String, value: JSONValue)

  /// The members in document (or insertion) order.
  public private(set) var members: [Member] = []

  /// Key -> position in `members`. Only built past `indexThreshold` members: small objects (a safetensors
  /// tensor entry has three keys) are searched linearly, which is faster than hashing and saves a
  /// dictionary allocation per object.
  private var index: [String: Int]? = nil
  static let indexThreshold = 8

  /// An empty object.
  public init() {}

  /// An object from `members`, or `nil` if a key repeats.
  public init?(members: [(String, JSONValue)]) {
    for (key, value) in members {
      guard self.position(of: key) == nil else { return nil }
      append(key: key, value: value)
    }
  }

  /// An object of `members`, in order, for a document Smelt writes itself.
  ///
  /// Writers' keys are literals or names unique by construction (one checkpoint's tensor names, a dictionary's
  /// keys), so a repeated key is a bug in the writer, not bad input: it stops the program naming the key rather
  /// than write a wrong document (the `JSONObject(members:) ?? JSONObject()` this replaced wrote `{}`). Input
  /// from outside goes through the parser, which rejects duplicates with an error, or `init?(members:)`.
  public init(uniqueMembers members: [(String, JSONValue)]) {
    guard let object = JSONObject(members: members) else {
      let keys = members.map(\.0)
      let repeated = keys.enumerated().first { i, key in keys[..<i].contains(key) }?.element ?? "?"
      fatalError("JSON writer bug: the key '\(repeated)' appears twice in one object")
    }
    self = object
  }

  /// The number of members.
  public var count: Int { members.count }

  /// True when there are no members.
  public var isEmpty: Bool { members.isEmpty }

  /// The keys in order.
  public var keys: [String] { members.map(\.key) }

  /// The value for `key`, or `nil`. Setting `nil` removes the member; setting a value replaces the
  /// existing member in place or appends a new one.
  public subscript(key: String) -> JSONValue? {
    get {
      guard let position = position(of: key) else { return nil }
      return members[position].value
    }
    set {
      if let position = position(of: key) {
        if let newValue {
          members[position].value = newValue
        } else {
          members.remove(at: position)
          rebuildIndex()
        }
      } else if let newValue {
        append(key: key, value: newValue)
      }
    }
  }

  public func makeIterator() -> IndexingIterator<[Member]> { members.makeIterator() }

  public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
    guard lhs.members.count == rhs.members.count else { return false }
    for (l, r) in zip(lhs.members, rhs.members) where l.key != r.key || l.value != r.value { return false }
    return true
  }

  /// Position of `key` in `members`.
  func position(of key: String) -> Int? {
    if let index { return index[key] }
    return members.firstIndex { $0.key == key }
  }

  /// Appends a member whose key the caller has checked is new.
  mutating func append(key: String, value: JSONValue) {
    members.append((key, value))
    if index != nil {
      index?[key] = members.count - 1
    } else if members.count > JSONObject.indexThreshold {
      rebuildIndex()
    }
  }

  /// Appends without updating the index; the parser calls `buildIndex()` once the object is complete,
  /// which sizes the dictionary once instead of growing it member by member.
  mutating func appendDeferringIndex(key: String, value: JSONValue) {
    members.append((key, value))
  }

  /// Builds the index after `appendDeferringIndex` calls; returns the position of the first member whose
  /// key repeats an earlier one (and leaves the object unusable for lookups), or `nil`.
  mutating func buildIndex() -> Int? {
    guard members.count > JSONObject.indexThreshold else {
      index = nil
      return nil
    }
    var index = [String: Int](minimumCapacity: members.count)
    // Index-based access copies only the key, not the member's value (fewer retains on big objects).
    for position in members.indices where index.updateValue(position, forKey: members[position].key) != nil {
      return position
    }
    self.index = index
    return nil
  }

  private mutating func rebuildIndex() {
    guard members.count > JSONObject.indexThreshold else {
      index = nil
      return
    }
    var index = [String: Int](minimumCapacity: members.count)
    for (position, member) in members.enumerated() { index[member.key] = position }
    self.index = index
  }
}
