import Checkpoint
import SystemIO
import TensorCore

/// The rules for the directory a command writes: never the input, never a half-finished result mistaken
/// for a finished one, never two writers at once.
public enum OutputDirectory {
  /// Why an output directory was refused.
  public enum Refusal: Error, Sendable, CustomStringConvertible {
    case insideInput(output: String, input: String)
    /// An input file that really lives in the output directory (reached through a symbolic link, a
    /// directory of links or a bind mount), which writing the output would replace.
    case inputInsideOutput(output: String, input: String, resolved: String)
    /// An output file that is an input file (the same directory entry, or the file an input links to).
    case replacesInput(output: String, input: String)
    case notEmpty(output: String, example: String)
    case notADirectory(output: String)
    /// An output file (a GGUF) that already exists.
    case fileExists(String)
    /// The file system holding the output has less free space than the job plans to write.
    case insufficientSpace(output: String, plannedByteCount: Int, availableByteCount: Int)

    public var description: String {
      switch self {
      case .insideInput(let output, let input):
        return "output '\(output)' is the input '\(input)' or inside it; choose a directory outside the input (Smelt never modifies its input)"
      case .inputInsideOutput(let output, let input, let resolved):
        return "input '\(input)' is really '\(resolved)', inside the output directory '\(output)' (through a symbolic link or a bind mount); writing the output would destroy it: choose an output directory that holds none of the input's files (Smelt never modifies its input)"
      case .replacesInput(let output, let input):
        return "output file '\(output)' is the input file '\(input)' (or the file it links to); writing it would destroy the input: choose another path (Smelt never modifies its input)"
      case .notEmpty(let output, let example):
        return "output directory '\(output)' is not empty (it contains '\(example)'); pass --force to replace its contents or --resume to continue an interrupted run"
      case .notADirectory(let output):
        return "output '\(output)' exists and is not a directory"
      case .fileExists(let path):
        return "output file '\(path)' exists; pass --force to replace it or --resume to continue an interrupted run"
      case .insufficientSpace(let output, let planned, let available):
        return "not enough free space for '\(output)': the conversion plans to write \(ByteCount.formatted(planned)) "
          + "(\(planned) bytes) and the file system holding it has \(ByteCount.formatted(available)) (\(available) bytes) free; "
          + "free space or choose another output directory (--skip-space-check writes anyway)"
      }
    }
  }

  /// Refuses a job that plans to write `plannedByteCount` bytes into `output` (a directory or a file path, which
  /// need not exist yet) when the file system holding it has less free space; `availableByteCount` overrides
  /// the measured free space (tests).
  public static func checkFreeSpace(for output: String, plannedByteCount: Int, availableByteCount: Int? = nil) throws {
    let available = try availableByteCount ?? FileSystem.availableByteCount(at: FileSystem.nearestExisting(output))
    if plannedByteCount > available {
      throw Refusal.insufficientSpace(output: output, plannedByteCount: plannedByteCount, availableByteCount: available)
    }
  }

  /// Checks and creates `output`, then locks it. Returns the lock; release it when done.
  ///
  /// - Parameters:
  ///   - input: the input path (file or directory); `output` may be neither it nor inside it.
  ///   - inputFiles: every file the job reads (weights, index, config, sidecars): none may lie in `output`,
  ///     and `output` may not lie where any of them really is (see `refuseOverlap`).
  ///   - force: allow a non-empty output (its stale weight files are replaced).
  ///   - resume: allow a non-empty output holding an interrupted run.
  public static func prepare(
    _ output: String, input: String, inputFiles: [String] = [], force: Bool, resume: Bool
  ) throws -> DirectoryLock {
    try refuseInsideInput(output, input: input)
    try refuseOverlap(output: output, inputs: [input] + inputFiles)
    try FileSystem.createDirectory(output)
    let lock = try DirectoryLock(directory: output)
    let existing = try FileSystem.contents(of: output).filter { $0 != DirectoryLock.fileName && !$0.hasSuffix(".smelt-tmp") }
    if let first = existing.first, !force && !resume {
      lock.release()
      throw Refusal.notEmpty(output: output, example: first)
    }
    // Temporary files of a killed run are never complete: remove them.
    for name in try FileSystem.contents(of: output) where name.hasSuffix(".smelt-tmp") {
      try FileSystem.remove(FileSystem.join(output, name))
    }
    return lock
  }

  /// Refuses an `output` that is not a directory, or that is `input` (for a file input: its directory)
  /// or lies inside it, resolving symlinks and not-yet-created components. Creates nothing.
  public static func refuseInsideInput(_ output: String, input: String) throws {
    let inputRoot = FileSystem.canonicalPath(FileSystem.kind(of: input) == .file ? FileSystem.split(input).directory : input) ?? input
    if let kind = FileSystem.kind(of: output), kind != .directory { throw Refusal.notADirectory(output: output) }
    // Resolve the output through its nearest existing ancestor so that a not-yet-created directory
    // inside the input is caught too.
    var probe = output
    var suffix: [String] = []
    while !FileSystem.exists(probe) {
      let (parent, name) = FileSystem.split(probe)
      suffix.insert(name, at: 0)
      if parent == probe { break }
      probe = parent
    }
    let resolved = FileSystem.join([FileSystem.canonicalPath(probe) ?? probe] + suffix)
    if resolved == inputRoot || resolved.hasPrefix(inputRoot + "/") {
      throw Refusal.insideInput(output: output, input: input)
    }
  }

