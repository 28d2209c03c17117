/// How output tensors are split into files by size, the way `huggingface_hub` does it.
public enum OutputSharding {
  /// The default `--max-shard-size`: 5 GB, decimal, as transformers 4.x and huggingface_hub use.
  public static let defaultMaxShardByteCount = 5_000_000_000

  /// Assigns items (tensor groups that must stay together) to files greedily, in order.
  ///
  /// A file is closed when the next item would push its tensor bytes past `maxByteCount`; an item larger
  /// than the limit gets a file of its own. Returns, for each file, the indices of its items.
  public static func assign(itemByteCounts: [Int], maxByteCount: Int) -> [[Int]] {
    var files: [[Int]] = []
    var current: [Int] = []
    var currentBytes = 0
    for (i, bytes) in itemByteCounts.enumerated() {
      if bytes > maxByteCount {
        files.append([i])
        continue
      }
      if !current.isEmpty && currentBytes + bytes > maxByteCount {
        files.append(current)
        current = []
        currentBytes = 0
      }
      current.append(i)
      currentBytes += bytes
    }
    if !current.isEmpty || files.isEmpty { files.append(current) }
    return files
  }

  /// Output file names: `model.safetensors` for one file, else `model-00001-of-00003.safetensors`.
  public static func fileNames(count: Int) -> [String] {
    guard count > 1 else { return ["model.safetensors"] }
    let digits = max(5, String(count).count)
    func padded(_ n: Int) -> String {
      let text = String(n)
      return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
    return (1...count).map { "model-\(padded($0))-of-\(padded(count)).safetensors" }
  }
}
