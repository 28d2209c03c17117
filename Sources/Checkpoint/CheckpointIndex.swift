import JSON
import TensorCore

/// `model.safetensors.index.json`: which file holds each tensor, and the total tensor bytes.
///
/// Readers go by `weight_map`, never by file names (DeepSeek uses 6-digit totals, gpt-oss is 0-based).
public struct CheckpointIndex: Sendable {
  /// Tensor name → file name relative to the checkpoint directory, in the index's order.
  public var weightMap: [(tensor: String, file: String)]
  /// `metadata.total_size`: the sum of tensor data bytes (not file sizes), if present.
  public var totalByteCount: Int?
  /// The other `metadata` keys, kept for round trips.
  public var metadata: JSONObject

  /// The distinct files named by the index, in first-mention order.
  public var files: [String] {
    var seen = Set<String>()
    var result: [String] = []
    var previous: String?
    for (_, file) in weightMap where file != previous {
      // Consecutive entries usually share a file: skip the hash for those.
      previous = file
      if seen.insert(file).inserted { result.append(file) }
    }
    return result
  }

  public init(weightMap: [(tensor: String, file: String)], totalByteCount: Int?, metadata: JSONObject = JSONObject()) {
    self.weightMap = weightMap
    self.totalByteCount = totalByteCount
    self.metadata = metadata
  }

  /// Parses and validates an index file's bytes.
  ///
  /// Rejects (like huggingface_hub) file names that are absolute or contain a `..` component, and names
  /// that do not end in `.safetensors`. A missing `total_size` is tolerated (DeepSeek's own scripts drop it).
  public init(json bytes: [UInt8], path: String) throws {
    let fast: CheckpointIndex? = bytes.withUnsafeBytes { raw in
      guard let decoded = IndexDecoder.decode(raw) else { return nil }
      var entries: [(tensor: String, file: String)] = []
      entries.reserveCapacity(decoded.entries.count)
      var names = NameIndex(capacity: decoded.entries.count)
      for entry in decoded.entries {
        let tensor = decoded.withKey(entry, in: raw) { String(decoding: $0, as: UTF8.self) }
        entries.append((tensor, decoded.files[Int(entry.file)]))
        // A repeated key: the strict parser below reports it.
        if names.insert(tensor, position: entries.count - 1, nameAt: { entries[$0].tensor }) != nil { return nil }
      }
      return CheckpointIndex(weightMap: entries, totalByteCount: decoded.totalByteCount, metadata: decoded.metadata)
    }
    if let fast {
      self = fast
    } else {
      try self.init(strictJSON: bytes, path: path)
    }
  }

  /// The reference parse: the whole document as a JSON tree, then each rule in order. Defines the errors;
  /// `IndexDecoder` is its fast path for well-formed indexes.
  init(strictJSON bytes: [UInt8], path: String) throws {
    let value: JSONValue
    do { value = try bytes.withUnsafeBytes { try JSONParser.parse($0) } } catch {
      throw CheckpointError.invalidIndex(path: path, reason: "\(error)")
    }
    guard let root = value.objectValue else {
      throw CheckpointError.invalidIndex(path: path, reason: "expected a JSON object, found \(value.kindDescription)")
    }
    guard let map = root["weight_map"]?.objectValue else {
      throw CheckpointError.invalidIndex(path: path, reason: "missing \"weight_map\" object")
    }
    var entries: [(tensor: String, file: String)] = []
    entries.reserveCapacity(map.count)
    // A few hundred distinct files serve ~100k entries: check each distinct name once.
    var accepted = Set<String>()
    for (tensor, fileValue) in map {
      guard let file = fileValue.stringValue else {
        throw CheckpointError.invalidIndex(path: path, reason: "weight_map entry '\(tensor)' is \(fileValue.kindDescription), expected a file name")
      }
      if accepted.contains(file) {
        entries.append((tensor, file))
        continue
      }
      guard CheckpointIndex.isSafeRelativePath(file) else {
        throw CheckpointError.unsafeIndexPath(index: path, tensor: tensor, file: file)
      }
      guard file.hasSuffix(".safetensors") else {
        throw CheckpointError.invalidIndex(path: path, reason: "weight_map entry '\(tensor)' names '\(file)', which is not a .safetensors file")
      }
      accepted.insert(file)
      entries.append((tensor, file))
    }
    let (total, metadata) = try CheckpointIndex.metadata(root["metadata"], path: path)
    self.init(weightMap: entries, totalByteCount: total, metadata: metadata)
  }

