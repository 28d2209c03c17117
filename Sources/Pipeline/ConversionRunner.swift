import Checkpoint
import JSON
import Quantization
import SafeTensors
import Synchronization
import SystemIO
import TensorCore

/// Per-weight result of a conversion: the round-trip error of what was written.
public struct TensorReport: Sendable {
  public var name: String
  public var action: String
  public var snrDecibels: Double
  public var maxAbsoluteError: Double
  /// NaN/infinite source values, which a cast carries into the output (a quantizer refuses them instead).
  public var nonFiniteCount = 0
  /// Flat index of the first of them.
  public var firstNonFiniteIndex: Int?
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

/// Executes a `ConversionPlan`: streams tensor by tensor, row chunk by row chunk, so memory stays a few
/// chunks regardless of checkpoint size; kernels use every core; each output file is written under a
/// temporary name and renamed when complete.
public final class ConversionRunner: Sendable {
  public let plan: ConversionPlan
  public let checkpoint: Checkpoint
  public let output: String

  /// Target elements per row chunk (~16 M: 64 MB of F32 scratch).
  static let chunkElements = 1 << 24

  public init(plan: ConversionPlan, checkpoint: Checkpoint, output: String) {
    self.plan = plan
    self.checkpoint = checkpoint
    self.output = output
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
    let journal = ResumeJournal(directory: output, planFingerprint: fingerprint())
    let completed = resume ? journal.load() : [:]
    if !resume { journal.reset() }
    let sources = try SourceFiles(checkpoint: checkpoint)
    defer { sources.close() }
    let reports = Mutex([TensorReport]())
    var written: [String] = []
    var resumed: [String] = []
    var fileDigests: [(String, String, Int)] = []

    do {
      try writeFiles(journal: journal, completed: completed, sources: sources, reports: reports, written: &written, resumed: &resumed, fileDigests: &fileDigests, progress: progress)
    } catch {
      // An input problem (NaN in a weight to quantize, a misshaped tensor) cannot be fixed by --resume:
      // remove every weight file of this plan and the journal so nothing half-finished remains. I/O
      // failures (full disk, file-size limit) keep completed files for --resume.
      if !ConversionRunner.isIOFailure(error) {
        for name in written + resumed { try? FileSystem.remove(FileSystem.join(output, name)) }
        journal.remove()
      }
      throw error
    }
    return try finish(journal: journal, reports: reports, written: written, resumed: resumed, fileDigests: fileDigests, commandLine: commandLine, start: start, clock: clock)
  }

  /// True for failures of the machine rather than of the input: system calls, including those made by the
  /// safetensors writer.
  static func isIOFailure(_ error: any Error) -> Bool {
    if error is SystemError { return true }
    if let error = error as? SafeTensorsFileError, case .io = error.error { return true }
    return false
  }

  private func writeFiles(
    journal: ResumeJournal, completed: [String: String], sources: SourceFiles, reports: borrowing Mutex<[TensorReport]>,
    written: inout [String], resumed: inout [String], fileDigests: inout [(String, String, Int)], progress: @Sendable (Int) -> Void
  ) throws {
    for file in plan.files {
      let path = FileSystem.join(output, file.name)
      let tensors = file.jobs.flatMap { plan.jobs[$0].outputs }
      let layout = try SafeTensorsLayout(tensors: tensors)
      // Reuse a finished file only if it is still exactly what was recorded (re-hashing costs a read,
      // far less than converting, and a file changed since must not reach the manifest as if intact).
      if let digest = completed[file.name], FileSystem.exists(path),
        (try? FileSystem.byteCount(of: path)) == layout.fileByteCount, (try? FileDigest.sha256(of: path)) == digest
      {
        resumed.append(file.name)
        fileDigests.append((file.name, digest, layout.fileByteCount))
        progress(file.jobs.reduce(0) { $0 + plan.jobs[$1].sourceByteCount })
        continue
      }
      let writer = try SafeTensorsFileWriter(path: path, layout: layout)
      do {
        for jobIndex in file.jobs {
          let job = plan.jobs[jobIndex]
          if let report = try execute(job, writer: writer, sources: sources) {
            reports.withLock { $0.append(report) }
          }
          progress(job.sourceByteCount)
        }
        try writer.commit()
      } catch {
        writer.abandon()
        throw error
      }
      let digest = try FileDigest.sha256(of: path)
      journal.record(file.name, sha256: digest)
      written.append(file.name)
      fileDigests.append((file.name, digest, layout.fileByteCount))
    }
  }

