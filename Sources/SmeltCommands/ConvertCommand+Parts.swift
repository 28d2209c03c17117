import Checkpoint
import CommandLineSupport
import JobParts
import Pipeline
import SystemIO
import TensorCore

/// `smelt convert --part I/N`, `--finalize OUT` and `--emit-sbatch FILE`: the plan's files (or, when there
/// are fewer files than parts, runs of tensors cutting a file) spread over N parts by bytes of work; each
/// part writes its share into OUT and records it in its receipt; `--finalize` checks everything and writes
/// the index, config and manifest, leaving OUT byte-identical to a single run's.
extension ConvertCommand {
  /// Runs this process's part.
  func runPart(_ runner: ConversionRunner, context: CommandContext) throws {
    let clock = ContinuousClock()
    let start = clock.now
    let part = split.part
    try OutputDirectory.refuseInsideInput(output, input: input)
    try FileSystem.createDirectory(output)
    let directory = PartsDirectory(output)
    try Self.refuseForeignContents(directory)
    if DirectoryLock.isHeld(directory: output) {
      throw PartsError.busy(directory: output, reason: "a single run or --finalize holds it (lock file .smelt.lock)")
    }
    let description = JobDescription(job: "convert", arguments: recorded, fingerprint: runner.fingerprint(), partCount: part.count)
    let session = try PartSession(directory: directory, description: description, part: part, resume: resume)
    defer { session.release() }
    let share = runner.plan.share(of: part)
    let jobs = share.jobs(in: runner.plan)
    let progress = context.progress(
      total: jobs.reduce(0) { $0 + runner.plan.jobs[$1].sourceByteCount }, unit: .bytes, label: "convert \(part)")
    let report = try runner.runPart(session) { progress.advance(by: $0) }
    progress.finish()
    warnNonFinite(report, context: context)
    if !report.filesResumed.isEmpty {
      context.log("part \(part): resumed: reused \(report.filesResumed.count) output(s) an earlier run of this part finished")
    }
    let shared = share.sharedFiles.isEmpty ? "" : " and its share of \(share.sharedFiles.count) file(s) other parts write too"
    context.stdout.line(
      "part \(part): \(share.wholeFiles.count) of \(runner.plan.files.count) file(s)\(shared), \(ByteCount.formatted(report.sourceByteCount)) read, \(ByteCount.formatted(report.outputByteCount)) written in \(DisplayFormat.decimal(ContinuousClock.seconds(clock.now - start))) s (peak resident set \(ByteCount.formatted(ProcessResources.peakResidentBytes()))); run 'smelt convert --finalize \(output)' when all parts are done"
    )
  }

  /// A part joins only a directory that is empty or holds its own job (never another run's leftovers).
  static func refuseForeignContents(_ directory: PartsDirectory) throws {
    guard !directory.holdsSplitJob else { return }
    let foreign = try FileSystem.contents(of: directory.path).filter {
      $0 != ".smelt.lock" && !PartsDirectory.isBookkeeping($0)
    }
    if let example = foreign.first {
      throw OutputDirectory.Refusal.notEmpty(output: directory.path, example: example)
    }
  }

  /// `--finalize OUT`.
  func finalize(_ runner: ConversionRunner, context: CommandContext) throws {
    let clock = ContinuousClock()
    let start = clock.now
    let lock = try DirectoryLock(directory: output)
    defer { lock.release() }
    let directory = PartsDirectory(output)
    let stored = try directory.readDescription()
    try directory.refuseRunningParts(partCount: stored.partCount)
    guard stored.fingerprint == runner.fingerprint() else {
      throw PartsError.inputsChanged(directory: output, part: JobPart(index: 0, of: stored.partCount), arguments: stored.arguments)
    }
    let receipts = try directory.finishedReceipts(for: stored)
    let total = runner.plan.outputByteCount
    let verifying = context.progress(total: total, unit: .bytes, label: "finalize")
    let files = try runner.finalizeParts(receipts, directory: directory, commandLine: stored.arguments) { verifying.advance(by: $0) }
    verifying.finish()
    try directory.removeBookkeeping()
    try Self.removeStale(in: output, previous: OutputDirectory.PreviousOutput())
    try OutputCheck.run(directory: output, context: context)
    let bytes = files.reduce(0) { $0 + $1.byteCount }
    context.stdout.line(
      "finalized \(output): \(files.count) file(s) (\(ByteCount.formatted(bytes))) from \(stored.partCount) parts checked against their receipts; wrote the index, config and \(OutputManifest.fileName) in \(DisplayFormat.decimal(ContinuousClock.seconds(clock.now - start))) s"
    )
  }

  /// `--emit-sbatch FILE --parts N`.
  func emitScript(_ runner: ConversionRunner, context: CommandContext) throws {
    guard let script = split.script else { return }
    let plan = runner.plan
    let partition = plan.partition(partCount: script.partCount)
    var peak = 0
    var loads: [Int] = []
    for part in 0..<script.partCount {
      let share = partition.share(of: part, in: plan)
      peak = max(peak, runner.peakResidentBytes(share: share, workers: script.cpus))
      loads.append(share.jobs(in: plan).reduce(0) { $0 + plan.workBytes(ofJob: $1) })
    }
    let shared = plan.files.indices.filter { partition.owner(ofFile: $0) == nil }.count
    let ideal = Double(loads.reduce(0, +)) / Double(script.partCount)
    let absolute = FileSystem.absolutePath(output)
    try split.writeScript(
      job: "convert", command: scriptCommand,
      finalizeCommand: [SplitJobOptions.executablePath(), "convert", "--finalize", absolute],
      part: ResourcePlan(cpus: script.cpus, peakResidentBytes: peak),
      finalize: ResourcePlan(cpus: 1, peakResidentBytes: runner.peakResidentBytes(share: ConversionShare(wholeFiles: []), workers: 1)),
      logDirectory: absolute + ".slurm-logs",
      notes: [
        "\(plan.files.count) output file(s), \(ByteCount.formatted(loads.reduce(0, +))) of work (bytes read + written); the largest part has \(DisplayFormat.decimal(ideal > 0 ? Double(loads.max() ?? 0) / ideal : 1))x the average; \(shared) file(s) shared by several parts.",
      ],
      context: context)
  }

  /// Names every tensor whose NaN/Inf values a cast kept, or whose values an unscaled FP8 cast saturated
  /// (formats/verify.md's policy).
  func warnNonFinite(_ report: ConversionReport, context: CommandContext) {
    for tensor in report.tensors where tensor.nonFiniteCount > 0 {
      context.warn(
        "tensor '\(tensor.name)' has \(tensor.nonFiniteCount) NaN/infinite value(s) (first at element \(tensor.firstNonFiniteIndex ?? 0)) in its source or its result: NaN and infinity are kept, values too large for the target become infinities, FP8 casts saturate infinities to ±max; 'smelt verify --deep' reports them")
    }
    for tensor in report.tensors where tensor.saturatedCount > 0 {
      context.warn(
        "tensor '\(tensor.name)': \(tensor.saturatedCount) value(s) beyond the largest of \(target) (first at element \(tensor.firstSaturatedIndex ?? 0)) were saturated to ±max; an unscaled FP8 cast cannot represent them (a scaled target such as fp8-block can)")
    }
  }
}

extension ContinuousClock {
  /// `duration` in seconds.
  static func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
  }
}