  /// The `metadata` member: `total_size` and the rest.
  static func metadata(_ value: JSONValue?, path: String) throws -> (totalByteCount: Int?, metadata: JSONObject) {
    guard let value, !value.isNull else { return (nil, JSONObject()) }
    guard let object = value.objectValue else {
      throw CheckpointError.invalidIndex(path: path, reason: "\"metadata\" is \(value.kindDescription), expected an object")
    }
    guard let size = object["total_size"], !size.isNull else { return (nil, object) }
    // transformers writes total_size as an integer; some tools write a float with a zero fraction.
    if let exact = size.intValue { return (exact, object) }
    if let number = size.numberValue?.double, number >= 0, number == number.rounded(), number < 9e18 {
      return (Int(number), object)
    }
    throw CheckpointError.invalidIndex(path: path, reason: "metadata.total_size is not a byte count")
  }

  /// True for a plain relative path that stays inside its directory.
  public static func isSafeRelativePath(_ file: String) -> Bool {
    if file.isEmpty || file.hasPrefix("/") || file.hasPrefix("\\") || file.contains("\0") { return false }
    if file.count >= 2, file.dropFirst().first == ":" { return false }  // Windows drive letter
    let components = file.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "/" || $0 == "\\" })
    return !components.contains { $0 == ".." || $0.isEmpty }
  }

  /// The index as JSON, as transformers writes it: `metadata` then `weight_map`, sorted keys, 2-space indent.
  public func jsonBytes() -> [UInt8] {
    var metadataMembers = metadata.members.filter { $0.key != "total_size" }
    if let totalByteCount { metadataMembers.append(("total_size", .number(JSONNumber(totalByteCount)))) }
    metadataMembers.sort { $0.key < $1.key }
    let sortedMap = weightMap.sorted { $0.tensor < $1.tensor }.map { ($0.tensor, JSONValue.string($0.file)) }
    let document: JSONValue = .object(members: [
      ("metadata", .object(members: metadataMembers.map { ($0.key, $0.value) })),
      ("weight_map", .object(members: sortedMap)),
    ])
    return JSONWriter(pretty: true).bytes(document) + [0x0A]
  }
}

/// The fast path of index parsing: one pass over the bytes, recording where each `weight_map` key lies
/// instead of making a `String` of it, and each file name once.
///
/// Accepts only indexes it fully understands (a `weight_map` object of strings naming safe `.safetensors`
/// files, an optional `metadata` object, other top-level members of any JSON value, distinct top-level
/// keys) and returns `nil` for anything else; `CheckpointIndex(strictJSON:path:)` then names the problem.
/// It cannot see repeated `weight_map` keys (it keeps no key set): callers detect them when they resolve
/// the keys, and take the strict path then.
struct IndexDecoder {
  /// One `weight_map` member: where its key's bytes are, and which of `files` it names.
  struct Entry {
    /// Offset of the key's bytes in the index text, or (with `decodedFlag` set) in `decodedKeys`.
    var keyStart: UInt32
    var keyCount: UInt32
    var file: UInt32
  }

  static let decodedFlag: UInt32 = 1 << 31

  /// The distinct files, in first-mention order.
  var files: [String] = []
  var entries: [Entry] = []
  /// The decoded bytes of keys that contain escapes.
  var decodedKeys: [UInt8] = []
  var totalByteCount: Int?
  var metadata = JSONObject()

  struct Unhandled: Error {}

  init() {}

  /// A strictly parsed index in the decoder's form (every key in `decodedKeys`).
  init(_ index: CheckpointIndex) {
    files = index.files
    let numbers = Dictionary(uniqueKeysWithValues: files.enumerated().map { ($1, $0) })
    entries.reserveCapacity(index.weightMap.count)
    for (tensor, file) in index.weightMap {
      let start = UInt32(decodedKeys.count) | IndexDecoder.decodedFlag
      decodedKeys.append(contentsOf: tensor.utf8)
      entries.append(Entry(keyStart: start, keyCount: UInt32(tensor.utf8.count), file: UInt32(numbers[file]!)))
    }
    totalByteCount = index.totalByteCount
    metadata = index.metadata
  }

  /// Decodes the index text `bytes`, or `nil` when the strict parser must.
  static func decode(_ bytes: UnsafeRawBufferPointer) -> IndexDecoder? {
    // Offsets are kept in 31 bits.
    guard bytes.count < Int(decodedFlag) else { return nil }
    var decoder = IndexDecoder()
    var scanner = JSONScanner(bytes)
    do {
      try decoder.decodeDocument(&scanner)
    } catch {
      return nil
    }
    return decoder
  }

