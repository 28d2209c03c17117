import CommandLineSupport
import JSON
import JobParts
import ReferenceModel
import SystemIO
import TensorCore
import Validation
import WeightSources

/// `smelt validate --part I/N`, `--finalize` and `--emit-sbatch`: the validation's units (one per weight,
/// per layer, or the forward passes) spread over N parts by the bytes they read; each part stores its
/// fragments in `REPORT.smelt-parts/`, and `--finalize` assembles the report a single run writes.
extension ValidateCommand {
  static func partsDirectory(report: String) -> PartsDirectory { PartsDirectory(report + ".smelt-parts") }

  /// Which units each part runs: every unit whole, largest first onto the least-loaded part.
  static func assignment(_ validator: Validator, _ units: [ValidationUnit], partCount: Int) -> [Int] {
    PartBalancer.assign(
      unitCosts: units.map { validator.cost(of: $0) }, fileOfUnit: Array(units.indices), partCount: partCount,
      allowCuttingFiles: false)
  }

  func description(_ validator: Validator, _ units: [ValidationUnit], partCount: Int) -> JobDescription {
    JobDescription(
      job: "validate", arguments: recorded, fingerprint: validator.inputFingerprint(units: units), partCount: partCount)
  }

  /// Runs this process's units, recording each fragment in the part's receipt.
  func runPart(_ validator: Validator, context: CommandContext) throws {
    guard let jsonPath else { return }
    let clock = ContinuousClock()
    let start = clock.now
    let part = split.part
    let units = validator.units()
    let assignment = Self.assignment(validator, units, partCount: part.count)
    let mine = units.indices.filter { assignment[$0] == part.index }
    let session = try PartSession(
      directory: Self.partsDirectory(report: jsonPath), description: description(validator, units, partCount: part.count),
      part: part, resume: resume)
    defer { session.release() }
    var done = Self.fragments(in: session.previous) ?? [:]
    done = done.filter { mine.contains($0.key) }
    if !done.isEmpty { context.log("part \(part): resuming, \(done.count) of \(mine.count) unit(s) already done") }
    var lastCheckpoint = clock.now
    for index in mine where done[index] == nil {
      do {
        done[index] = try validator.run(units[index]) { context.log($0) }
      } catch ReferenceModelError.invalidTokens(let reason) {
        throw UsageError.invalid("invalid token list: \(reason)")
      }
      if clock.now - lastCheckpoint > .seconds(10) {
        try session.store(data: Self.encode(done))
        lastCheckpoint = clock.now
      }
    }
    try validator.reference.source.checkUnchanged()
    try validator.candidate.source.checkUnchanged()
    try session.store(data: Self.encode(done))
    try session.finish()
    let bytes = mine.reduce(0) { $0 + validator.cost(of: units[$1]) }
    let elapsed = clock.now - start
    // A log, not a result: stdout is REPORT's JSON document under --json-file, which a part does not write.
    context.log(
      "part \(part): \(mine.count) of \(units.count) unit(s) (\(ByteCount.formatted(bytes)) of weights) in \(DisplayFormat.decimal(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)) s; run 'smelt validate --finalize \(jsonPath)' when all parts are done"
    )
  }

  /// `--finalize REPORT`: re-plans from the stored command, checks every part finished this job, assembles
  /// the fragments in order and publishes the report like a single run (then removes the parts' files).
  func finalize(report: String, context: CommandContext) throws {
    let directory = Self.partsDirectory(report: report)
    let stored = try directory.readDescription()
    guard stored.job == "validate", stored.arguments.count >= 2 else {
      throw PartsError.otherJob(directory: directory.path, stored: stored.job, this: "validate")
    }
    let command = try ValidateCommand(
      arguments: try ParsedArguments(Array(stored.arguments.dropFirst(2)), configuration: Self.configuration))
    let validator = try command.makeValidator()
    let units = validator.units()
    guard command.description(validator, units, partCount: stored.partCount) == stored else {
      throw PartsError.inputsChanged(directory: directory.path, part: JobPart(index: 0, of: stored.partCount), arguments: stored.arguments)
    }
    var fragments: [Int: ValidationFragment] = [:]
    for receipt in try directory.finishedReceipts(for: stored) {
      guard let found = Self.fragments(in: receipt) else {
        throw PartsError.damaged(path: directory.path + "/" + PartsDirectory.receiptFileName(receipt.part), reason: "its results cannot be read")
      }
      fragments.merge(found) { first, _ in first }
    }
    let missing = units.indices.filter { fragments[$0] == nil }
    guard missing.isEmpty else {
      let parts = Set(missing.map { Self.assignment(validator, units, partCount: stored.partCount)[$0] }).sorted()
      throw PartsError.partsUnfinished(
        directory: directory.path, parts: parts.map { JobPart(index: $0, of: stored.partCount) }, arguments: stored.arguments)
    }
    let merged = validator.assemble(units.indices.compactMap { fragments[$0] })
    var publisher = command
    publisher.allRows = allRows
    try directory.removeBookkeeping()
    try? FileSystem.remove(directory.path)
    try publisher.publish(merged, context: context, reportFile: report)
  }

  /// Writes the Slurm script: the array of parts and the finalize job.
  func emitScript(_ validator: Validator, context: CommandContext) throws {
    guard let script = split.script, let jsonPath else { return }
    let units = validator.units()
    let assignment = Self.assignment(validator, units, partCount: script.partCount)
    var peak = 0
    for part in 0..<script.partCount {
      peak = max(peak, validator.peakResidentBytes(units: units.indices.filter { assignment[$0] == part }.map { units[$0] }))
    }
    let part = ResourcePlan(cpus: script.cpus, peakResidentBytes: ResourcePlan.programBytes + peak)
    let finalize = ResourcePlan(cpus: 1, peakResidentBytes: ResourcePlan.programBytes + 2 * validator.peakResidentBytes(units: []))
    let reportPath = FileSystem.absolutePath(jsonPath)
    try split.writeScript(
      job: "validate", command: scriptCommand,
      finalizeCommand: [SplitJobOptions.executablePath(), "validate", "--finalize", reportPath], part: part, finalize: finalize,
      logDirectory: reportPath + ".logs",
      notes: ["\(units.count) units over \(script.partCount) parts, balanced by the bytes of weights each reads."],
      context: context)
  }

  // MARK: - Fragments in a receipt

  /// `{"units": [{"index": I, "fragment": …}]}`.
  static func encode(_ fragments: [Int: ValidationFragment]) -> JSONValue {
    let entries: [JSONValue] = fragments.keys.sorted().map { index in
      .object(members: [("index", .number(JSONNumber(index))), ("fragment", fragments[index]!.json)])
    }
    return .object(members: [("units", .array(entries))])
  }

  /// The fragments a receipt holds by unit index; `nil` when there is no receipt or it cannot be read.
  static func fragments(in receipt: PartReceipt?) -> [Int: ValidationFragment]? {
    guard let entries = receipt?.data?["units"]?.arrayValue else { return nil }
    var result: [Int: ValidationFragment] = [:]
    for entry in entries {
      guard let index = entry["index"]?.intValue, let json = entry["fragment"], let fragment = ValidationFragment(json: json) else {
        return nil
      }
      result[index] = fragment
    }
    return result
  }
}
