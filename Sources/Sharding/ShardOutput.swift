import Checkpoint
import Pipeline
import SystemIO

/// The rules for `smelt shard`'s output directory, as for `convert`'s (`OutputDirectory`): never the input,
/// never a non-empty directory unless told (`--force`), never two writers at once, nothing stale left.
///
/// A single run holds the directory's lock exclusively from the check to the manifest. The parts of a
/// `--part I/N` job write the same directory at once, so each holds it shared: they exclude a single run
/// and `--finalize` (exclusive), not each other. A part may join a non-empty directory that holds its own
/// job (the same plan digest in `.smelt-shard-plan.json`); anything else needs `--force`. Stale files of
/// earlier runs are removed only under the exclusive lock, by a single run or `--finalize`.
public final class ShardOutput: Sendable {
  /// The output directory.
  public let directory: String
  /// What earlier runs wrote here (read before this run), for `removeStale`.
  public let previous: OutputDirectory.PreviousOutput
  private let lock: DirectoryLock
  private let shared: Bool

  /// Checks and locks `directory` for `plan` before anything is written into it.
  ///
  /// - Parameters:
  ///   - partCount: 1 for a single run (exclusive lock), N for a part of an N-part job (shared lock).
  ///   - force: allow a non-empty directory that does not hold this job (same-named files are replaced,
  ///     stale ones removed at the end).
  /// - Throws: `OutputDirectory.Refusal` (inside the input, overlapping it, not a directory),
  ///   `ShardingError.outputNotEmpty` / `.planMismatch`, `DirectoryLock.HeldError`.
  public init(_ plan: ShardPlan, sourcePath: String, directory: String, partCount: Int, force: Bool) throws {
    try OutputDirectory.refuseInsideInput(directory, input: sourcePath)
    try OutputDirectory.refuseOverlap(output: directory, inputs: [sourcePath] + ShardOutput.inputFiles(of: plan.source))
    try ShardWriter.ensureDirectory(directory)
    shared = partCount > 1
    lock = try DirectoryLock(directory: directory, access: shared ? .shared : .exclusive)
    self.directory = directory
    previous = OutputDirectory.previousOutput(in: directory)
    do {
      try checkContents(plan: plan, force: force)
    } catch {
      release()
      throw error
    }
  }

  /// Locks an existing output directory exclusively for `--finalize`.
  public init(finalizing directory: String) throws {
    self.directory = directory
    shared = false
    lock = try DirectoryLock(directory: directory, access: .exclusive)
    previous = OutputDirectory.previousOutput(in: directory)
  }

  /// Releases the lock (a shared holder leaves the lock file to the others).
  public func release() {
    if shared { lock.releaseKeepingFile() } else { lock.release() }
  }

  /// A non-empty directory is refused unless it holds this very job (a part joining the others) or
  /// `force` is given; temporary files of killed runs are removed.
  private func checkContents(plan: ShardPlan, force: Bool) throws {
    let names = try FileSystem.contents(of: directory).filter { $0 != DirectoryLock.fileName }
    for name in names where name.hasSuffix(".smelt-tmp") && !shared {
      try FileSystem.remove(FileSystem.join(directory, name))
    }
    // Another part may be storing the plan file right now (under a temporary name): that is this job.
    let existing = names.filter { !$0.hasSuffix(".smelt-tmp") }
    guard let first = existing.first, !force else { return }
    if shared, let stored = try? ShardPlanFile.read(outputDirectory: directory) {
      guard stored.planDigest == (try ShardPlanFile.digest(plan)) else {
        throw ShardingError.planMismatch(
          path: FileSystem.join(directory, ShardPlanFile.fileName),
          reason: "this directory holds parts of another plan (other inputs or options); use a fresh output directory, or pass --force to replace it")
      }
      return
    }
    throw ShardingError.outputNotEmpty(directory: directory, example: first)
  }

  /// After a complete run (`--finalize` or a single run, under the exclusive lock): removes what earlier
  /// runs left that this plan did not write.
  public func removeStale(plan: ShardPlan, result: ShardFinalizer.Result) throws {
    precondition(!shared, "stale files are removed under the exclusive lock only")
    let written = result.weightFiles.map(\.relativePath) + result.otherFiles.map(\.relativePath) + [ShardManifest.fileName]
    try OutputDirectory.removeStale(
      in: directory, keeping: Set(written + [ShardPlanFile.fileName]), previous: previous)
  }

  /// The files a shard job reads: every weight file, the index and config when present, the sidecars.
  static func inputFiles(of source: ShardSource) -> [String] {
    var paths = source.fileNames.map { FileSystem.join(source.directory, $0) }
    paths += (["model.safetensors.index.json", "config.json"] + source.sidecarFiles).map { FileSystem.join(source.directory, $0) }
    return paths.filter { FileSystem.exists($0) }
  }
}
