import Checkpoint
import Dispatch
import JobParts
import JSON
import Quantization
import SafeTensors
import Synchronization
import SystemIO
import TensorCore
import WeightFormats

/// Per-weight result of a conversion: the round-trip error of what was written.
public struct TensorReport: Sendable {
  public var name: String
  public var action: String
  /// How the values got there: `cast`, `requantized` (decoded and quantized again), `repacked (lossless)`
  /// (codes and scales moved, bit-exact), or `repacked (inexact blocks)` (some blocks rounded; `action` says
  /// how many).
  public var method: String = "requantized"
  public var snrDecibels: Double
  public var maxAbsoluteError: Double
  /// NaN/infinite source values, which a cast carries into the output (a quantizer refuses them instead).
  public var nonFiniteCount = 0
  /// Flat index of the first of them.
  public var firstNonFiniteIndex: Int?
  /// Finite values beyond the largest of an FP8 cast's target (±448 for E4M3), written as ±max.
  public var saturatedCount = 0
  /// Flat index of the first of them.
  public var firstSaturatedIndex: Int?
}

/// What a finished conversion did.
public struct ConversionReport: Sendable {
  public var convertedTensorCount: Int
  public var copiedTensorCount: Int
  public var sourceByteCount: Int
  public var outputByteCount: Int
  public var seconds: Double
  public var filesWritten: [String]
  public var filesResumed: [String]
  public var tensors: [TensorReport]
}

/// Executes a `ConversionPlan`, streaming: every job is cut into row chunks ("work items", about
/// `chunkElements` elements each), and `workerCount` workers take items in file order, each converting
/// its chunk in its own scratch buffers and writing it at its offset with `pwrite`. So reads (page faults
/// on the mapped input), arithmetic and writes of different chunks overlap on all cores, and memory stays
/// a few chunks per worker whatever the checkpoint's size. Consumed input pages are dropped from the
/// process (`MADV_DONTNEED`) so the mapping does not grow the resident set either.
///
/// Each output file is written under a temporary name and renamed when complete; its SHA-256 (for the
/// manifest and the resume journal) is computed on a background thread while the next file converts.
///
/// Adding an action: a `case` in `WorkItemKind`/`process(_:)` and one function that converts rows
/// `item.rows` of the job into the output (see `castRows`, `quantizeRowsFP8`), using `JobState` for
/// per-tensor results (scales filled chunk by chunk, merged error statistics) and `finish(_:)` for what is
/// written once per tensor.
public final class ConversionRunner: Sendable {
  public let plan: ConversionPlan
  public let checkpoint: Checkpoint
  public let output: String
  /// Target elements per work item (~1 Mi: 2-4 MB of source, so a worker's scratch stays in cache).
  let chunkElements: Int
  /// Concurrent workers.
  let workerCount: Int
  /// Source |x| maxima of NVFP4 weights with fused siblings, by job index (see `fusedAmax`).
  let siblingAmax = Mutex([Int: Float]())

  public convenience init(plan: ConversionPlan, checkpoint: Checkpoint, output: String) {
    self.init(
      plan: plan, checkpoint: checkpoint, output: output, chunkElements: 1 << 20, workerCount: Parallel.defaultThreadCount)
  }

  /// With explicit chunking (tests force many small chunks and several workers).
  init(plan: ConversionPlan, checkpoint: Checkpoint, output: String, chunkElements: Int, workerCount: Int) {
    self.plan = plan
    self.checkpoint = checkpoint
    self.output = output
    self.chunkElements = max(1, chunkElements)
    self.workerCount = max(1, workerCount)
  }

