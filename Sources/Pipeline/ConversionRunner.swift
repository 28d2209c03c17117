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

  // MARK: - One output file

  /// Converts the jobs of one output file on `workerCount` workers; returns their tensor reports.
  private func convertFile(_ jobIndices: [Int], context: FileContext, progress: @Sendable (Int) -> Void) throws -> [TensorReport] {
    var jobStates: [JobState] = []
    var workList: [WorkItem] = []
    for jobIndex in jobIndices {
      let state = try JobState(job: plan.jobs[jobIndex], checkpoint: checkpoint)
      let chunks = try workItems(for: state, stateIndex: jobStates.count)
      state.expect(itemCount: chunks.count)
      jobStates.append(state)
      workList += chunks
    }
    let (items, states) = (workList, jobStates)
    let cursor = Mutex(0)
    let failure = Mutex<(any Error)?>(nil)
    let reports = Mutex([TensorReport]())
    let workers = max(1, min(workerCount, items.count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
      let scratch = WorkerScratch()
      defer { scratch.deallocate() }
      while failure.withLock({ $0 == nil }) {
        let next = cursor.withLock { value -> Int in
          defer { value += 1 }
          return value
        }
        guard next < items.count else { return }
        let item = items[next]
        let state = states[item.stateIndex]
        do {
          try process(item, state, context, scratch)
          try checkpoint.checkInputsUnchanged(thorough: false)
          if state.itemFinished(), let report = try finish(state, context) {
            reports.withLock { $0.append(report) }
          }
          progress(item.sourceByteCount)
        } catch {
          failure.withLock { if $0 == nil { $0 = error } }
        }
      }
    }
    if let error = failure.withLock({ $0 }) { throw error }
    return reports.withLock { $0 }
  }

  /// The work items of a job: row chunks aligned to the source's and target's block rows (one item for a
  /// copy, and for per-tensor FP8 scaling, which needs the whole tensor's maximum first).
  private func workItems(for state: JobState, stateIndex: Int) throws -> [WorkItem] {
    let job = state.job
    func whole() -> [WorkItem] { [WorkItem(stateIndex: stateIndex, rows: 0..<job.rows, sourceByteCount: job.sourceByteCount)] }
    // Sources decode by row ranges aligned to their own blocks; 4-bit sources decode whole.
    guard WeightDecoding.streamsRows(job.group.storage), let source = state.sourceGeometry else { return whole() }
    var alignment = source.rowAlignment
    switch job.action {
    case .copy, .group, .repack: return whole()
    case .cast: break
    case .fp8(let scheme, _):
      switch scheme {
      case .block(let r, _): alignment = lcm(alignment, max(1, r))
      case .channel: break
      case .tensor: return whole()
      }
    }
    guard job.rows > 0 else { return whole() }
    let step = chunkRows(job, alignment: alignment)
    var items: [WorkItem] = []
    var row = 0
    while row < job.rows {
      let end = min(job.rows, row + step)
      // Shares of the job's source bytes that add up exactly, for the progress bar.
      let share = job.sourceByteCount * end / job.rows - job.sourceByteCount * row / job.rows
      items.append(WorkItem(stateIndex: stateIndex, rows: row..<end, sourceByteCount: share))
      row = end
    }
    return items
  }

  /// Rows per chunk: a multiple of `alignment`, about `chunkElements` elements.
  private func chunkRows(_ job: ConversionJob, alignment: Int) -> Int {
    let rows = max(1, chunkElements / max(1, job.columns))
    return max(alignment, rows / alignment * alignment)
  }

  // MARK: - Work items

  private func process(_ item: WorkItem, _ state: JobState, _ context: FileContext, _ scratch: WorkerScratch) throws {
    switch state.job.action {
    case .copy:
      try copyTensors(state.job, context)
    case .cast(let dtype):
      try castRows(item.rows, state, to: dtype, context, scratch)
    case .group(let groupJob):
      let report = try quantizeGroup(state.job, groupJob) { name, bytes in try context.write(tensorNamed: name, bytes: bytes) }
      state.groupReport.withLock { $0 = report }
    case .repack(let layout):
      let report = try repackGroup(state.job, layout) { name, bytes in try context.write(tensorNamed: name, bytes: bytes) }
      state.groupReport.withLock { $0 = report }
    case .fp8(let scheme, let rule):
      if case .tensor = scheme {
        try quantizeTensorFP8(state, rule: rule, context, scratch)
      } else {
        try quantizeRowsFP8(item.rows, state, scheme: scheme, rule: rule, context, scratch)
      }
    }
  }

  /// Once per job, after its last item: writes what depends on every chunk and reports the error.
  private func finish(_ state: JobState, _ context: FileContext) throws -> TensorReport? {
    let job = state.job
    let errors = state.errors.withLock { $0 }
    switch job.action {
    case .copy:
      return nil
    case .group, .repack:
      return state.groupReport.withLock { $0 }
    case .cast(let dtype):
      let nonFinite = state.nonFinite.withLock { $0 }
      let saturated = state.saturated.withLock { $0 }
      return TensorReport(
        name: job.outputs[0].name, action: "cast \(dtype)", method: "cast", snrDecibels: errors.snrDecibels,
        maxAbsoluteError: errors.maxAbsoluteError, nonFiniteCount: nonFinite.count, firstNonFiniteIndex: nonFinite.first,
        saturatedCount: saturated.count, firstSaturatedIndex: saturated.first)
    case .fp8(let scheme, _):
      guard let scales = state.outputScales else { return nil }
      let scale = job.outputs[1]
      let scaleBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: scales.buffer.count * (scale.dtype.bitWidth / 8), alignment: 64)
      defer { scaleBytes.deallocate() }
      do { try ElementCodec.encode(UnsafeBufferPointer(scales.buffer), to: scale.dtype, into: scaleBytes) } catch {
        throw ConversionError.numeric(tensor: scale.name, reason: "\(error)")
      }
      try context.write(tensorNamed: scale.name, bytes: UnsafeRawBufferPointer(scaleBytes))
      return TensorReport(
        name: job.outputs[0].name, action: "fp8 \(scheme)", snrDecibels: errors.snrDecibels,
        maxAbsoluteError: errors.maxAbsoluteError)
    }
  }

  /// `.copy`: the tensors' bytes file to file (`copy_file_range`).
  private func copyTensors(_ job: ConversionJob, _ context: FileContext) throws {
    for tensor in job.outputs {
      guard let location = checkpoint.location(of: tensor.name) else {
        throw CheckpointError.unknownTensor(name: tensor.name, checkpoint: checkpoint.directory)
      }
      let file = checkpoint.files[location.fileIndex]
      try context.copy(
        tensorNamed: tensor.name, from: try context.sources.descriptor(location.fileIndex),
        sourceFileOffset: file.header.fileRange(of: location.entry).lowerBound)
    }
  }

  /// `.cast`: rows of the weight, dequantized or cast to `dtype`, with the round-trip error.
  ///
  /// FP8 block sources are dequantized to F32 (the exact `f32(q) * scale`, DeepSeek's `weight_dequant`),
  /// then rounded to `dtype`; plain sources are decoded to F32 and encoded. The error is measured between
  /// that F32 reference and the encoded output.
  private func castRows(
    _ rows: Range<Int>, _ state: JobState, to dtype: DType, _ context: FileContext, _ scratch: WorkerScratch
  ) throws {
    let job = state.job
    let name = job.outputs[0].name
    let count = rows.count * job.columns
    let outputWidth = dtype.bitWidth / 8
    if job.group.storage == .fp8Block, dtype == .bfloat16 || dtype == .float32 {
      // DeepSeek's release -> BF16 (or F32): one pass from the mapped codes to the output buffer.
      let (codes, scales, layout) = try state.fp8Source(rows: rows)
      let encoded = scratch.bytes(.output, count * outputWidth)
      // NaN codes, and products too large for the output (a huge scale), give NaN/inf results: they are
      // carried into the output and reported; the statistics skip them, so such a chunk takes the scalar path.
      let nanCodes = NonFinite.scanE4M3(codes)
      if dtype == .bfloat16 {
        var errors = nanCodes.count == 0
          ? FusedFP8.dequantizeToBF16(codes, scales: scales, layout: layout, into: encoded)
          : FusedFP8.dequantizeToBF16Reference(codes, scales: scales, layout: layout, into: encoded)
        let produced = NonFinite.scanEncodedBF16(UnsafeRawBufferPointer(encoded))
        if produced.count > 0 {
          if nanCodes.count == 0 { errors = FusedFP8.dequantizeToBF16Reference(codes, scales: scales, layout: layout, into: encoded) }
          state.addNonFinite(produced.count, first: produced.first.map { rows.lowerBound * job.columns + $0 })
        }
        state.addErrors(errors)
      } else {
        do { try BlockFP8.dequantize(codes, scales: scales, layout: layout, to: .float32, into: encoded) } catch {
          throw ConversionError.numeric(tensor: name, reason: "\(error)")
        }
        let produced = NonFinite.scan(UnsafeBufferPointer(encoded.bindMemory(to: Float.self)))
        if produced.count > 0 { state.addNonFinite(produced.count, first: produced.first.map { rows.lowerBound * job.columns + $0 }) }
        // Exact: the F32 output is the reference.
        var errors = ErrorStatistics()
        errors.add(reference: UnsafeRawBufferPointer(encoded), .float32, candidate: UnsafeRawBufferPointer(encoded), .float32, count: count)
        state.addErrors(errors)
      }
      try context.write(
        tensorNamed: name, atByteOffsetWithinTensor: rows.lowerBound * job.columns * outputWidth,
        bytes: UnsafeRawBufferPointer(encoded))
      state.release(rows: rows)
      return
    }
    let reference = scratch.floats(.reference, count)
    try state.decode(rows: rows, into: reference)
    let encoded = scratch.bytes(.output, count * outputWidth)
    do { try ElementCodec.encode(UnsafeBufferPointer(reference), to: dtype, into: encoded) } catch {
      throw ConversionError.numeric(tensor: name, reason: "\(error)")
    }
    // NaN/infinite source values are carried into the output (casts saturate or keep them), values too
    // large for `dtype` become infinities: every element non-finite on either side is reported.
    let nonFinite = try NonFinite.castResults(
      reference: UnsafeBufferPointer(reference), encoded: UnsafeRawBufferPointer(encoded), dtype: dtype,
      scratch: scratch.floats(.roundTrip, count))
    if nonFinite.count > 0 { state.addNonFinite(nonFinite.count, first: nonFinite.first.map { rows.lowerBound * job.columns + $0 }) }
    if let limit = NonFinite.saturationLimit(of: dtype) {
      let saturated = NonFinite.beyond(limit, UnsafeBufferPointer(reference))
      if saturated.count > 0 { state.addSaturated(saturated.count, first: saturated.first.map { rows.lowerBound * job.columns + $0 }) }
    }
    var errors = ErrorStatistics()
    if ErrorStatistics.dtypes.contains(dtype) {
      errors.add(reference: UnsafeRawBufferPointer(reference), .float32, candidate: UnsafeRawBufferPointer(encoded), dtype, count: count)
    } else {
      // FP8 targets: decode back to F32 first.
      let back = scratch.floats(.roundTrip, count)
      do { try ElementCodec.decode(UnsafeRawBufferPointer(encoded), dtype: dtype, into: back) } catch {
        throw ConversionError.numeric(tensor: name, reason: "\(error)")
      }
      errors.add(reference: UnsafeBufferPointer(reference), candidate: UnsafeBufferPointer(back))
    }
    state.addErrors(errors)
    try context.write(
      tensorNamed: name, atByteOffsetWithinTensor: rows.lowerBound * job.columns * outputWidth,
      bytes: UnsafeRawBufferPointer(encoded))
    state.release(rows: rows)
  }

  /// `.fp8` with block or channel scales: rows of the weight quantized to E4M3 with their scales (kept
  /// in the job's scale grid until `finish`), and the error of dequantizing them again.
  ///
  /// F32/BF16/F16 sources are quantized straight from the mapped bytes; others (an FP8 source being
  /// re-scaled, F64) are decoded to F32 first.
  private func quantizeRowsFP8(
    _ rows: Range<Int>, _ state: JobState, scheme: FP8Scheme, rule: FP8ScaleRule, _ context: FileContext,
    _ scratch: WorkerScratch
  ) throws {
    let job = state.job
    let name = job.outputs[0].name
    let count = rows.count * job.columns
    let layout = try FP8BlockLayout(rows: rows.count, columns: job.columns, scheme: scheme)
    guard let grid = state.outputScales, let full = state.outputLayout else { return }
    // Chunks start on block rows of the whole tensor (a short last chunk has a shorter `layout.blockRows`).
    let firstScale = rows.lowerBound / full.blockRows * full.scaleColumns
    let scales = grid.slice(firstScale..<(firstScale + layout.scaleCount))
    let (source, sourceDType) = try state.quantizerInput(rows: rows, scratch: scratch)
    let codes = scratch.bytes(.output, count)
    do {
      try BlockFP8.quantize(source, dtype: sourceDType, layout: layout, rule: rule, weights: codes, scales: scales)
    } catch {
      throw ConversionError.numeric(tensor: name, reason: "\(QuantizationError.offsetRows(error, by: rows.lowerBound, columns: job.columns))")
    }
    try measureFP8Error(source, sourceDType, codes, UnsafeBufferPointer(scales), layout, state, scratch)
    try context.write(
      tensorNamed: name, atByteOffsetWithinTensor: rows.lowerBound * job.columns, bytes: UnsafeRawBufferPointer(codes))
    state.release(rows: rows)
  }

  /// `.fp8` with one scale for the tensor: a pass over row chunks for the maximum, then a pass quantizing
  /// each chunk onto that scale (bit-identical to quantizing the whole tensor at once, in bounded memory).
  private func quantizeTensorFP8(_ state: JobState, rule: FP8ScaleRule, _ context: FileContext, _ scratch: WorkerScratch) throws {
    let job = state.job
    let name = job.outputs[0].name
    guard let grid = state.outputScales, job.rows > 0 else { return }
    let step = chunkRows(job, alignment: state.sourceGeometry?.rowAlignment ?? 1)
    var maximum: UInt32 = 0
    var row = 0
    while row < job.rows {
      let rows = row..<min(job.rows, row + step)
      let (source, dtype) = try state.quantizerInput(rows: rows, scratch: scratch)
      maximum = max(maximum, MagnitudeMaximum.bits(source, dtype, count: rows.count * job.columns))
      row = rows.upperBound
    }
    // A non-finite maximum: quantize anyway with a placeholder scale so the kernel reports the element.
    grid.buffer[0] = maximum >= 0x7F80_0000 ? 1 : rule.scale(forAbsoluteMaximum: Float(bitPattern: maximum))
    let scale = UnsafeBufferPointer(grid.slice(0..<1))
    row = 0
    while row < job.rows {
      let rows = row..<min(job.rows, row + step)
      let count = rows.count * job.columns
      let layout = try FP8BlockLayout(rows: rows.count, columns: job.columns, scheme: .tensor)
      let (source, dtype) = try state.quantizerInput(rows: rows, scratch: scratch)
      let codes = scratch.bytes(.output, count)
      do { try BlockFP8.quantize(source, dtype: dtype, layout: layout, givenScales: scale, weights: codes) } catch {
        throw ConversionError.numeric(tensor: name, reason: "\(QuantizationError.offsetRows(error, by: rows.lowerBound, columns: job.columns))")
      }
      try measureFP8Error(source, dtype, codes, scale, layout, state, scratch)
      try context.write(tensorNamed: name, atByteOffsetWithinTensor: rows.lowerBound * job.columns, bytes: UnsafeRawBufferPointer(codes))
      state.release(rows: rows)
      row = rows.upperBound
    }
  }

  /// Adds the error of `codes` with `scales` against `source` to the job (one fused pass).
  private func measureFP8Error(
    _ source: UnsafeRawBufferPointer, _ sourceDType: DType, _ codes: UnsafeMutableRawBufferPointer,
    _ scales: UnsafeBufferPointer<Float>, _ layout: FP8BlockLayout, _ state: JobState, _ scratch: WorkerScratch
  ) throws {
    // What the consumer reads back: the decoder multiplies in the stored scale dtype (F32 for DeepSeek).
    let readDType = state.job.outputs.count > 1 ? state.job.outputs[1].dtype : .float32
    state.addErrors(
      FusedFP8.quantizationError(
        source: source, sourceDType, codes: UnsafeRawBufferPointer(codes), scales: scales, layout: layout, readDType: readDType))
  }
}

