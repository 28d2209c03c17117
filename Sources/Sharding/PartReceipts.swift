import JSON
import SystemIO

/// `OUT/.smelt-shard-part-I-of-N.json`: written by part I of N after all its files are committed, so that
/// `--finalize` knows how many parts there are and which have finished, and the SHA-256 the part computed of
/// each file it wrote, so that a file changed afterwards is refused instead of certified. Removed by a
/// successful finalize, which leaves the directory byte-identical to a single run's.
public enum PartReceipts {
  static let prefix = ".smelt-shard-part-"

  /// The receipt name of 1-based part `part` of `count`.
  public static func fileName(part: Int, of count: Int) -> String { "\(prefix)\(part)-of-\(count).json" }

  /// What the receipts of a finished job say.
  public struct Summary: Sendable {
    /// The number of parts.
    public var partCount: Int
    /// Each written file (relative path) with the part that wrote it (1-based) and the SHA-256 it recorded.
    public var files: [String: (part: Int, sha256: String)]
  }

  /// Records that 1-based part `part` of `count` finished writing `files` (relative path and SHA-256) for
  /// the plan `digest`.
  public static func write(
    outputDirectory: String, part: Int, of count: Int, planDigest: String, files: [(path: String, sha256: String)]
  ) throws {
    let entries: [JSONValue] = files.map { file in
      .object(members: [("path", .string(file.path)), ("sha256", .string(file.sha256))])
    }
    let document: JSONValue = .object(members: [
      ("part", .number(JSONNumber(part))), ("part_count", .number(JSONNumber(count))),
      ("plan_sha256", .string(planDigest)), ("files", .array(entries)),
    ])
    try FileSystem.writeFileAtomically(
      JSONWriter(pretty: true).bytes(document) + [0x0A], to: FileSystem.join(outputDirectory, fileName(part: part, of: count)))
  }

  /// The part count the receipts in `outputDirectory` agree on (1 when there are none: a single run) and
  /// the files they record, after checking that every part has finished and that all belong to the plan
  /// `digest`.
  public static func check(outputDirectory: String, planDigest: String) throws -> Summary {
    let names = try FileSystem.contents(of: outputDirectory).filter { $0.hasPrefix(prefix) && $0.hasSuffix(".json") }
    guard !names.isEmpty else { return Summary(partCount: 1, files: [:]) }
    var count: Int?
    var finished = Set<Int>()
    var files: [String: (part: Int, sha256: String)] = [:]
    for name in names {
      let value = try JSONParser.parse(try FileSystem.readFile(FileSystem.join(outputDirectory, name)))
      guard let part = value["part"]?.intValue, let parts = value["part_count"]?.intValue, parts >= 1,
        let digest = value["plan_sha256"]?.stringValue
      else { throw ShardingError.partsInconsistent(directory: outputDirectory, reason: "'\(name)' is not a part receipt") }
      guard digest == planDigest else {
        throw ShardingError.partsInconsistent(directory: outputDirectory, reason: "'\(name)' was written for another plan")
      }
      if let count, count != parts {
        throw ShardingError.partsInconsistent(directory: outputDirectory, reason: "parts were run with different counts (\(count) and \(parts))")
      }
      count = parts
      finished.insert(part)
      for entry in value["files"]?.arrayValue ?? [] {
        guard let path = entry["path"]?.stringValue, let sha256 = entry["sha256"]?.stringValue else {
          throw ShardingError.partsInconsistent(directory: outputDirectory, reason: "'\(name)' lists a file without its SHA-256")
        }
        files[path] = (part, sha256)
      }
    }
    let total = count ?? 1
    for part in 1...total where !finished.contains(part) {
      throw ShardingError.partUnfinished(directory: outputDirectory, part: part, partCount: total)
    }
    return Summary(partCount: total, files: files)
  }

  /// Takes the lock of 1-based part `part` of `count` (`OUT/.smelt-shard-part-I-of-N.lock`), held while
  /// the part writes: a second process running the same part is refused, and `--finalize` waits for none.
  public static func lock(outputDirectory: String, part: Int, of count: Int) throws -> FileLock {
    try FileLock(path: FileSystem.join(outputDirectory, lockName(part: part, of: count)), holder: "part \(part)/\(count)")
  }

  static func lockName(part: Int, of count: Int) -> String { "\(prefix)\(part)-of-\(count).lock" }

  /// Refuses to finalize while any part still runs (holds its lock).
  public static func refuseRunningParts(outputDirectory: String) throws {
    for name in try FileSystem.contents(of: outputDirectory) where name.hasPrefix(prefix) && name.hasSuffix(".lock") {
      if FileLock.isHeld(FileSystem.join(outputDirectory, name)) {
        throw ShardingError.partsInconsistent(
          directory: outputDirectory, reason: "a part is still running (it holds '\(name)'); wait for it, then --finalize again")
      }
    }
  }

  /// Removes every receipt and part lock.
  public static func removeAll(outputDirectory: String) throws {
    for name in try FileSystem.contents(of: outputDirectory)
    where name.hasPrefix(prefix) && (name.hasSuffix(".json") || name.hasSuffix(".lock")) {
      try FileSystem.remove(FileSystem.join(outputDirectory, name))
    }
  }
}