  /// Runs the plan into `output` (which must exist and be locked by the caller).
  ///
  /// - Parameters:
  ///   - resume: reuse output files recorded as complete by an earlier, interrupted run of the same plan.
  ///   - progress: called with source bytes processed since the last call (from worker threads).
  ///   - commandLine: recorded in the output manifest.
  public func run(resume: Bool, commandLine: [String], progress: @Sendable (Int) -> Void) throws -> ConversionReport {
    let clock = ContinuousClock()
    let start = clock.now
    let journal = ResumeJournal(
      directory: output, planFingerprint: optionsFingerprint(), inputStamps: checkpoint.inputStamps(), commandLine: commandLine)
    if resume, let reason = journal.mismatch() { throw ConversionError.cannotResume(output: output, reason: reason) }
    // --resume into a finished output (its journal gone): its manifest says which files the same run made.
    let finished = resume ? try FinishedRunJournal(directory: output, journal: journal, fingerprint: fingerprint()) : nil
    if !resume || finished != nil { journal.reset() }
    let share = plan.wholeShare
    var result: WrittenShare
    do {
      result = try write(share, journal: finished ?? journal, resume: resume, progress: progress)
    } catch {
      if !ConversionRunner.isIOFailure(error) { journal.remove() }
      throw error
    }
    try writeMetadata(weightFiles: result.files, commandLine: commandLine)
    journal.remove()
    result.seconds = seconds(since: start, clock)
    return report(share, result)
  }

  /// What writing a share produced.
  struct WrittenShare {
    var reports: [TensorReport] = []
    /// Whole files complete (written or resumed): name, SHA-256, byte count.
    var files: [(name: String, sha256: String, byteCount: Int)] = []
    var written: [String] = []
    var resumed: [String] = []
    var seconds = 0.0
  }

  /// Writes `share`'s files: whole files under their final names, each recorded in `journal` with its
  /// SHA-256 once renamed; the share's jobs of shared files into those files' temporary names, recorded with
  /// their byte ranges' SHA-256 once synced.
  ///
  /// On an input problem (NaN in a weight to quantize, a misshaped tensor), which `--resume` cannot fix,
  /// removes the whole files it completed; I/O failures (full disk, file-size limit) keep them for `--resume`.
  func write(
    _ share: ConversionShare, journal: any ConversionJournal, resume: Bool, progress: @Sendable (Int) -> Void
  ) throws -> WrittenShare {
    let completed = resume ? journal.completed() : [:]
    let sources = try SourceFiles(checkpoint: checkpoint)
    defer { sources.close() }
    var result = WrittenShare()
    let digests = BackgroundDigests(journal: journal)
    do {
      for index in share.wholeFiles {
        let file = plan.files[index]
        let path = FileSystem.join(output, file.name)
        let tensors = file.jobs.flatMap { plan.jobs[$0].outputs }
        let fileByteCount = try plan.container.fileByteCount(of: tensors)
        // Reuse a finished file only if it is still exactly what was recorded (re-hashing costs a read,
        // far less than converting, and a file changed since must not reach the manifest as if intact).
        if let recorded = completed[file.name], recorded.ranges == nil, FileSystem.exists(path),
          (try? FileSystem.byteCount(of: path)) == fileByteCount, (try? FileDigest.sha256(of: path)) == recorded.sha256
        {
          result.resumed.append(file.name)
          result.files.append((file.name, recorded.sha256, fileByteCount))
          progress(file.jobs.reduce(0) { $0 + plan.jobs[$1].sourceByteCount })
          continue
        }
        let writer = try plan.container.makeWriter(path: path, tensors: tensors)
        let streaming: StreamingFileDigest
        do {
          streaming = try StreamingFileDigest(path: AtomicOutputFile.temporaryPath(for: path), byteCount: fileByteCount)
        } catch {
          writer.abandon()
          throw error
        }
        streaming.didWrite(0..<writer.headerByteCount)
        do {
          let context = FileContext(writer: writer, sources: sources, digest: streaming)
          result.reports += try convertFile(file.jobs, context: context, progress: progress)
          try checkpoint.checkInputsUnchanged()
          try writer.commit()
          // The writer verified every tensor complete: the whole file is final (no range can be missed).
          streaming.didWrite(0..<fileByteCount)
        } catch {
          streaming.cancel()
          writer.abandon()
          throw error
        }
        digests.start(name: file.name, path: path, byteCount: fileByteCount) { try streaming.digest() }
        result.written.append(file.name)
      }
      for shared in share.sharedFiles {
        let (reports, resumed) = try writeShared(shared, journal: journal, completed: completed, sources: sources, progress: progress)
        result.reports += reports
        if resumed { result.resumed.append(plan.files[shared.file].name) } else { result.written.append(plan.files[shared.file].name) }
      }
    } catch {
      _ = try? digests.wait()
      if !ConversionRunner.isIOFailure(error) {
        for name in result.written + result.resumed where share.wholeFiles.contains(where: { plan.files[$0].name == name }) {
          try? FileSystem.remove(FileSystem.join(output, name))
        }
      }
      throw error
    }
    result.files += try digests.wait()
    return result
  }

