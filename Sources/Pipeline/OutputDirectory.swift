import SystemIO

/// The rules for the directory a command writes: never the input, never a half-finished result mistaken
/// for a finished one, never two writers at once.
public enum OutputDirectory {
  /// Why an output directory was refused.
  public enum Refusal: Error, Sendable, CustomStringConvertible {
    case insideInput(output: String, input: String)
    /// An input file that really lives in the output directory (reached through a symbolic link, a
    /// directory of links or a bind mount), which writing the output would replace.
    case inputInsideOutput(output: String, input: String, resolved: String)
    case notEmpty(output: String, example: String)
    case notADirectory(output: String)

    public var description: String {
      switch self {
      case .insideInput(let output, let input):
        return "output '\(output)' is the input '\(input)' or inside it; choose a directory outside the input (Smelt never modifies its input)"
      case .inputInsideOutput(let output, let input, let resolved):
        return "input '\(input)' is really '\(resolved)', inside the output directory '\(output)' (through a symbolic link or a bind mount); writing the output would destroy it: choose an output directory that holds none of the input's files (Smelt never modifies its input)"
      case .notEmpty(let output, let example):
        return "output directory '\(output)' is not empty (it contains '\(example)'); pass --force to replace its contents or --resume to continue an interrupted run"
      case .notADirectory(let output):
        return "output '\(output)' exists and is not a directory"
      }
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
    let existing = try FileSystem.contents(of: output).filter { $0 != ".smelt.lock" && !$0.hasSuffix(".smelt-tmp") }
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

  /// Removes weight files and indexes in `output` that a finished run did not write (a re-run with fewer
  /// shards would otherwise leave orphans that loaders pick up).
  public static func removeStale(in output: String, keeping written: Set<String>) throws {
    for name in try FileSystem.contents(of: output) where !written.contains(name) {
      if name.hasSuffix(".safetensors") || name == "model.safetensors.index.json" {
        try FileSystem.remove(FileSystem.join(output, name))
      }
    }
  }
}
