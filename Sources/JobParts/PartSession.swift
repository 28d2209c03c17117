import JSON
import Synchronization
import SystemIO

/// One running part of a split job: joined to its job, holding its lock, and keeping its receipt — the
/// outputs completed so far (rewritten after each, so a killed part resumes from it) and, last, `finished`.
/// Safe to use from several threads (outputs are recorded as background digests finish).
public final class PartSession: Sendable {
  public let directory: PartsDirectory
  public let description: JobDescription
  public let part: JobPart
  /// The receipt an earlier, interrupted run of this part left (with `--resume`, same job only): the
  /// outputs it lists may be reused once checked, and stay listed until replaced.
  public let previous: PartReceipt?
  private let current: Mutex<PartReceipt>
  private let lock: FileLock

  /// Joins the job in `directory` (created if needed) as `part` and takes the part's lock.
  /// - Parameter resume: keep what an earlier run of this part recorded (`previous`); else start afresh.
  /// - Throws: `PartsError` when the job there is another one; `FileLock.HeldError` when the part runs
  ///   elsewhere right now.
  public init(directory: PartsDirectory, description: JobDescription, part: JobPart, resume: Bool) throws {
    precondition(description.partCount == part.count, "a part of the job's own part count")
    try FileSystem.createDirectory(directory.path)
    try directory.join(description, as: part)
    lock = try directory.lock(part, job: description.job)
    self.directory = directory
    self.description = description
    self.part = part
    let previous = resume ? directory.receipt(of: part, fingerprint: description.fingerprint) : nil
    self.previous = previous
    var receipt = previous ?? PartReceipt(job: description.job, fingerprint: description.fingerprint, part: part)
    receipt.finished = false
    current = Mutex(receipt)
  }

  /// The receipt as it stands.
  public var receipt: PartReceipt { current.withLock { $0 } }

  /// Records a completed output (replacing an earlier record of the same path) and stores the receipt.
  public func record(_ output: PartOutput) throws {
    try current.withLock { receipt in
      receipt.outputs.removeAll { $0.path == output.path }
      receipt.outputs.append(output)
      receipt.outputs.sort { $0.path < $1.path }
      try directory.write(receipt)
    }
  }

  /// Stores the part's non-file results (a validation part's comparisons so far).
  public func store(data: JSONValue?) throws {
    try current.withLock { receipt in
      receipt.data = data
      try directory.write(receipt)
    }
  }

  /// Marks the part finished: every output it owns is complete.
  public func finish() throws {
    try current.withLock { receipt in
      receipt.finished = true
      try directory.write(receipt)
    }
  }

  /// Releases the part's lock.
  public func release() { lock.release() }
}
