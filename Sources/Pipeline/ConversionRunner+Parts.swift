import Checkpoint
import JobParts
import SafeTensors
import WeightFormats
import SystemIO

extension PartSession: ConversionJournal {
  /// What an earlier run of this part recorded (with `--resume`).
  public func completed() -> [String: PartOutput] {
    Dictionary((previous?.outputs ?? []).map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
  }
}

/// A split conversion: each part writes its share (`ConversionPlan.share(of:)`) and records it in its
/// receipt; `--finalize` checks every file against the receipts and writes what a single run writes last.
extension ConversionRunner {
  /// Writes the share of `session.part` into `output` and marks the part finished. Nothing that depends on
  /// all parts (index, config, manifest) is written.
  /// - Parameter progress: source bytes processed (the share's total is `plan.share(of:)`'s jobs).
  public func runPart(_ session: PartSession, progress: @Sendable (Int) -> Void) throws -> ConversionReport {
    let clock = ContinuousClock()
    let start = clock.now
    let share = plan.share(of: session.part)
    var result = try write(share, journal: session, resume: session.previous != nil, progress: progress)
    try session.finish()
    result.seconds = seconds(since: start, clock)
    return report(share, result)
  }

  /// `--finalize`: every planned file is accounted for by its part's receipt and is what the part
  /// recorded — a whole file by size, header and SHA-256 (taken from the receipt while the file's stamp is
  /// unchanged, hashed again otherwise); a shared file hashed once, each part's byte ranges against that
  /// part's record, then renamed into place — and the index, config, sidecars and manifest are written as a
  /// single run writes them.
  /// - Parameter receipts: every part's finished receipt, in part order (`PartsDirectory.finishedReceipts`).
  /// - Returns: the weight files (name, SHA-256, bytes).
  public func finalizeParts(
    _ receipts: [PartReceipt], directory: PartsDirectory, commandLine: [String], progress: (Int) -> Void = { _ in }
  ) throws -> [(name: String, sha256: String, byteCount: Int)] {
    let partition = plan.partition(partCount: receipts.count)
    let outputs = receipts.map { receipt in Dictionary(receipt.outputs.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last }) }
    func record(_ name: String, part: Int) throws(PartsError) -> PartOutput {
      guard let output = outputs[part][name] else {
        throw .damaged(
          path: FileSystem.join(directory.path, PartsDirectory.receiptFileName(receipts[part].part)),
          reason: "part \(receipts[part].part) is marked finished but does not list '\(name)'; rerun it")
      }
      return output
    }
    var files: [(name: String, sha256: String, byteCount: Int)] = []
    for (index, file) in plan.files.enumerated() {
      let tensors = file.jobs.flatMap { plan.jobs[$0].outputs }
      let layout = try plan.container.layout(of: tensors)
      let byteCount = try plan.container.fileByteCount(of: tensors)
      let path = FileSystem.join(output, file.name)
      if let owner = partition.owner(ofFile: index) {
        let recorded = try record(file.name, part: owner)
        let part = receipts[owner].part
        try Self.checkSizeAndHeader(path, byteCount: byteCount, header: layout.header, recorded: recorded, part: part)
        if recorded.stamp == nil || FileStamp(of: path) != recorded.stamp {
          let actual = try FileDigest.sha256(of: path)
          guard actual == recorded.sha256 else {
            throw PartsError.outputChanged(path: path, part: part, reason: "SHA-256 \(actual), the part recorded \(recorded.sha256)")
          }
        }
        files.append((file.name, recorded.sha256, byteCount))
        progress(byteCount)
        continue
      }
      // Shared: the parts' byte ranges, checked in one pass that also gives the whole file's SHA-256.
      let parts = partition.parts(ofFile: index)
      var rangeSets: [[Range<Int>]] = []
      for part in parts {
        let recorded = try record(file.name, part: part)
        let jobs = zip(file.jobs, partition.jobParts[index]).filter { $0.1 == part }.map(\.0)
        let expected = Self.merged(jobs.flatMap { plan.jobs[$0].outputs.compactMap { layout.tensorRanges[$0.name] } })
        guard recorded.ranges == expected, recorded.byteCount == byteCount else {
          throw PartsError.outputChanged(path: path, part: receipts[part].part, reason: "its receipt records other byte ranges than the plan gives it")
        }
        rangeSets.append(expected)
      }
      let temporary = SharedOutputFile.temporaryPath(for: path)
      // An interrupted finalize may have published it already.
      let present = FileSystem.exists(temporary) ? temporary : path
      try Self.checkSizeAndHeader(present, byteCount: byteCount, header: layout.header, recorded: nil, part: receipts[parts[0]].part)
      let digests = try FileDigest.sha256(of: present, byteCount: byteCount, rangeSets: rangeSets)
      for (k, part) in parts.enumerated() where digests.sets[k] != outputs[part][file.name]?.sha256 {
        throw PartsError.outputChanged(
          path: path, part: receipts[part].part,
          reason: "its byte ranges hash to \(digests.sets[k]), the part recorded \(outputs[part][file.name]?.sha256 ?? "-")")
      }
      if present == temporary { try SharedOutputFile.publish(path) }
      files.append((file.name, digests.whole, byteCount))
      progress(byteCount)
    }
    try writeMetadata(weightFiles: files, commandLine: commandLine)
    return files
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

extension ConversionRunner {
  /// The peak resident set of writing `share` on `workers` threads, from the plan alone (the `--mem` of a
  /// job script): the plan's own tables, every worker's scratch buffers for row chunks (`chunkElements`
  /// F32 values in three slots, plus the chunk's mapped source pages until they are dropped), and the jobs
  /// decoded whole (4-bit targets and sources): their F32 values, the quantizer's and the round trip's
  /// working copies and the source's mapped pages, for the `workers` largest of them at once.
  public func peakResidentBytes(share: ConversionShare, workers: Int) -> Int {
    let tables = plan.jobs.count * 2048 + checkpoint.entries.count * 1024
    let scratch = workers * (3 * chunkElements * 4 + 4 * chunkElements)
    var whole: [Int] = []
    for index in share.jobs(in: plan) {
      let job = plan.jobs[index]
      var decodedWhole = !WeightDecoding.streamsRows(job.group.storage)
      if case .group = job.action { decodedWhole = true }
      if case .copy = job.action { decodedWhole = false }
      if decodedWhole { whole.append(8 * job.rows * job.columns + job.sourceByteCount + job.outputByteCount) }
    }
    let concurrentWhole = whole.sorted(by: >).prefix(workers).reduce(0, +)
    return ResourcePlan.programBytes + tables + scratch + concurrentWhole
  }
}
