import JSON
import SystemIO

/// The bookkeeping a split job keeps in its directory while its parts run — the job description, one
/// receipt and one lock per part — and the rules every job (convert, shard, validate) follows with it:
///
/// - a part **joins** the job: the first to start stores the description, every other compares its own
///   and refuses if any option, input or the part count differs;
/// - a part holds its own **lock** while it runs, so one part never runs twice at once, and records each
///   output it completes in its **receipt** (its `--resume` journal), marking it finished last;
/// - `--finalize` requires all N receipts, finished, for this job, checks every output against them, writes
///   what depends on all parts (index, manifest, merged report) and **removes the bookkeeping**, so the
///   directory ends byte-identical to a single run's.
public struct PartsDirectory: Sendable {
  /// The job's directory (convert's and shard's OUT; validate's `REPORT.smelt-parts`).
  public let path: String

  public init(_ path: String) { self.path = path }

  public static let descriptionFileName = ".smelt-job.json"
  static let partPrefix = ".smelt-part-"

  public static func receiptFileName(_ part: JobPart) -> String { "\(partPrefix)\(part.number)-of-\(part.count).json" }
  public static func lockFileName(_ part: JobPart) -> String { "\(partPrefix)\(part.number)-of-\(part.count).lock" }

  /// Whether `name` (in the top level of a job directory) is bookkeeping of a split job.
  public static func isBookkeeping(_ name: String) -> Bool {
    name == descriptionFileName || (name.hasPrefix(partPrefix) && (name.hasSuffix(".json") || name.hasSuffix(".lock")))
      || name.hasSuffix(".smelt-link")
  }

  var descriptionPath: String { FileSystem.join(path, Self.descriptionFileName) }
  func receiptPath(_ part: JobPart) -> String { FileSystem.join(path, Self.receiptFileName(part)) }

  /// Whether a split job has started here.
  public var holdsSplitJob: Bool { FileSystem.exists(descriptionPath) }

  // MARK: - Parts

  /// Joins the job as part `part`: stores `description` if this is the first part to start, else checks
  /// that the stored one is the same job (same options, inputs and part count).
  public func join(_ description: JobDescription, as part: JobPart) throws(PartsError) {
    let bytes = JSONWriter(pretty: true).bytes(description.json) + [0x0A]
    do {
      if try FileSystem.createExclusively(bytes, at: descriptionPath) { return }
    } catch {
      throw .io(path: descriptionPath, reason: "\(error)")
    }
    let stored = try readDescription()
    guard stored.job == description.job else {
      throw .otherJob(directory: path, stored: stored.job, this: description.job)
    }
    guard stored.partCount == description.partCount else {
      throw .otherPartCount(directory: path, stored: stored.partCount, part: part)
    }
    guard stored.arguments == description.arguments else {
      throw .otherOptions(directory: path, part: part, stored: stored.arguments, this: description.arguments)
    }
    guard stored.fingerprint == description.fingerprint else {
      throw .inputsChanged(directory: path, part: part, arguments: stored.arguments)
    }
  }

  /// Takes part `part`'s lock.
  public func lock(_ part: JobPart, job: String) throws -> FileLock {
    try FileLock(path: FileSystem.join(path, Self.lockFileName(part)), holder: "part \(part) of this \(job) job")
  }

  /// Part `part`'s receipt for the job `fingerprint`, or `nil` when there is none or it belongs to another
  /// job (then `--resume` starts the part afresh).
  public func receipt(of part: JobPart, fingerprint: String) -> PartReceipt? {
    guard let receipt = try? readReceipt(receiptPath(part)), receipt.fingerprint == fingerprint, receipt.part == part else {
      return nil
    }
    return receipt
  }

  /// Stores `receipt` (atomically: a reader sees the old or the new one).
  public func write(_ receipt: PartReceipt) throws(PartsError) {
    let target = receiptPath(receipt.part)
    do { try FileSystem.writeFileAtomically(JSONWriter(pretty: true).bytes(receipt.json) + [0x0A], to: target) } catch {
      throw .io(path: target, reason: "\(error)")
    }
  }

  // MARK: - Finalize

  /// The stored job description.
  public func readDescription() throws(PartsError) -> JobDescription {
    guard FileSystem.exists(descriptionPath) else { throw .noSplitJob(directory: path) }
    return try JobDescription(json: try parse(descriptionPath), path: descriptionPath)
  }

  /// Every part's receipt, after checking that all `description.partCount` parts finished this job.
  public func finishedReceipts(for description: JobDescription) throws(PartsError) -> [PartReceipt] {
    let names: [String]
    do { names = try FileSystem.contents(of: path) } catch { throw .io(path: path, reason: "\(error)") }
    for name in names where name.hasPrefix(Self.partPrefix) && name.hasSuffix(".json") {
      guard !name.hasSuffix("-of-\(description.partCount).json") else { continue }
      throw .damaged(path: FileSystem.join(path, name), reason: "a receipt of a job split into another number of parts than \(description.partCount); remove it")
    }
    var receipts: [PartReceipt] = []
    var unfinished: [JobPart] = []
    for index in 0..<description.partCount {
      let part = JobPart(index: index, of: description.partCount)
      let file = receiptPath(part)
      guard FileSystem.exists(file) else {
        unfinished.append(part)
        continue
      }
      let receipt = try readReceipt(file)
      guard receipt.job == description.job, receipt.fingerprint == description.fingerprint, receipt.part == part else {
        throw .damaged(path: file, reason: "written for another job than the one this directory holds")
      }
      if receipt.finished { receipts.append(receipt) } else { unfinished.append(part) }
    }
    guard unfinished.isEmpty else {
      throw .partsUnfinished(directory: path, parts: unfinished, arguments: description.arguments)
    }
    return receipts
  }

