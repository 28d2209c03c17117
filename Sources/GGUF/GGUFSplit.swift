/// Multi-file GGUF output the way `llama-gguf-split --split-max-size` writes it and llama.cpp's loader reads
/// it: files `<prefix>-00001-of-0000N.gguf`; the first holds all metadata, every file holds `split.no` (u16,
/// 0-based), `split.tensors.count` (i32, tensors in the whole set) and `split.count` (u16), in that order at
/// the end of its metadata.
public enum GGUFSplit {
  public static let numberKey = "split.no"
  public static let countKey = "split.count"
  public static let tensorCountKey = "split.tensors.count"
  /// gguf-split sums tensor sizes padded to the default alignment when it decides where to cut.
  static let sizingAlignment = 32

  /// `llama_split_path`: `"%s-%05d-of-%05d.gguf"` with a 1-based index.
  public static func shardPath(prefix: String, index: Int, count: Int) -> String {
    "\(prefix)-\(fiveDigits(index + 1))-of-\(fiveDigits(count)).gguf"
  }

  /// The prefix of an output path: `model.gguf` → `model` (a path without the extension is kept whole).
  public static func prefix(ofOutput path: String) -> String {
    path.hasSuffix(".gguf") ? String(path.dropLast(5)) : path
  }

  /// Splits one planned file into shards of at most `maxShardBytes` of tensor data each (gguf-split's rule:
  /// start a new shard when the padded tensor bytes would exceed the limit). A tensor larger than the limit
  /// gets a shard of its own (gguf-split would stop with "one of splits have 0 tensors").
  public static func plan(metadata: GGUFMetadata, tensors: [GGUFTensorInfo], maxShardBytes: Int) throws(GGUFError) -> [GGUFLayout] {
    var groups: [[GGUFTensorInfo]] = [[]]
    var current = 0
    for tensor in tensors {
      let size = GGUFParser.padded(tensor.byteCount, to: sizingAlignment)
      if current + size > maxShardBytes, !groups[groups.count - 1].isEmpty {
        groups.append([])
        current = 0
      }
      groups[groups.count - 1].append(tensor)
      current += size
    }
    guard groups.count <= Int(UInt16.max) else {
      throw GGUFError(.badSplit("\(groups.count) shards exceed the 65535 that split.count can hold; raise --max-shard-size"))
    }
    return try groups.enumerated().map { (index, group) throws(GGUFError) in
      var shardMetadata = index == 0 ? metadata : GGUFMetadata()
      shardMetadata.set(numberKey, .uint16(UInt16(index)))
      shardMetadata.set(tensorCountKey, .int32(Int32(tensors.count)))
      shardMetadata.set(countKey, .uint16(UInt16(groups.count)))
      return try GGUFLayout(metadata: shardMetadata, tensors: group)
    }
  }

  /// The paths of a split set from any one of its files' paths and its `split.no` / `split.count`
  /// (`llama_split_prefix` + `llama_split_path`), or nil if the name does not follow the pattern.
  public static func shardPaths(of path: String, number: Int, count: Int) -> [String]? {
    let suffix = "-\(fiveDigits(number + 1))-of-\(fiveDigits(count)).gguf"
    guard path.hasSuffix(suffix), path.count > suffix.count else { return nil }
    let prefix = String(path.dropLast(suffix.count))
    return (0..<count).map { shardPath(prefix: prefix, index: $0, count: count) }
  }

  private static func fiveDigits(_ value: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
  }
}
