import JSON
import SystemIO

/// One running part of a split job: joined to its job, holding its lock, and keeping its receipt — the
/// outputs completed so far (rewritten after each, so a killed part resumes from it) and, last, `finished`.
///
/// ```swift
/// let session = try PartSession(directory: parts, description: job, part: part, resume: resume)
/// defer { session.release() }
/// for output in myOutputs where session.previous?.outputs.contains(...) != true { ...; try session.record(output) }
/// try session.finish()
/// ```
public final class PartSession {
  public let directory: PartsDirectory
  public let description: JobDescription
  public let part: JobPart
  /// The receipt an earlier, interrupted run of this part left (with `--resume`, same job only).
  public let previous: PartReceipt?
  public private(set) var receipt: PartReceipt
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
    previous = resume ? directory.receipt(of: part, fingerprint: description.fingerprint) : nil
    receipt = PartReceipt(job: description.job, fingerprint: description.fingerprint, part: part)
  }

  /// The output `path` as an earlier run of this part recorded it, for `--resume` to reuse after checking it.
  public func previousOutput(_ path: String) -> PartOutput? {
    previous?.outputs.first { $0.path == path }
  }

  /// Records a completed output and stores the receipt.
  public func record(_ output: PartOutput) throws {
    receipt.outputs.removeAll { $0.path == output.path }
    receipt.outputs.append(output)
    try directory.write(receipt)
  }

  /// Replaces the part's non-file results; stored with the next `record`, `checkpoint` or `finish`.
  public func setData(_ data: JSONValue?) { receipt.data = data }

  /// Stores the receipt as it is now (a journal point of long work without files).
  public func checkpoint() throws { try directory.write(receipt) }

  /// Marks the part finished: every output it owns is complete.
  public func finish() throws {
    receipt.finished = true
    try directory.write(receipt)
  }

  /// Releases the part's lock.
  public func release() { lock.release() }
}