  /// Refuses while any of the job's `partCount` parts holds its lock (is running).
  public func refuseRunningParts(partCount: Int) throws(PartsError) {
    let running = (0..<partCount).map { JobPart(index: $0, of: partCount) }.filter {
      FileLock.isHeld(FileSystem.join(path, Self.lockFileName($0)))
    }
    guard running.isEmpty else { throw .busy(directory: path, reason: "part(s) \(running.map(\.description).joined(separator: ", ")) are still running") }
  }

  /// Removes the description, every receipt and every part lock (under the exclusive directory lock, once
  /// the result is complete).
  public func removeBookkeeping() throws(PartsError) {
    do {
      for name in try FileSystem.contents(of: path) where Self.isBookkeeping(name) {
        try FileSystem.remove(FileSystem.join(path, name))
      }
    } catch {
      throw .io(path: path, reason: "\(error)")
    }
  }

  private func readReceipt(_ file: String) throws(PartsError) -> PartReceipt {
    try PartReceipt(json: try parse(file), path: file)
  }

  private func parse(_ file: String) throws(PartsError) -> JSONValue {
    do { return try JSONParser.parse(try FileSystem.readFile(file, limit: 1 << 30)) } catch {
      throw .damaged(path: file, reason: "\(error)")
    }
  }
}

/// Why a part may not run, or a split job may not be finalized.
public enum PartsError: Error, Sendable, CustomStringConvertible {
  /// The directory holds a split job of another command.
  case otherJob(directory: String, stored: String, this: String)
  /// The siblings were started with another part count.
  case otherPartCount(directory: String, stored: Int, part: JobPart)
  /// The siblings were started with other options.
  case otherOptions(directory: String, part: JobPart, stored: [String], this: [String])
  /// Same options, but the inputs differ from what the first part saw.
  case inputsChanged(directory: String, part: JobPart, arguments: [String])
  /// `--finalize` on a directory where no split job ran.
  case noSplitJob(directory: String)
  /// `--finalize` before every part finished.
  case partsUnfinished(directory: String, parts: [JobPart], arguments: [String])
  /// An output differs from what its part recorded.
  case outputChanged(path: String, part: JobPart, reason: String)
  /// A bookkeeping file that cannot be read.
  case damaged(path: String, reason: String)
  /// Another process works in the directory right now.
  case busy(directory: String, reason: String)
  /// A job script cannot be written for this job.
  case unschedulable(reason: String)
  case io(path: String, reason: String)

  public var description: String {
    switch self {
    case .otherJob(let directory, let stored, let this):
      return "'\(directory)' holds the parts of a 'smelt \(stored)' job, not of 'smelt \(this)'; use another directory"
    case .otherPartCount(let directory, let stored, let part):
      return "'\(directory)' holds a job split into \(stored) parts, and this is part \(part): run every part with the same --part count (or start afresh in an empty directory)"
    case .otherOptions(let directory, let part, let stored, let this):
      return "part \(part) was given other options than its siblings in '\(directory)': \(Self.difference(stored, this)); every part must run the same command apart from --part (the job was started as: \(stored.joined(separator: " ")))"
    case .inputsChanged(let directory, let part, let arguments):
      return "part \(part): the inputs changed since the job in '\(directory)' started (\(arguments.joined(separator: " "))); the parts would not fit together: start afresh in an empty directory"
    case .noSplitJob(let directory):
      return "'\(directory)' holds no split job (no \(PartsDirectory.descriptionFileName)): --finalize completes a job run with --part I/N"
    case .partsUnfinished(let directory, let parts, let arguments):
      let list = parts.prefix(20).map(\.description).joined(separator: ", ") + (parts.count > 20 ? ", …" : "")
      return "'\(directory)': \(parts.count) part(s) have not finished: \(list); run them (\(arguments.joined(separator: " ")) --part I/N --resume), then --finalize again"
    case .outputChanged(let path, let part, let reason):
      return "'\(path)' changed after part \(part) wrote it (\(reason)); rerun part \(part) (with --resume it redoes only what changed), then --finalize again"
    case .damaged(let path, let reason):
      return "'\(path)': \(reason)"
    case .busy(let directory, let reason):
      return "'\(directory)' is in use: \(reason); wait for it to finish"
    case .unschedulable(let reason):
      return "--emit-sbatch: \(reason)"
    case .io(let path, let reason):
      return "\(path): \(reason)"
    }
  }

  /// `--to bf16 instead of --to int4` style summary of the first differences between two argument lists.
  static func difference(_ stored: [String], _ this: [String]) -> String {
    let onlyStored = stored.filter { !this.contains($0) }
    let onlyThis = this.filter { !stored.contains($0) }
    if onlyStored.isEmpty && onlyThis.isEmpty { return "the same options in another order" }
    var parts: [String] = []
    if !onlyThis.isEmpty { parts.append("this part has \(onlyThis.joined(separator: " "))") }
    if !onlyStored.isEmpty { parts.append("the siblings have \(onlyStored.joined(separator: " "))") }
    return parts.joined(separator: ", ")
  }
}
