/// One target of a shard plan: a GPU, a CPU's RAM, a node. Its name becomes the output directory.
public struct ShardDevice: Sendable, Hashable {
  /// The name (`gpu0`, `cpu`, `0`): letters, digits, `_`, `-`, `.`; it names `OUT/<name>/`.
  public var name: String
  /// How many bytes of tensors it can hold, or `nil` for unlimited.
  public var capacityByteCount: Int?

  public init(name: String, capacityByteCount: Int? = nil) {
    self.name = name
    self.capacityByteCount = capacityByteCount
  }

  /// Parses `NAME` or `NAME:CAPACITY` (`gpu0:80GB`, `cpu:512GiB`).
  public init(parsing text: String) throws(ShardingError) {
    let pieces = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
    let name = String(pieces[0])
    guard ShardDevice.isValidName(name) else {
      throw .invalidDevice(text: text, reason: "the name must be non-empty and use only letters, digits, '_', '-' and '.' (it names a directory)")
    }
    var capacity: Int?
    if pieces.count == 2 {
      do { capacity = try ByteSize.parse(String(pieces[1])) } catch {
        throw .invalidDevice(text: text, reason: "capacity '\(pieces[1])' is not a byte size")
      }
    }
    self.init(name: name, capacityByteCount: capacity)
  }

  /// `count` devices named `0`, `1`, ... (the rank), each with `capacity`.
  public static func homogeneous(count: Int, capacityByteCount: Int? = nil) throws(ShardingError) -> [ShardDevice] {
    guard count >= 1 else { throw .noDevices }
    return (0..<count).map { ShardDevice(name: "\($0)", capacityByteCount: capacityByteCount) }
  }

  /// True for names that are safe as a single path component.
  public static func isValidName(_ name: String) -> Bool {
    !name.isEmpty && name != "." && name != ".." && name.utf8.count <= 64
      && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0)) }
  }
}
