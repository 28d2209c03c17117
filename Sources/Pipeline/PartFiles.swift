import Checkpoint
import JobParts
import SystemIO

/// A file of a split job as its plan gives it: what `--finalize` checks the parts' receipts and the file
/// on disk against. Every job that writes files in parts (a safetensors conversion, a GGUF conversion)
/// describes its files this way and lets `PartFiles.finalize` check and publish them.
public struct PlannedPartFile: Sendable {
  /// The file's name in the parts' receipts.
  public var name: String
  /// Where it lies.
  public var path: String
  public var byteCount: Int
  /// The bytes the file starts with, fixed by the plan (its header).
  public var header: [UInt8]
  /// Who writes it.
  public var writers: Writers

  public enum Writers: Sendable {
    /// One part (0-based) writes the whole file under its final name.
    case whole(part: Int)
    /// Several parts write into the shared temporary file (`SharedOutputFile`), each its byte ranges
    /// (sorted, disjoint), in part order.
    case shared([(part: Int, ranges: [Range<Int>])])
  }

  public init(name: String, path: String, byteCount: Int, header: [UInt8], writers: Writers) {
    self.name = name
    self.path = path
    self.byteCount = byteCount
    self.header = header
    self.writers = writers
  }
}

/// The `--finalize` check shared by every job that writes files in parts.
public enum PartFiles {
  /// Checks every planned file against its part's receipt — a whole file by size, header and SHA-256
  /// (taken from the receipt while the file's stamp is unchanged, hashed again otherwise); a shared file
  /// hashed once, each part's byte ranges against that part's record, then renamed into place.
  /// - Parameter receipts: every part's finished receipt, in part order (`PartsDirectory.finishedReceipts`).
  /// - Returns: the files (name, SHA-256, bytes), in plan order.
  public static func finalize(
    _ files: [PlannedPartFile], receipts: [PartReceipt], directory: PartsDirectory, progress: (Int) -> Void = { _ in }
  ) throws -> [(name: String, sha256: String, byteCount: Int)] {
    let outputs = receipts.map { receipt in Dictionary(receipt.outputs.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last }) }
    func record(_ name: String, part: Int) throws(PartsError) -> PartOutput {
      guard let output = outputs[part][name] else {
        throw .damaged(
          path: FileSystem.join(directory.path, PartsDirectory.receiptFileName(receipts[part].part)),
          reason: "part \(receipts[part].part) is marked finished but does not list '\(name)'; rerun it")
      }
      return output
    }
    var result: [(name: String, sha256: String, byteCount: Int)] = []
    for file in files {
      switch file.writers {
      case .whole(let owner):
        let recorded = try record(file.name, part: owner)
        let part = receipts[owner].part
        try checkSizeAndHeader(file.path, byteCount: file.byteCount, header: file.header, recorded: recorded, part: part)
        if recorded.stamp == nil || FileStamp(of: file.path) != recorded.stamp {
          let actual = try FileDigest.sha256(of: file.path)
          guard actual == recorded.sha256 else {
            throw PartsError.outputChanged(path: file.path, part: part, reason: "SHA-256 \(actual), the part recorded \(recorded.sha256)")
          }
        }
        result.append((file.name, recorded.sha256, file.byteCount))
      case .shared(let writers):
        // The parts' byte ranges, checked in one pass that also gives the whole file's SHA-256.
        for (part, ranges) in writers {
          let recorded = try record(file.name, part: part)
          guard recorded.ranges == ranges, recorded.byteCount == file.byteCount else {
            throw PartsError.outputChanged(
              path: file.path, part: receipts[part].part, reason: "its receipt records other byte ranges than the plan gives it")
          }
        }
        let temporary = SharedOutputFile.temporaryPath(for: file.path)
        // An interrupted finalize may have published it already.
        let present = FileSystem.exists(temporary) ? temporary : file.path
        try checkSizeAndHeader(present, byteCount: file.byteCount, header: file.header, recorded: nil, part: receipts[writers[0].part].part)
        let digests = try FileDigest.sha256(of: present, byteCount: file.byteCount, rangeSets: writers.map(\.ranges))
        for (k, writer) in writers.enumerated() where digests.sets[k] != outputs[writer.part][file.name]?.sha256 {
          throw PartsError.outputChanged(
            path: file.path, part: receipts[writer.part].part,
            reason: "its byte ranges hash to \(digests.sets[k]), the part recorded \(outputs[writer.part][file.name]?.sha256 ?? "-")")
        }
        if present == temporary { try SharedOutputFile.publish(file.path) }
        result.append((file.name, digests.whole, file.byteCount))
      }
      progress(file.byteCount)
    }
    return result
  }

  /// Refuses a file that is missing, has another size, or does not start with the planned header.
  static func checkSizeAndHeader(_ path: String, byteCount: Int, header: [UInt8], recorded: PartOutput?, part: JobPart) throws {
    guard FileSystem.kind(of: path) == .file else {
      throw PartsError.outputChanged(path: path, part: part, reason: "it is missing")
    }
    let descriptor = try FileDescriptor.open(path, .readOnly)
    defer { descriptor.close() }
    let actual = try descriptor.byteCount()
    guard actual == byteCount, recorded.map({ $0.byteCount == byteCount }) ?? true else {
      throw PartsError.outputChanged(path: path, part: part, reason: "it has \(actual) bytes, the plan gives \(byteCount)")
    }
    var start = [UInt8](repeating: 0, count: header.count)
    try start.withUnsafeMutableBytes { try descriptor.read(into: $0, at: 0) }
    guard start == header else {
      throw PartsError.outputChanged(path: path, part: part, reason: "its header is not the plan's")
    }
  }
}
