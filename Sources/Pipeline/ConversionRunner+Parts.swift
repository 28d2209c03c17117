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
  /// recorded (`PartFiles.finalize`: whole files by size, header and SHA-256; shared files by each part's
  /// byte ranges, then renamed into place) — and the index, config, sidecars and manifest are written as a
  /// single run writes them.
  /// - Parameter receipts: every part's finished receipt, in part order (`PartsDirectory.finishedReceipts`).
  /// - Returns: the weight files (name, SHA-256, bytes).
  public func finalizeParts(
    _ receipts: [PartReceipt], directory: PartsDirectory, commandLine: [String], progress: (Int) -> Void = { _ in }
  ) throws -> [(name: String, sha256: String, byteCount: Int)] {
    let partition = plan.partition(partCount: receipts.count)
    var planned: [PlannedPartFile] = []
    for (index, file) in plan.files.enumerated() {
      let tensors = file.jobs.flatMap { plan.jobs[$0].outputs }
      let layout = try plan.container.layout(of: tensors)
      let writers: PlannedPartFile.Writers
      if let owner = partition.owner(ofFile: index) {
        writers = .whole(part: owner)
      } else {
        writers = .shared(partition.parts(ofFile: index).map { part in
          let jobs = zip(file.jobs, partition.jobParts[index]).filter { $0.1 == part }.map(\.0)
          return (part, Self.merged(jobs.flatMap { plan.jobs[$0].outputs.compactMap { layout.tensorRanges[$0.name] } }))
        })
      }
      planned.append(PlannedPartFile(
        name: file.name, path: FileSystem.join(output, file.name), byteCount: try plan.container.fileByteCount(of: tensors),
        header: layout.header, writers: writers))
    }
    let files = try PartFiles.finalize(planned, receipts: receipts, directory: directory, progress: progress)
    try writeMetadata(weightFiles: files, commandLine: commandLine)
    return files
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