  /// Refuses an `output` that holds any of `inputs` or lies inside a directory one of them really lives
  /// in, by device and inode rather than by path, so that a symbolic link to an input (`lk/model.safetensors
  /// -> /d/m/model.safetensors` with output `/d/m`), a directory of such links, or a bind mount of the input
  /// directory is caught before anything is written. Creates nothing.
  public static func refuseOverlap(output: String, inputs: [String]) throws {
    if let outputIdentity = FileSystem.status(of: output)?.identity {
      for input in inputs where FileSystem.isWithin(input, directory: outputIdentity) {
        throw Refusal.inputInsideOutput(output: output, input: input, resolved: FileSystem.canonicalPath(input) ?? input)
      }
    }
    let anchor = FileSystem.nearestExisting(output)
    var homes = Set<FileIdentity>()
    for input in inputs {
      guard let resolved = FileSystem.canonicalPath(input), let status = FileSystem.status(of: resolved) else { continue }
      let home = status.kind == .directory ? resolved : FileSystem.split(resolved).directory
      guard let identity = FileSystem.status(of: home)?.identity, homes.insert(identity).inserted else { continue }
      if FileSystem.isWithin(anchor, directory: identity) { throw Refusal.insideInput(output: output, input: home) }
    }
  }

  /// Refuses an output *file* (`forward --output`, `validate --json`) whose directory entry is one of
  /// `inputs`, or the real file one of them links to: writing it would replace the input.
  public static func refuseReplacingInput(file output: String, inputs: [String]) throws {
    guard let target = FileSystem.entry(of: output) else { return }
    for input in inputs {
      let entries = [FileSystem.entry(of: input), FileSystem.canonicalPath(input).flatMap(FileSystem.entry(of:))]
      if entries.contains(where: { $0?.directory == target.directory && $0?.name == target.name }) {
        throw Refusal.replacesInput(output: output, input: input)
      }
    }
  }

  /// What earlier Smelt runs wrote into an output directory, by their manifests (read before this run
  /// replaces them), so that `removeStale` can remove what the new run does not write.
  public struct PreviousOutput: Sendable {
    /// Device directories of an earlier `smelt shard` run (`manifest.json`).
    public var deviceDirectories: [String] = []
    /// Files the earlier run's manifest lists (`smelt-manifest.json` or `manifest.json`), relative paths.
    public var files: [String] = []

    public init(deviceDirectories: [String] = [], files: [String] = []) {
      self.deviceDirectories = deviceDirectories
      self.files = files
    }
  }

  /// What the manifests in `output` say earlier runs wrote.
  public static func previousOutput(in output: String) -> PreviousOutput {
    var previous = PreviousOutput()
    if let shard = ShardManifest.read(directory: output) {
      previous.deviceDirectories = shard.deviceDirectories.filter { !$0.isEmpty && CheckpointIndex.isSafeRelativePath($0) }
      previous.files += shard.files.map(\.name)
    }
    if let convert = try? OutputManifest.read(from: output) { previous.files += convert.files.map(\.name) }
    return previous
  }

  /// Removes what earlier Smelt runs left in `output` that the finished run did not write, so that no
  /// loader, `verify` or `validate` mistakes it for part of the result: weight files and indexes (a
  /// re-run with fewer shards would otherwise leave orphans that loaders pick up), the other command's
  /// manifest and journals (a convert over a shard output, or the reverse), the files an earlier manifest
  /// lists (its copied config and tokenizer), and whole device directories of an earlier shard run that
  /// this run did not write. Files no Smelt run wrote are left alone.
  ///
  /// - Parameters:
  ///   - written: every path this run wrote, relative to `output` (`0/model-00001-of-00002.safetensors`).
  ///   - previous: from `previousOutput(in:)`, taken before the run.
  public static func removeStale(in output: String, keeping written: Set<String>, previous: PreviousOutput = PreviousOutput()) throws {
    let writtenDirectories = Set(written.compactMap { path in path.firstIndex(of: "/").map { String(path[..<$0]) } })
    for directory in Set(previous.deviceDirectories) where !writtenDirectories.contains(directory) {
      try FileSystem.removeTree(FileSystem.join(output, directory))
    }
    for file in Set(previous.files) where !written.contains(file) && CheckpointIndex.isSafeRelativePath(file) {
      let path = FileSystem.join(output, file)
      if FileSystem.status(of: path, followingLinks: false)?.kind == .regularFile { try FileSystem.remove(path) }
    }
    for directory in [""] + writtenDirectories.sorted() {
      let path = directory.isEmpty ? output : FileSystem.join(output, directory)
      let prefix = directory.isEmpty ? "" : directory + "/"
      for name in try FileSystem.contents(of: path) where !written.contains(prefix + name) {
        if isSmeltArtifact(name, in: path, topLevel: directory.isEmpty) {
          try FileSystem.remove(FileSystem.join(path, name))
        }
      }
    }
  }

  /// Whether `name` in `directory` is something only a Smelt run writes.
  static func isSmeltArtifact(_ name: String, in directory: String, topLevel: Bool) -> Bool {
    // A temporary file still there under the exclusive lock belongs to a writer that was killed.
    if name.hasSuffix(".smelt-tmp") { return true }
    if name.hasSuffix(".safetensors") || name == "model.safetensors.index.json" { return true }
    guard topLevel else { return false }
    switch name {
    case OutputManifest.fileName, ".smelt-progress.json", ".smelt-shard-plan.json": return true
    case ShardManifest.fileName: return ShardManifest.read(directory: directory) != nil
    default: return name.hasPrefix(".smelt-shard-part-") && name.hasSuffix(".json")
    }
  }
}