// MARK: - Machinery

/// One unit of work: rows of one job (all rows for copies and per-tensor scaling).
struct WorkItem: Sendable {
  var stateIndex: Int
  var rows: Range<Int>
  /// This item's share of the job's source bytes (shares add up to `sourceByteCount`).
  var sourceByteCount: Int
}

/// What every work item of a file writes to: the container's writer, and the digest that follows it.
struct FileContext: Sendable {
  let writer: any OutputFileWriter
  let sources: SourceFiles
  /// `nil` for a shared file, hashed by ranges once this part's share of it is synced.
  let digest: StreamingFileDigest?

  /// Writes all of tensor `name`.
  func write(tensorNamed name: String, bytes: UnsafeRawBufferPointer) throws {
    try write(tensorNamed: name, atByteOffsetWithinTensor: 0, bytes: bytes)
  }

  /// Writes part of tensor `name`, reports the file range to the digest and starts writing it back.
  func write(tensorNamed name: String, atByteOffsetWithinTensor offset: Int, bytes: UnsafeRawBufferPointer) throws {
    try writer.write(tensorNamed: name, atByteOffsetWithinTensor: offset, bytes: bytes)
    if let tensor = writer.fileRange(ofTensor: name) {
      let range = (tensor.lowerBound + offset)..<(tensor.lowerBound + offset + bytes.count)
      digest?.didWrite(range)
      digest?.startWriteback(range)
    }
  }

