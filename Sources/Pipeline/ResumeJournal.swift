import JSON
import SystemIO

/// `OUT/.smelt-progress.json`: which output files a run has completed, for `--resume`.
///
/// A file is recorded only after it was renamed into place, with its SHA-256. The journal also records
/// what the run was made of: a fingerprint of its options (every job's action and output tensors), a
/// stamp per input file (size, times, header hash) and the command line. `--resume` refuses a journal
/// whose options or inputs differ (`mismatch()`), so a resumed output never mixes files of two plans or of
/// two versions of an input. It is removed when the run completes.
struct ResumeJournal {
  let path: String
  let planFingerprint: String
  /// Input file name → stamp (see `Checkpoint.inputStamps()`).
  let inputStamps: [(name: String, stamp: String)]
  /// The recorded command line of the run, for the message when another run tries to resume it.
  let commandLine: [String]

  init(directory: String, planFingerprint: String, inputStamps: [(name: String, stamp: String)], commandLine: [String]) {
    path = FileSystem.join(directory, ".smelt-progress.json")
    self.planFingerprint = planFingerprint
    self.inputStamps = inputStamps
    self.commandLine = commandLine
  }

  /// Why the journal in the directory cannot be resumed by this run: other options, or inputs that
  /// changed since it was written. `nil` when there is none (or it is unreadable: nothing is reused then)
  /// or it was written by this plan from these inputs.
  func mismatch() -> String? {
    guard let bytes = try? FileSystem.readFile(path), let value = try? JSONParser.parse(bytes) else { return nil }
    if value["plan"]?.stringValue != planFingerprint {
      let previous = value["command"]?.arrayValue?.compactMap(\.stringValue).joined(separator: " ")
      return "it holds an interrupted run with other options\(previous.map { " ('\($0)')" } ?? "")"
        + ", and resuming would mix the outputs of both"
    }
    let recorded = value["inputs"]?.objectValue.map { Dictionary($0.map { ($0.0, $0.1.stringValue ?? "") }, uniquingKeysWith: { a, _ in a }) } ?? [:]
    let current = Dictionary(inputStamps.map { ($0.name, $0.stamp) }, uniquingKeysWith: { a, _ in a })
    let changed = Set(recorded.keys).union(current.keys).filter { recorded[$0] != current[$0] }.sorted()
    guard changed.isEmpty else {
      return "input file(s) changed since the interrupted run (size, modification time or header): "
        + changed.prefix(5).joined(separator: ", ") + (changed.count > 5 ? " and \(changed.count - 5) more" : "")
        + "; files made from the old bytes would be mixed with new ones"
    }
    return nil
  }

  /// File name → SHA-256 of the files completed by an earlier run of the same plan from the same inputs.
  func load() -> [String: String] {
    guard mismatch() == nil, let bytes = try? FileSystem.readFile(path), let value = try? JSONParser.parse(bytes),
      let files = value["files"]?.objectValue
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
    let inputs = inputStamps.map { ($0.name, JSONValue.string($0.stamp)) }
    let document: JSONValue = .object(
      JSONObject(members: [
        ("plan", .string(planFingerprint)),
        ("inputs", .object(JSONObject(members: inputs) ?? JSONObject())),
        ("command", .array(commandLine.map { .string($0) })),
        ("files", .object(JSONObject(members: members) ?? JSONObject())),
      ]) ?? JSONObject())
    try? FileSystem.writeFileAtomically(JSONWriter().bytes(document), to: path)
  }
}