  private func finish(
    journal: ResumeJournal, reports: borrowing Mutex<[TensorReport]>, written: [String], resumed: [String],
    fileDigests: [(String, String, Int)], commandLine: [String], start: ContinuousClock.Instant, clock: ContinuousClock
  ) throws -> ConversionReport {

    var extras: [(String, String, Int)] = []
    if plan.files.count > 1 {
      var weightMap: [(tensor: String, file: String)] = []
      for file in plan.files {
        for jobIndex in file.jobs { for tensor in plan.jobs[jobIndex].outputs { weightMap.append((tensor.name, file.name)) } }
      }
      let index = CheckpointIndex(weightMap: weightMap, totalByteCount: plan.outputByteCount)
      let bytes = index.jsonBytes()
      try FileSystem.writeFileAtomically(bytes, to: FileSystem.join(output, "model.safetensors.index.json"))
      extras.append(("model.safetensors.index.json", SHA256.hex(of: bytes), bytes.count))
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
    try OutputManifest(files: (fileDigests + extras).map { .init(name: $0.0, sha256: $0.1, byteCount: $0.2) }, commandLine: commandLine)
      .write(to: output)
    journal.remove()

    let tensorReports = reports.withLock { $0 }
    let convertedCount = plan.jobs.reduce(0) { count, job in
      if case .copy = job.action { return count }
      return count + job.outputs.count
    }
    let copiedCount = plan.jobs.reduce(0) { count, job in
      if case .copy = job.action { return count + job.outputs.count }
      return count
    }
    return ConversionReport(
      convertedTensorCount: convertedCount, copiedTensorCount: copiedCount, sourceByteCount: plan.sourceByteCount,
      outputByteCount: plan.outputByteCount, seconds: Double((clock.now - start).components.attoseconds) / 1e18
        + Double((clock.now - start).components.seconds),
      filesWritten: written, filesResumed: resumed, tensors: tensorReports.sorted { $0.name < $1.name })
  }

  /// A stable description of the plan: a resumed run only reuses files written by the same plan.
  func fingerprint() -> String {
    var hasher = SHA256()
    hasher.update(Array("\(plan.target)".utf8))
    for file in plan.files {
      hasher.update(Array(file.name.utf8))
      for job in file.jobs {
        for tensor in plan.jobs[job].outputs { hasher.update(Array("\(tensor.name)|\(tensor.dtype)|\(tensor.shape);".utf8)) }
      }
    }
    for name in checkpoint.fileNames {
      hasher.update(Array(name.utf8))
      hasher.update(Array("\((try? FileSystem.byteCount(of: FileSystem.join(checkpoint.directory, name))) ?? -1)".utf8))
    }
    return SHA256.hexString(hasher.finalize())
  }

  // MARK: - Jobs

  private func execute(_ job: ConversionJob, writer: SafeTensorsFileWriter, sources: SourceFiles) throws -> TensorReport? {
    switch job.action {
    case .copy:
      for tensor in job.outputs {
        let location = try checkpointLocation(tensor.name)
        let file = checkpoint.files[location.fileIndex]
        try writer.copy(
          tensorNamed: tensor.name, from: try sources.descriptor(location.fileIndex),
          sourceFileOffset: file.header.fileRange(of: location.entry).lowerBound)
      }
      return nil
    case .cast(let dtype):
      return try cast(job, to: dtype, writer: writer)
    case .fp8(let scheme, let rule):
      return try quantizeFP8(job, scheme: scheme, rule: rule, writer: writer)
    case .group(let groupJob):
      return try quantizeGroup(job, groupJob, writer: writer)
    }
  }

  private func checkpointLocation(_ name: String) throws -> TensorLocation {
    guard let location = checkpoint.location(of: name) else {
      throw CheckpointError.unknownTensor(name: name, checkpoint: checkpoint.directory)
    }
    return location
  }

  /// Rows per chunk: a multiple of `alignment`, about `chunkElements` elements.
  private func chunkRows(_ job: ConversionJob, alignment: Int) -> Int {
    let rows = max(1, ConversionRunner.chunkElements / max(1, job.columns))
    return max(alignment, rows / alignment * alignment)
  }

  /// The F32 values of rows `range` of the job's source weight, into `destination`.
  private func decodeSource(_ job: ConversionJob, rows range: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) throws {
    guard WeightDecoding.streamsRows(job.group.storage) else { return try decodeWhole(job, rows: range, into: destination) }
    let main = try checkpoint.tensor(job.group.parts["weight"]!)
    let rowBytes = job.columns * (main.dtype.bitWidth / 8)
    switch job.group.storage {
    case .plain:
      let slice = UnsafeRawBufferPointer(rebasing: main.bytes[(range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)])
      do { try ElementCodec.decode(slice, dtype: main.dtype, into: destination) } catch {
        throw ConversionError.numeric(tensor: main.name, reason: "\(error)")
      }
    case .fp8Block:
      let scale = try checkpoint.tensor(job.group.parts["weight_scale_inv"]!)
      let blockRows = 128
      let blockColumns = 128
      let expected = [(job.rows + blockRows - 1) / blockRows, (job.columns + blockColumns - 1) / blockColumns]
      guard scale.shape == expected else {
        throw ConversionError.badCompanion(tensor: scale.name, expected: "F32 \(expected) for weight \(main.shape) with 128x128 blocks", actual: "\(scale.dtype) \(scale.shape)")
      }
      precondition(range.lowerBound % blockRows == 0, "fp8 source chunks start on a block row")
      let layout = try FP8BlockLayout(rows: range.count, columns: job.columns, scheme: .block(rows: blockRows, columns: blockColumns))
      let weights = UnsafeRawBufferPointer(rebasing: main.bytes[(range.lowerBound * job.columns)..<(range.upperBound * job.columns)])
      let scaleStart = range.lowerBound / blockRows * expected[1]
      let scales = try scale.copyElements(as: Float.self)
      try scales.withUnsafeBufferPointer { all in
        let chunkScales = UnsafeBufferPointer(rebasing: all[scaleStart..<(scaleStart + layout.scaleCount)])
        do {
          try BlockFP8.dequantize(weights, scales: chunkScales, layout: layout, to: .float32, into: UnsafeMutableRawBufferPointer(destination))
        } catch {
          throw ConversionError.numeric(tensor: main.name, reason: "\(error)")
        }
      }
    default:
      throw ConversionError.unsupported(tensor: job.group.modulePath, reason: "unsupported source layout \(job.group.storage.rawValue)")
    }
  }

  private func sourceRowAlignment(_ job: ConversionJob) -> Int {
    WeightDecoding.streamsRows(job.group.storage) ? WeightDecoding.rowAlignment(job.group.storage) : max(1, job.rows)
  }

  private func cast(_ job: ConversionJob, to dtype: DType, writer: SafeTensorsFileWriter) throws -> TensorReport {
    let name = job.outputs[0].name
    let step = chunkRows(job, alignment: sourceRowAlignment(job))
    let outputWidth = dtype.bitWidth / 8
    var errors = ErrorAccumulator()
    var nonFiniteCount = 0
    var firstNonFinite: Int?
    let reference = UnsafeMutableBufferPointer<Float>.allocate(capacity: step * job.columns)
    let roundTrip = UnsafeMutableBufferPointer<Float>.allocate(capacity: step * job.columns)
    let encoded = UnsafeMutableRawBufferPointer.allocate(byteCount: step * job.columns * outputWidth, alignment: 64)
    defer {
      reference.deallocate()
      roundTrip.deallocate()
      encoded.deallocate()
    }
    var row = 0
    while row < job.rows {
      let range = row..<min(job.rows, row + step)
      let count = range.count * job.columns
      let values = UnsafeMutableBufferPointer(rebasing: reference[0..<count])
      try decodeSource(job, rows: range, into: values)
      for (i, value) in values.enumerated() where !value.isFinite {
        if firstNonFinite == nil { firstNonFinite = range.lowerBound * job.columns + i }
        nonFiniteCount += 1
      }
      let bytes = UnsafeMutableRawBufferPointer(rebasing: encoded[0..<(count * outputWidth)])
      do {
        try ElementCodec.encode(UnsafeBufferPointer(values), to: dtype, into: bytes)
        let back = UnsafeMutableBufferPointer(rebasing: roundTrip[0..<count])
        try ElementCodec.decode(UnsafeRawBufferPointer(bytes), dtype: dtype, into: back)
        errors.add(reference: UnsafeBufferPointer(values), approximation: UnsafeBufferPointer(back))
      } catch {
        throw ConversionError.numeric(tensor: name, reason: "\(error)")
      }
      try writer.write(tensorNamed: name, atByteOffsetWithinTensor: range.lowerBound * job.columns * outputWidth, bytes: UnsafeRawBufferPointer(bytes))
      row = range.upperBound
    }
    return TensorReport(
      name: name, action: "cast \(dtype)", snrDecibels: errors.snrDecibels, maxAbsoluteError: errors.maxAbsoluteError,
      nonFiniteCount: nonFiniteCount, firstNonFiniteIndex: firstNonFinite)
  }

  private func quantizeFP8(_ job: ConversionJob, scheme: FP8Scheme, rule: FP8ScaleRule, writer: SafeTensorsFileWriter) throws -> TensorReport {
    let weightName = job.outputs[0].name
    let scaleName = job.outputs[1].name
    let scaleDType = job.outputs[1].dtype
    let full = try FP8BlockLayout(rows: job.rows, columns: job.columns, scheme: scheme)
    var alignment = sourceRowAlignment(job)
    switch scheme {
    case .block(let r, _): alignment = lcm(alignment, r)
    case .channel: break
    case .tensor: alignment = max(job.rows, 1)  // one global amax: the whole tensor at once
    }
    let step = min(job.rows, chunkRows(job, alignment: alignment))
    var errors = ErrorAccumulator()
    let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: step * job.columns)
    let roundTrip = UnsafeMutableBufferPointer<Float>.allocate(capacity: step * job.columns)
    let codes = UnsafeMutableRawBufferPointer.allocate(byteCount: step * job.columns, alignment: 64)
    let scales = UnsafeMutableBufferPointer<Float>.allocate(capacity: full.scaleCount)
    defer {
      values.deallocate()
      roundTrip.deallocate()
      codes.deallocate()
      scales.deallocate()
    }
    var row = 0
    var scaleCursor = 0
    while row < job.rows {
      let range = row..<min(job.rows, row + step)
      let count = range.count * job.columns
      let chunkValues = UnsafeMutableBufferPointer(rebasing: values[0..<count])
      try decodeSource(job, rows: range, into: chunkValues)
      let layout = try FP8BlockLayout(rows: range.count, columns: job.columns, scheme: scheme)
      let chunkCodes = UnsafeMutableRawBufferPointer(rebasing: codes[0..<count])
      let chunkScales = UnsafeMutableBufferPointer(rebasing: scales[scaleCursor..<(scaleCursor + layout.scaleCount)])
      do {
        try BlockFP8.quantize(
          UnsafeRawBufferPointer(chunkValues), dtype: .float32, layout: layout, rule: rule, weights: chunkCodes, scales: chunkScales)
        let back = UnsafeMutableBufferPointer(rebasing: roundTrip[0..<count])
        try BlockFP8.dequantize(
          UnsafeRawBufferPointer(chunkCodes), scales: UnsafeBufferPointer(chunkScales), layout: layout, to: .float32,
          into: UnsafeMutableRawBufferPointer(back))
        errors.add(reference: UnsafeBufferPointer(chunkValues), approximation: UnsafeBufferPointer(back))
      } catch {
        throw ConversionError.numeric(tensor: weightName, reason: "\(error)")
      }
      try writer.write(tensorNamed: weightName, atByteOffsetWithinTensor: range.lowerBound * job.columns, bytes: UnsafeRawBufferPointer(chunkCodes))
      scaleCursor += layout.scaleCount
      row = range.upperBound
    }
    let scaleBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: full.scaleCount * (scaleDType.bitWidth / 8), alignment: 64)
    defer { scaleBytes.deallocate() }
    do { try ElementCodec.encode(UnsafeBufferPointer(scales), to: scaleDType, into: scaleBytes) } catch {
      throw ConversionError.numeric(tensor: scaleName, reason: "\(error)")
    }
    try writer.write(tensorNamed: scaleName, bytes: UnsafeRawBufferPointer(scaleBytes))
    return TensorReport(name: weightName, action: "fp8 \(scheme)", snrDecibels: errors.snrDecibels, maxAbsoluteError: errors.maxAbsoluteError)
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