  /// Copies tensor `name` file to file and reports it to the digest.
  func copy(tensorNamed name: String, from source: FileDescriptor, sourceFileOffset: Int) throws {
    try writer.copy(tensorNamed: name, from: source, sourceFileOffset: sourceFileOffset)
    if let range = writer.fileRange(ofTensor: name) { digest?.didWrite(range) }
  }
}

/// A job being converted: its source views, scales and results, shared by its work items.
final class JobState: Sendable {
  let job: ConversionJob
  /// The source weight's mapped codes, for row-streamed plain and FP8-block sources (nil otherwise).
  let weight: TensorView?
  /// The source's geometry (nil for copies).
  let sourceGeometry: WeightGeometry?
  /// An FP8 block source's F32 scales, copied once (read-only after `init`; freed in `deinit`).
  private let sourceScales: DisjointMutableBuffer<Float>
  /// The output scale grid of an FP8 job, filled chunk by chunk (disjoint row ranges).
  let outputScales: DisjointMutableBuffer<Float>?
  /// The whole tensor's FP8 layout, for FP8 jobs.
  let outputLayout: FP8BlockLayout?
  let errors = Mutex(ErrorStatistics())
  /// Non-finite source values seen by a cast: how many, and the smallest flat index.
  let nonFinite = Mutex((count: 0, first: Int?.none))
  /// Finite source values an FP8 cast saturated to ±max: how many, and the smallest flat index.
  let saturated = Mutex((count: 0, first: Int?.none))
  /// A group-format or repack job's report (its single work item converts the whole weight).
  let groupReport = Mutex(TensorReport?.none)
  /// The checkpoint, for sources decoded through `WeightDecoding`.
  private let checkpoint: Checkpoint
  private let remainingItems = Mutex(0)