  /// Converts `shared.jobs` into the shared file's temporary name and records their byte ranges' SHA-256;
  /// skipped when an earlier run of this part recorded the same ranges and they still hash the same.
  /// - Returns: the tensor reports, and whether the recorded ranges were reused.
  private func writeShared(
    _ shared: ConversionShare.SharedFile, journal: any ConversionJournal, completed: [String: PartOutput],
    sources: SourceFiles, progress: @Sendable (Int) -> Void
  ) throws -> ([TensorReport], Bool) {
    let file = plan.files[shared.file]
    let path = FileSystem.join(output, file.name)
    let tensors = file.jobs.flatMap { plan.jobs[$0].outputs }
    let layout = try plan.container.layout(of: tensors)
    let fileByteCount = try plan.container.fileByteCount(of: tensors)
    let owned = shared.jobs.flatMap { plan.jobs[$0].outputs.map(\.name) }
    let ranges = Self.merged(owned.compactMap { layout.tensorRanges[$0] })
    let temporary = SharedOutputFile.temporaryPath(for: path)
    if let recorded = completed[file.name], recorded.ranges == ranges, FileSystem.exists(temporary),
      (try? FileSystem.byteCount(of: temporary)) == fileByteCount,
      (try? FileDigest.sha256(of: temporary, byteCount: fileByteCount, ranges: ranges)) == recorded.sha256
    {
      try journal.record(recorded)
      progress(shared.jobs.reduce(0) { $0 + plan.jobs[$1].sourceByteCount })
      return ([], true)
    }
    let writer = try plan.container.makeSharedWriter(path: path, tensors: tensors, writing: Set(owned))
    let reports: [TensorReport]
    do {
      reports = try convertFile(shared.jobs, context: FileContext(writer: writer, sources: sources, digest: nil), progress: progress)
      try checkpoint.checkInputsUnchanged()
      try writer.commit()
    } catch {
      writer.abandon()
      throw error
    }
    let digest = try FileDigest.sha256(of: temporary, byteCount: fileByteCount, ranges: ranges)
    try journal.record(PartOutput(path: file.name, byteCount: fileByteCount, sha256: digest, ranges: ranges))
    return (reports, false)
  }

