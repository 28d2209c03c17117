import JSON

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
    var total: Int?
    var metadata = JSONObject()
    if let meta = root["metadata"], !meta.isNull {
      guard let object = meta.objectValue else {
        throw CheckpointError.invalidIndex(path: path, reason: "\"metadata\" is \(meta.kindDescription), expected an object")
      }
      metadata = object
      if let size = object["total_size"], !size.isNull {
        // transformers writes total_size as an integer; some tools write a float with a zero fraction.
        if let exact = size.intValue {
          total = exact
        } else if let number = size.numberValue?.double, number >= 0, number == number.rounded(), number < 9e18 {
          total = Int(number)
        } else {
          throw CheckpointError.invalidIndex(path: path, reason: "metadata.total_size is not a byte count")
        }
      }
    }
    self.init(weightMap: entries, totalByteCount: total, metadata: metadata)
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
    let document: JSONValue = .object(
      JSONObject(members: [
        ("metadata", .object(JSONObject(members: metadataMembers.map { ($0.key, $0.value) }) ?? JSONObject())),
        ("weight_map", .object(JSONObject(members: sortedMap) ?? JSONObject())),
      ]) ?? JSONObject())
    return JSONWriter(pretty: true).bytes(document) + [0x0A]
  }
}