  init(job: ConversionJob, checkpoint: Checkpoint) throws {
    self.job = job
    self.checkpoint = checkpoint
    try checkpoint.checkScales(of: job.group)
    var streamed = WeightDecoding.streamsRows(job.group.storage)
    if case .group = job.action { streamed = false }
    if case .repack = job.action { streamed = false }
    if case .copy = job.action {
      sourceGeometry = nil
      streamed = false
    } else {
      do { sourceGeometry = try WeightDecoding.geometry(of: job.group, in: checkpoint) } catch {
        throw ConversionError.unsupported(tensor: job.group.modulePath, reason: "\(error)")
      }
    }
    if streamed, job.group.storage == .plain || job.group.storage == .fp8Block {
      (weight, sourceScales) = try JobState.mappedSource(job, checkpoint)
    } else {
      weight = nil
      sourceScales = DisjointMutableBuffer(UnsafeMutableBufferPointer(start: nil, count: 0))
    }
    if case .fp8(let scheme, _) = job.action {
      let layout = try FP8BlockLayout(rows: job.rows, columns: job.columns, scheme: scheme)
      let grid = UnsafeMutableBufferPointer<Float>.allocate(capacity: layout.scaleCount)
      grid.initialize(repeating: 0)
      outputScales = DisjointMutableBuffer(grid)
      outputLayout = layout
    } else {
      outputScales = nil
      outputLayout = nil
    }
  }

