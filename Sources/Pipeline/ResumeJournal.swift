import Checkpoint
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
/// A file is recorded only after it was renamed into place, with its SHA-256 and size. The journal also
/// records what the run was made of: a fingerprint of its options (every job's action and output tensors),
/// a stamp per input file (size, times, header hash) and the command line. `--resume` refuses a journal
/// whose options or inputs differ (`mismatch()`), so a resumed output never mixes files of two plans or of
/// two versions of an input. It is removed when the run completes.
struct ResumeJournal: ConversionJournal {
  let path: String
  let planFingerprint: String
  /// Input file name → stamp (see `Checkpoint.inputStamps()`).
  let inputStamps: [(name: String, stamp: String)]
  /// The recorded command line of the run, for the message when another run tries to resume it.
  let commandLine: [String]

  init(directory: String, planFingerprint: String, inputStamps: [(name: String, stamp: String)], commandLine: [String]) {
    self.init(
      path: FileSystem.join(directory, ".smelt-progress.json"), planFingerprint: planFingerprint, inputStamps: inputStamps,
      commandLine: commandLine)
  }

  /// A journal at `path` (a single-file output's: `.<name>.smelt-progress.json` beside it).
  init(path: String, planFingerprint: String, inputStamps: [(name: String, stamp: String)], commandLine: [String]) {
    self.path = path
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
      return "it holds a run (interrupted or finished) with other options\(previous.map { " ('\($0)')" } ?? "")"
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

  /// The files completed by an earlier run of the same plan from the same inputs.
  func completed() -> [String: PartOutput] { mismatch() == nil ? recordedFiles() : [:] }

  /// The files the journal lists, whatever run wrote it.
  private func recordedFiles() -> [String: PartOutput] {
    guard let bytes = try? FileSystem.readFile(path), let value = try? JSONParser.parse(bytes),
      let files = value["files"]?.objectValue
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
    // This run wrote the journal (reset, or resumed after `mismatch()` found it ours): no second check.
    var files = recordedFiles()
    files[output.path] = output
    write(files)
  }

  func remove() { try? FileSystem.remove(path) }

  private func write(_ files: [String: PartOutput]) {
    let members = files.sorted { $0.key < $1.key }.map { name, output in
      (name, JSONValue.object(members: [
        ("sha256", .string(output.sha256)), ("bytes", .number(JSONNumber(output.byteCount))),
      ]))
    }
    let inputs = inputStamps.map { ($0.name, JSONValue.string($0.stamp)) }
    let document: JSONValue = .object(members: [
      ("plan", .string(planFingerprint)),
      ("inputs", .object(members: inputs)),
      ("command", .array(commandLine.map { .string($0) })),
      ("files", .object(members: members)),
    ])
    try? FileSystem.writeFileAtomically(JSONWriter().bytes(document), to: path)
  }
}

/// `--resume` into a finished output: no journal is left, but the manifest lists every file the run made
/// with its SHA-256, and its `run` fingerprint says from which options and inputs. The files are offered for
/// reuse (each is re-hashed before it is), new completions go to the fresh journal.
struct FinishedRunJournal: ConversionJournal {
  let files: [String: PartOutput]
  let journal: ResumeJournal

  /// `nil` when `directory` holds an interrupted run's journal or no manifest (nothing finished to reuse) or a
  /// manifest without a run fingerprint (written by an older smelt: its files are rewritten).
  /// - Throws: `ConversionError.cannotResume` when the finished run had other options or other inputs.
  init?(directory: String, journal: ResumeJournal, fingerprint: String) throws {
    guard !FileSystem.exists(journal.path), let manifest = try? OutputManifest.read(from: directory),
      let recorded = manifest.runFingerprint
    else { return nil }
    guard recorded == fingerprint else {
      throw ConversionError.cannotResume(
        output: directory,
        reason: "it holds a finished run with other options or from other inputs ('\(manifest.commandLine.joined(separator: " "))')")
    }
    self.files = Dictionary(
      manifest.files.map { ($0.name, PartOutput(path: $0.name, byteCount: $0.byteCount, sha256: $0.sha256)) },
      uniquingKeysWith: { first, _ in first })
    self.journal = journal
  }

  func completed() -> [String: PartOutput] { files }
  func record(_ output: PartOutput) { journal.record(output) }
}
