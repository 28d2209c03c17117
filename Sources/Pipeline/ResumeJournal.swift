import JSON
import SystemIO

/// `OUT/.smelt-progress.json`: which output files a run has completed, for `--resume`.
///
/// A file is recorded only after it was renamed into place, with its SHA-256; the journal is keyed by a
/// fingerprint of the plan, so a resumed run reuses nothing from a different command or input. It is
/// removed when the run completes.
struct ResumeJournal {
  let path: String
  let planFingerprint: String

  init(directory: String, planFingerprint: String) {
    self.init(path: FileSystem.join(directory, ".smelt-progress.json"), planFingerprint: planFingerprint)
  }

  /// A journal at `path` (a single-file output's: `.<name>.smelt-progress.json` beside it).
  init(path: String, planFingerprint: String) {
    self.path = path
    self.planFingerprint = planFingerprint
  }

  /// File name → SHA-256 of the files completed by an earlier run of the same plan.
  func load() -> [String: String] {
    guard let bytes = try? FileSystem.readFile(path), let value = try? JSONParser.parse(bytes),
      value["plan"]?.stringValue == planFingerprint, let files = value["files"]?.objectValue
    else { return [:] }
    var result: [String: String] = [:]
    for (name, digest) in files { if let digest = digest.stringValue { result[name] = digest } }
    return result
  }

  /// Starts a fresh journal.
  func reset() { write([:]) }

  /// Records `file` as complete.
  func record(_ file: String, sha256: String) {
    var files = load()
    files[file] = sha256
    write(files)
  }

  func remove() { try? FileSystem.remove(path) }

  private func write(_ files: [String: String]) {
    let members = files.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) }
    let document: JSONValue = .object(
      JSONObject(members: [("plan", .string(planFingerprint)), ("files", .object(JSONObject(members: members) ?? JSONObject()))])
        ?? JSONObject())
    try? FileSystem.writeFileAtomically(JSONWriter().bytes(document), to: path)
  }
}