  /// The mapped weight of a plain or FP8-block source read straight from the mapping, and an FP8-block
  /// source's scales copied once (checked finite: the fused kernels do not check per chunk).
  private static func mappedSource(
    _ job: ConversionJob, _ checkpoint: Checkpoint
  ) throws -> (TensorView, DisjointMutableBuffer<Float>) {
    guard let weightName = job.group.parts["weight"] else {
      throw ConversionError.unsupported(tensor: job.group.modulePath, reason: "no weight tensor")
    }
    let weight = try checkpoint.tensor(weightName)
    let width = weight.dtype.bitWidth / 8
    guard width > 0, weight.bytes.count >= job.rows * job.columns * width else {
      throw ConversionError.unsupported(tensor: weight.name, reason: "\(weight.dtype) \(weight.shape) does not match the plan")
    }
    guard job.group.storage == .fp8Block, let scaleName = job.group.parts["weight_scale_inv"] else {
      return (weight, DisjointMutableBuffer(UnsafeMutableBufferPointer(start: nil, count: 0)))
    }
    let scale = try checkpoint.tensor(scaleName)
    // F32 scales (DeepSeek), or BF16 (Qwen3.5 / 3.6 FP8) widened exactly.
    let values = try scale.dtype == .float32 ? scale.copyElements(as: Float.self) : scale.withUnsafeBytes { bytes in
      try [Float](unsafeUninitializedCapacity: scale.entry.elementCount) { out, initialized in
        do { try ElementCodec.decode(bytes, dtype: scale.dtype, into: out) } catch {
          throw ConversionError.badCompanion(tensor: scale.name, expected: "F32 or BF16 scales", actual: "\(scale.dtype)")
        }
        initialized = scale.entry.elementCount
      }
    }
    if let index = values.firstIndex(where: { !$0.isFinite }) {
      throw ConversionError.numeric(
        tensor: scale.name, reason: "\(QuantizationError.nonFiniteScale(scaleIndex: index, value: values[index]))")
    }
    let copy = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
    _ = copy.initialize(from: values)
    return (weight, DisjointMutableBuffer(copy))
  }

