import CommandLineSupport
import GGUF
import GGUFModel
import JSON
import JobParts
import Pipeline
import SystemIO
import TensorCore

/// `smelt convert IN OUT.gguf --to gguf-<preset> --part I/N`, `--finalize OUT.gguf` and `--emit-sbatch`:
/// the safetensors route's parts (`ConvertCommand+Parts`) for a GGUF output. The tensors are balanced over
/// the parts by bytes of work and a file spanning a cut is shared; the job's bookkeeping lives in
/// `OUT.gguf.smelt-parts` until `--finalize` checks every file against the receipts, renames the shared
/// ones into place and removes it, leaving exactly the files of a single run.
extension ConvertGGUF {
  /// Runs this process's part.
  func runPart(_ runner: GGUFConversionRunner, context: CommandContext) throws {
    let clock = ContinuousClock()
    let start = clock.now
    let part = split.part
    let plan = runner.plan
    let directory = Self.partsDirectory(for: output)
    // A part joins only its own job, never a single run's file.
    if !directory.holdsSplitJob, let existing = plan.paths.first(where: FileSystem.exists) {
      throw OutputDirectory.Refusal.fileExists(existing)
    }
    let description = JobDescription(job: "convert", arguments: recorded, fingerprint: runner.fingerprint(), partCount: part.count)
    let session = try PartSession(directory: directory, description: description, part: part, resume: resume)
    defer { session.release() }
    let assignment = plan.partition(partCount: part.count)
    let total = plan.tensors.indices.filter { assignment[$0] == part.index }.reduce(0) { $0 + plan.tensors[$1].info.byteCount }
    let progress = context.progress(total: total, unit: .bytes, label: "convert \(part)")
    let report: GGUFConversionReport
    do {
      report = try runner.runPart(session) { progress.advance(by: $0) }
    } catch {
      throw ResumableFailure.wrapping(error)
    }
    progress.finish()
    if !report.filesResumed.isEmpty {
      context.log("part \(part): resumed: reused \(report.filesResumed.count) output(s) an earlier run of this part finished")
    }
    context.stdout.line(
      "part \(part): \(report.tensorCount) of \(plan.tensors.count) tensors in \(report.filesWritten.count + report.filesResumed.count) of \(plan.paths.count) file(s), \(ByteCount.formatted(report.sourceByteCount)) read, \(ByteCount.formatted(report.outputByteCount)) written in \(DisplayFormat.decimal(ContinuousClock.seconds(clock.now - start))) s (peak resident set \(ByteCount.formatted(ProcessResources.peakResidentBytes()))); run 'smelt convert --finalize \(output)' when all parts are done"
    )
  }

  /// `--finalize OUT.gguf`.
  func finalize(_ runner: GGUFConversionRunner, context: CommandContext) throws {
    let clock = ContinuousClock()
    let start = clock.now
    let directory = Self.partsDirectory(for: output)
    let lock = try DirectoryLock(directory: directory.path)
    let stored = try directory.readDescription()
    try directory.refuseRunningParts(partCount: stored.partCount)
    guard stored.fingerprint == runner.fingerprint() else {
      lock.release()
      throw PartsError.inputsChanged(directory: directory.path, part: JobPart(index: 0, of: stored.partCount), arguments: stored.arguments)
    }
    let files: [(name: String, sha256: String, byteCount: Int)]
    do {
      let receipts = try directory.finishedReceipts(for: stored)
      let verifying = context.progress(total: runner.plan.outputByteCount, unit: .bytes, label: "finalize")
      files = try PartFiles.finalize(runner.plan.partFiles(partCount: stored.partCount), receipts: receipts, directory: directory) {
        verifying.advance(by: $0)
      }
      verifying.finish()
      try directory.removeBookkeeping()
    } catch {
      lock.release()
      throw error
    }
    lock.release()
    try FileSystem.removeTree(directory.path)
    let bytes = files.reduce(0) { $0 + $1.byteCount }
    if json {
      context.stdout.line(JSONWriter(pretty: true).string(.object(members: [
        ("files", .array(files.map { file in
          .object(members: [
            ("path", .string(FileSystem.join(FileSystem.split(output).directory, file.name))), ("sha256", .string(file.sha256)),
            ("bytes", .number(JSONNumber(file.byteCount))),
          ])
        })),
        ("parts", .number(JSONNumber(stored.partCount))),
      ])))
    } else {
      context.stdout.line(
        "finalized \(output): \(files.count) file(s) (\(ByteCount.formatted(bytes))) from \(stored.partCount) parts checked against their receipts in \(DisplayFormat.decimal(ContinuousClock.seconds(clock.now - start))) s"
      )
    }
  }

  /// `--emit-sbatch FILE --parts N`.
  func emitScript(_ runner: GGUFConversionRunner, context: CommandContext) throws {
    guard let script = split.script else { return }
    let plan = runner.plan
    let assignment = plan.partition(partCount: script.partCount)
    var loads = [Int](repeating: 0, count: script.partCount)
    for index in plan.tensors.indices { loads[assignment[index]] += plan.workBytes(ofTensor: index) }
    let shared = plan.partFiles(partCount: script.partCount).filter {
      if case .shared = $0.writers { return true } else { return false }
    }.count
    let ideal = Double(loads.reduce(0, +)) / Double(script.partCount)
    let absolute = FileSystem.absolutePath(output)
    try split.writeScript(
      job: "convert", command: scriptCommand,
      finalizeCommand: [SplitJobOptions.executablePath(), "convert", "--finalize", absolute],
      part: ResourcePlan(cpus: script.cpus, peakResidentBytes: runner.peakResidentBytes(workers: script.cpus)),
      finalize: ResourcePlan(cpus: 1, peakResidentBytes: runner.peakResidentBytes(workers: 0)),
      logDirectory: absolute + ".slurm-logs",
      notes: [
        "GGUF \(plan.options.preset.name): \(plan.tensors.count) tensors in \(plan.paths.count) file(s), \(ByteCount.formatted(loads.reduce(0, +))) of work (bytes read + written); the largest part has \(DisplayFormat.decimal(ideal > 0 ? Double(loads.max() ?? 0) / ideal : 1))x the average; \(shared) file(s) shared by several parts."
      ],
      context: context)
  }
}
