import JSON
import JobParts
import SystemIO

/// Where a conversion records each output file it completes, and finds those an interrupted run of the
/// same plan completed (for `--resume`): the single run's `ResumeJournal`, or a part's receipt
/// (`PartSession`).
public protocol ConversionJournal: Sendable {
  /// The outputs an earlier, interrupted run completed, by path.
  func completed() -> [String: PartOutput]
  /// Records `output` as complete.
  func record(_ output: PartOutput) throws
}

/// `OUT/.smelt-progress.json`: which output files a single run has completed, for `--resume`.
///
/// A file is recorded only after it was renamed into place, with its SHA-256; the journal is keyed by a
/// fingerprint of the plan, so a resumed run reuses nothing from a different command or input. It is
/// removed when the run completes.
struct ResumeJournal: ConversionJournal {
  let path: String
  let planFingerprint: String

  init(directory: String, planFingerprint: String) {
    path = FileSystem.join(directory, ".smelt-progress.json")
    self.planFingerprint = planFingerprint
  }

  /// The files completed by an earlier run of the same plan.
  func completed() -> [String: PartOutput] {
    guard let bytes = try? FileSystem.readFile(path), let value = try? JSONParser.parse(bytes),
      value["plan"]?.stringValue == planFingerprint, let files = value["files"]?.objectValue
    else { return [:] }
    var result: [String: PartOutput] = [:]
    for (name, entry) in files {
      guard let digest = entry["sha256"]?.stringValue, let count = entry["bytes"]?.intValue else { continue }
      result[name] = PartOutput(path: name, byteCount: count, sha256: digest)
    }
    return result
  }

  /// Starts a fresh journal.
  func reset() { write([:]) }

  /// Records `output` as complete.
  func record(_ output: PartOutput) {
    var files = completed()
    files[output.path] = output
    write(files)
  }

  func remove() { try? FileSystem.remove(path) }

  private func write(_ files: [String: PartOutput]) {
    let members = files.sorted { $0.key < $1.key }.map { name, output in
      (name, JSONValue.object(JSONObject(members: [
        ("sha256", .string(output.sha256)), ("bytes", .number(JSONNumber(output.byteCount))),
      ]) ?? JSONObject()))
    }
    let document: JSONValue = .object(
      JSONObject(members: [("plan", .string(planFingerprint)), ("files", .object(JSONObject(members: members) ?? JSONObject()))])
        ?? JSONObject())
    try? FileSystem.writeFileAtomically(JSONWriter().bytes(document), to: path)
  }
}