  deinit {
    outputScales?.buffer.deallocate()
    sourceScales.buffer.deallocate()
  }

  func expect(itemCount: Int) { remainingItems.withLock { $0 = itemCount } }

  /// Marks one item done; true for the job's last one.
  func itemFinished() -> Bool {
    remainingItems.withLock { remaining in
      remaining -= 1
      return remaining == 0
    }
  }

  func addErrors(_ chunk: ErrorStatistics) { errors.withLock { $0.merge(chunk) } }

  func addNonFinite(_ count: Int, first: Int?) { JobState.add(count, first: first, to: nonFinite) }

  func addSaturated(_ count: Int, first: Int?) { JobState.add(count, first: first, to: saturated) }

  private static func add(_ count: Int, first: Int?, to counter: borrowing Mutex<(count: Int, first: Int?)>) {
    counter.withLock { total in
      total.count += count
      if let first { total.first = min(total.first ?? first, first) }
    }
  }

  private var rowByteCount: Int { job.columns * ((weight?.dtype.bitWidth ?? 8) / 8) }

  /// The stored bytes of rows `rows` of the source weight (zero-copy, in the mapping).
  func sourceBytes(rows: Range<Int>) -> UnsafeRawBufferPointer {
    guard let weight else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(rebasing: weight.bytes[(rows.lowerBound * rowByteCount)..<(rows.upperBound * rowByteCount)])
  }