  /// Sorted, disjoint ranges with neighbours joined.
  static func merged(_ ranges: [Range<Int>]) -> [Range<Int>] {
    var result: [Range<Int>] = []
    for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where !range.isEmpty {
      if let last = result.last, last.upperBound >= range.lowerBound {
        result[result.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
      } else {
        result.append(range)
      }
    }
    return result
  }

  /// Writes what depends on every weight file once they are complete: the index, `config.json`, the
  /// consumer's metadata files, the input's sidecars and, last, the manifest.
  func writeMetadata(weightFiles: [(name: String, sha256: String, byteCount: Int)], commandLine: [String]) throws {
    var extras: [(String, String, Int)] = []
    let fileTensors = plan.files.map { file in (name: file.name, tensors: file.jobs.flatMap { plan.jobs[$0].outputs }) }
    for index in plan.container.indexFiles(files: fileTensors, totalByteCount: plan.outputByteCount) {
      try FileSystem.writeFileAtomically(index.bytes, to: FileSystem.join(output, index.name))
      extras.append((index.name, SHA256.hex(of: index.bytes), index.bytes.count))
    }
    if let config = plan.config {
      let bytes = JSONWriter(pretty: true).bytes(.object(config)) + [0x0A]
      try FileSystem.writeFileAtomically(bytes, to: FileSystem.join(output, "config.json"))
      extras.append(("config.json", SHA256.hex(of: bytes), bytes.count))
    }
    for file in plan.extraFiles {
      try FileSystem.writeFileAtomically(file.bytes, to: FileSystem.join(output, file.name))
      extras.append((file.name, SHA256.hex(of: file.bytes), file.bytes.count))
    }
    for name in try checkpoint.sidecarFiles() where name != "config.json" && !plan.replacedSidecars.contains(name) {
      let destination = FileSystem.join(output, name)
      try FileSystem.copyFile(FileSystem.join(checkpoint.directory, name), to: destination)
      extras.append((name, try FileDigest.sha256(of: destination), try FileSystem.byteCount(of: destination)))
    }
    let files = weightFiles.map { ($0.name, $0.sha256, $0.byteCount) } + extras
    try OutputManifest(
      files: files.map { .init(name: $0.0, sha256: $0.1, byteCount: $0.2) }, commandLine: commandLine, runFingerprint: fingerprint()
    ).write(to: output)
  }

  /// The report of a share.
  func report(_ share: ConversionShare, _ result: WrittenShare) -> ConversionReport {
    let jobs = share.jobs(in: plan).map { plan.jobs[$0] }
    let convertedCount = jobs.reduce(0) { count, job in
      if case .copy = job.action { return count }
      return count + job.outputs.count
    }
    let copiedCount = jobs.reduce(0) { count, job in
      if case .copy = job.action { return count + job.outputs.count }
      return count
    }
    return ConversionReport(
      convertedTensorCount: convertedCount, copiedTensorCount: copiedCount,
      sourceByteCount: jobs.reduce(0) { $0 + $1.sourceByteCount }, outputByteCount: jobs.reduce(0) { $0 + $1.outputByteCount },
      seconds: result.seconds, filesWritten: result.written, filesResumed: result.resumed,
      tensors: result.reports.sorted { $0.name < $1.name })
  }

  func seconds(since start: ContinuousClock.Instant, _ clock: ContinuousClock) -> Double {
    let elapsed = (clock.now - start).components
    return Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
  }

  /// True for failures of the machine rather than of the input: system calls, including those made by the
  /// safetensors writer.
  static func isIOFailure(_ error: any Error) -> Bool {
    if error is SystemError { return true }
    if let error = error as? SafeTensorsFileError, case .io = error.error { return true }
    return false
  }

  /// A stable description of the plan and its inputs: a resumed run only reuses files written by the same
  /// plan from the same inputs (`optionsFingerprint()` and `Checkpoint.inputStamps()`, which the resume
  /// journal records and compares separately to say which of the two changed).
  public func fingerprint() -> String {
    optionsFingerprint() + "/" + SHA256.hex(of: Array(checkpoint.inputFingerprint().utf8))
  }

  /// Every option that changes a byte of a weight file: the target, the container, and per output file
  /// its name and each job's full action (scheme, scale format and dtype, group size, bits, `--search`,
  /// ...; see `StructuralDescription`) and output tensors (names from `--compressed-tensors`, dtypes,
  /// shapes, order; `--include`/`--exclude`, `--rule` and `--max-shard-size` act through these).
  func optionsFingerprint() -> String {
    var hasher = SHA256()
    hasher.update(Array("\(plan.target)|\(StructuralDescription.text(of: plan.container))".utf8))
    for file in plan.files {
      hasher.update(Array(file.name.utf8))
      for job in file.jobs {
        hasher.update(Array(StructuralDescription.text(of: plan.jobs[job].action).utf8))
        for tensor in plan.jobs[job].outputs { hasher.update(Array("\(tensor.name)|\(tensor.dtype)|\(tensor.shape);".utf8)) }
      }
    }
    return SHA256.hexString(hasher.finalize())
  }
}