  /// Calls `body` with the key bytes of `entry`; `bytes` is the index text given to `decode`.
  func withKey<R>(_ entry: Entry, in bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if entry.keyStart & IndexDecoder.decodedFlag != 0 {
      let start = Int(entry.keyStart & ~IndexDecoder.decodedFlag)
      return decodedKeys.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start..<(start + Int(entry.keyCount))])) }
    }
    let start = Int(entry.keyStart)
    return body(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + Int(entry.keyCount))]))
  }

  mutating func decodeDocument(_ scanner: inout JSONScanner) throws {
    if scanner.startsWithByteOrderMark { throw Unhandled() }
    scanner.skipWhitespace()
    guard scanner.consume(UInt8(ascii: "{")) else { throw Unhandled() }
    var keys: Set<String> = []
    scanner.skipWhitespace()
    if !scanner.consume(UInt8(ascii: "}")) {
      while true {
        guard scanner.current == UInt8(ascii: "\"") else { throw Unhandled() }
        let key = try scanner.readString()
        guard keys.insert(key).inserted else { throw Unhandled() }
        scanner.skipWhitespace()
        guard scanner.consume(UInt8(ascii: ":")) else { throw Unhandled() }
        scanner.skipWhitespace()
        switch key {
        case "weight_map": try decodeWeightMap(&scanner)
        case "metadata":
          let value = try JSONParser.parseValue(from: &scanner, maxDepth: JSONParser.defaultMaxDepth - 1)
          (totalByteCount, metadata) = try CheckpointIndex.metadata(value, path: "")
        default: _ = try JSONParser.parseValue(from: &scanner, maxDepth: JSONParser.defaultMaxDepth - 1)
        }
        scanner.skipWhitespace()
        if scanner.consume(UInt8(ascii: ",")) {
          scanner.skipWhitespace()
          continue
        }
        guard scanner.consume(UInt8(ascii: "}")) else { throw Unhandled() }
        break
      }
    }
    scanner.skipWhitespace()
    guard scanner.isAtEnd, keys.contains("weight_map") else { throw Unhandled() }
  }

  mutating func decodeWeightMap(_ scanner: inout JSONScanner) throws {
    guard scanner.consume(UInt8(ascii: "{")) else { throw Unhandled() }
    entries.reserveCapacity(scanner.count / 96)
    var fileNumbers: [String: Int] = [:]
    var lastFile = (start: 0, count: -1, number: 0)
    scanner.skipWhitespace()
    if scanner.consume(UInt8(ascii: "}")) { return }
    let text = scanner.bytes
    while true {
      guard scanner.current == UInt8(ascii: "\"") else { throw Unhandled() }
      let key = try scanner.readStringToken()
      var keyStart = UInt32(key.contentRange.lowerBound)
      var keyCount = UInt32(key.contentRange.count)
      if key.hasEscapes {
        scanner.withBytes(of: key) { decoded in
          keyStart = UInt32(decodedKeys.count) | IndexDecoder.decodedFlag
          keyCount = UInt32(decoded.count)
          decodedKeys.append(contentsOf: decoded)
        }
      }
      scanner.skipWhitespace()
      guard scanner.consume(UInt8(ascii: ":")) else { throw Unhandled() }
      scanner.skipWhitespace()
      guard scanner.current == UInt8(ascii: "\"") else { throw Unhandled() }
      let file = try scanner.readStringToken()
      // Consecutive entries usually name the same file: compare bytes before hashing.
      let number: Int
      if !file.hasEscapes, file.contentRange.count == lastFile.count,
        NameIndex.bytesEqual(
          UnsafeRawBufferPointer(rebasing: text[file.contentRange]),
          UnsafeRawBufferPointer(rebasing: text[lastFile.start..<(lastFile.start + lastFile.count)]))
      {
        number = lastFile.number
      } else {
        let name = scanner.string(of: file)
        if let known = fileNumbers[name] {
          number = known
        } else {
          guard CheckpointIndex.isSafeRelativePath(name), name.hasSuffix(".safetensors") else { throw Unhandled() }
          number = files.count
          fileNumbers[name] = number
          files.append(name)
        }
        if !file.hasEscapes { lastFile = (file.contentRange.lowerBound, file.contentRange.count, number) }
      }
      entries.append(Entry(keyStart: keyStart, keyCount: keyCount, file: UInt32(number)))
      scanner.skipWhitespace()
      if scanner.consume(UInt8(ascii: ",")) {
        scanner.skipWhitespace()
        continue
      }
      guard scanner.consume(UInt8(ascii: "}")) else { throw Unhandled() }
      return
    }
  }
}