  /// Drops the consumed rows' pages from this process (they stay in the page cache): the mapping would
  /// otherwise count every byte read in the resident set.
  func release(rows: Range<Int>) {
    guard let weight else { return }
    let start = weight.owner.header.fileRange(of: weight.entry).lowerBound
    weight.owner.mapping.advise(.dontNeed, range: (start + rows.lowerBound * rowByteCount)..<(start + rows.upperBound * rowByteCount))
  }

  /// The F32 values of rows `rows` into `destination` (`rows.count * columns` elements): plain sources from
  /// the mapping, everything else through the one weight decoder.
  func decode(rows: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) throws {
    if job.group.storage == .plain, let weight, job.transposedMatrix == nil {
      do { try ElementCodec.decode(sourceBytes(rows: rows), dtype: weight.dtype, into: destination) } catch {
        throw ConversionError.numeric(tensor: weight.name, reason: "\(error)")
      }
      return
    }
    do {
      guard let (r, c) = job.transposedMatrix else {
        try WeightDecoding.decodeRows(group: job.group, in: checkpoint, geometry: sourceGeometry, rows: rows, into: destination)
        return
      }
      // Each row of the job is one (r, c) matrix of the source, written as (c, r).
      let source = UnsafeMutableBufferPointer<Float>.allocate(capacity: destination.count)
      defer { source.deallocate() }
      try WeightDecoding.decodeRows(group: job.group, in: checkpoint, geometry: sourceGeometry, rows: rows, into: source)
      for row in 0..<rows.count {
        let base = row * job.columns
        for i in 0..<r {
          for j in 0..<c { destination[base + j * r + i] = source[base + i * c + j] }
        }
      }
    } catch {
      throw ConversionError.numeric(tensor: WeightDecoding.logicalName(of: job.group), reason: "\(error)")
    }
  }

  /// An FP8 block source's codes, scales and layout for rows `rows` (starting on a block row), for the fused
  /// FP8 → BF16 pass.
  func fp8Source(rows: Range<Int>) throws -> (UnsafeRawBufferPointer, UnsafeBufferPointer<Float>, FP8BlockLayout) {
    guard let scheme = sourceGeometry?.fp8Scales, let alignment = sourceGeometry?.rowAlignment else {
      throw ConversionError.unsupported(tensor: job.group.modulePath, reason: "not an FP8 block source")
    }
    precondition(rows.lowerBound % alignment == 0, "fp8 source chunks start on a block row")
    let full = try FP8BlockLayout(rows: job.rows, columns: job.columns, scheme: scheme)
    let layout = try FP8BlockLayout(rows: rows.count, columns: job.columns, scheme: scheme)
    let firstScale = rows.lowerBound / full.blockRows * full.scaleColumns
    let scales = UnsafeBufferPointer(sourceScales.slice(firstScale..<(firstScale + layout.scaleCount)))
    return (sourceBytes(rows: rows), scales, layout)
  }

  /// What the FP8 quantizer reads for rows `rows`: the mapped bytes when they are F32/BF16/F16, else the
  /// values decoded to F32 in `scratch`.
  func quantizerInput(rows: Range<Int>, scratch: WorkerScratch) throws -> (UnsafeRawBufferPointer, DType) {
    if job.group.storage == .plain, let weight, BlockFP8.sourceDTypes.contains(weight.dtype) {
      return (sourceBytes(rows: rows), weight.dtype)
    }
    let values = scratch.floats(.reference, rows.count * job.columns)
    try decode(rows: rows, into: values)
    return (UnsafeRawBufferPointer(values), .float32)
  }
}

/// A worker's reusable buffers, grown on demand (never shared between threads).
final class WorkerScratch {
  enum Slot: Int, CaseIterable { case reference, roundTrip, output }
  private var buffers: [UnsafeMutableRawBufferPointer] = Slot.allCases.map { _ in UnsafeMutableRawBufferPointer(start: nil, count: 0) }

  private func raw(_ slot: Slot, _ byteCount: Int) -> UnsafeMutableRawBufferPointer {
    if buffers[slot.rawValue].count < byteCount {
      buffers[slot.rawValue].deallocate()
      buffers[slot.rawValue] = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
    }
    return UnsafeMutableRawBufferPointer(rebasing: buffers[slot.rawValue][0..<byteCount])
  }

  func floats(_ slot: Slot, _ count: Int) -> UnsafeMutableBufferPointer<Float> {
    let bytes = raw(slot, count * 4)
    return bytes.bindMemory(to: Float.self)
  }

  func bytes(_ slot: Slot, _ count: Int) -> UnsafeMutableRawBufferPointer { raw(slot, count) }

  func deallocate() {
    for buffer in buffers { buffer.deallocate() }
    buffers = []
  }
}

/// Output-file digests computed one after another on a background queue (while the next file converts),
/// each recorded in the journal when done, with the file's stamp.
final class BackgroundDigests: Sendable {
  private let queue = DispatchQueue(label: "smelt.digest")
  private let group = DispatchGroup()
  private let results = Mutex([(name: String, sha256: String, byteCount: Int)]())
  private let failure = Mutex<(any Error)?>(nil)
  private let journal: any ConversionJournal

  init(journal: any ConversionJournal) { self.journal = journal }

  /// Waits (in the background, files in order) for `compute` and records the file (at `path`) as complete.
  func start(name: String, path: String, byteCount: Int, compute: @escaping @Sendable () throws -> String) {
    queue.async(group: group) { [self] in
      do {
        let digest = try compute()
        try journal.record(PartOutput(path: name, byteCount: byteCount, sha256: digest, stamp: FileStamp(of: path)))
        results.withLock { $0.append((name, digest, byteCount)) }
      } catch {
        failure.withLock { if $0 == nil { $0 = error } }
      }
    }
  }

  /// Waits for every digest started; throws the first failure.
  func wait() throws -> [(String, String, Int)] {
    group.wait()
    if let error = failure.withLock({ $0 }) { throw error }
    return results.withLock { $0.map { ($0.name, $0.sha256, $0.byteCount) } }
  }
}

extension QuantizationError {
  /// The error with its element and row made relative to the whole tensor, for a chunk that starts at
  /// row `offset` of a tensor with `columns` columns.
  static func offsetRows(_ error: QuantizationError, by offset: Int, columns: Int) -> QuantizationError {
    if case .nonFiniteInput(let index, let row, let column, let value) = error, offset > 0 {
      return .nonFiniteInput(elementIndex: index + offset * columns, row: row + offset, column: column, value: value)
    }
    return error
  }
}

private func lcm(_ a: Int, _ b: Int) -> Int {
  func gcd(_ x: Int, _ y: Int) -> Int { y == 0 ? x : gcd(y, x % y) }
  return a / gcd(a, b) * b
}

/// Read descriptors for the checkpoint's files (for `copy_file_range`), opened once.
final class SourceFiles: Sendable {
  private let descriptors: [FileDescriptor]
  init(checkpoint: Checkpoint) throws {
    descriptors = try checkpoint.files.map { try FileDescriptor.open($0.path, .readOnly) }
  }
  func descriptor(_ index: Int) throws -> FileDescriptor { descriptors[index] }
  func close() { for descriptor in descriptors { descriptor.close() } }
}
