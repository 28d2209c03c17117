import Checkpoint
import Dispatch
import JSON
import Pipeline
import SafeTensors
import Synchronization
import SystemIO
import TensorCore

/// Completes an output directory once all files are written: checks every planned file (present, exact
/// size, exact header, then SHA-256 of its bytes), writes each device's index, copies the sidecar files and
/// writes `manifest.json`.
public enum ShardFinalizer {
  /// What finalizing produced.
  public struct Result: Sendable {
    public var weightFiles: [ShardManifest.FileRecord]
    public var otherFiles: [ShardManifest.FileRecord]
    public var manifestPath: String
  }

  /// Finalizes `outputDirectory` for `plan`, written by `partCount` parts (for messages).
  ///
  /// - Parameter recorded: the SHA-256 each part recorded for the files it wrote (`PartReceipts`); a file
  ///   whose bytes differ now is refused (`ShardingError.outputChanged`), never certified.
  public static func finalize(
    _ plan: ShardPlan, outputDirectory: String, partCount: Int = 1,
    recorded: [String: (part: Int, sha256: String)] = [:], progress: (@Sendable (Int) -> Void)? = nil
  ) throws -> Result {
    let assignment = plan.partAssignment(partCount: partCount)
    var layoutList: [(headerBytes: [UInt8], fileByteCount: Int)] = []
    for i in plan.files.indices {
      let layout = try plan.layout(ofFile: i)
      layoutList.append((layout.headerBytes, layout.fileByteCount))
      let path = FileSystem.join(outputDirectory, plan.files[i].relativePath)
      guard FileSystem.kind(of: path) == .file else {
        throw ShardingError.outputMissing(path: path, part: assignment[i] + 1, partCount: partCount)
      }
    }
    let layouts = layoutList
    let hashes = Mutex([String?](repeating: nil, count: plan.files.count))
    let failure = Mutex<(any Error)?>(nil)
    let next = Atomic<Int>(0)
    let workers = max(1, min(Parallel.defaultThreadCount, 4, plan.files.count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
      while failure.withLock({ $0 == nil }) {
        let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
        guard i < plan.files.count else { break }
        do {
          let path = FileSystem.join(outputDirectory, plan.files[i].relativePath)
          let hash = try verifyAndHash(path, headerBytes: layouts[i].headerBytes, byteCount: layouts[i].fileByteCount, progress: progress)
          if let expected = recorded[plan.files[i].relativePath], expected.sha256 != hash {
            throw ShardingError.outputChanged(
              path: path, part: expected.part, partCount: partCount, recorded: expected.sha256, actual: hash)
          }
          hashes.withLock { $0[i] = hash }
        } catch {
          failure.withLock { if $0 == nil { $0 = error } }
        }
      }
    }
    if let error = failure.withLock({ $0 }) { throw error }
    let digests = hashes.withLock { $0 }
    let weightFiles = plan.files.indices.map { i in
      ShardManifest.FileRecord(relativePath: plan.files[i].relativePath, byteCount: layouts[i].fileByteCount, sha256: digests[i])
    }

    var otherFiles: [ShardManifest.FileRecord] = []
    func record(_ relativePath: String) throws {
      let path = FileSystem.join(outputDirectory, relativePath)
      let bytes = try FileSystem.readFile(path, limit: 1 << 30)
      otherFiles.append(.init(relativePath: relativePath, byteCount: bytes.count, sha256: SHA256.hex(of: bytes)))
    }
    if plan.options.layout == .deepSeekMP {
      // convert.py copies every `*token*` file next to the rank files.
      for name in plan.source.sidecarFiles.sorted() where name.contains("token") {
        try FileSystem.copyFile(FileSystem.join(plan.source.directory, name), to: FileSystem.join(outputDirectory, name))
        try record(name)
      }
    } else {
      for device in plan.devices {
        let directory = FileSystem.join(outputDirectory, device.directory)
        var weightMap: [(tensor: String, file: String)] = []
        for f in device.fileIndices {
          let fileName = FileSystem.split(plan.files[f].relativePath).name
          for t in plan.files[f].tensorIndices { weightMap.append((device.tensors[t].name, fileName)) }
        }
        let index = CheckpointIndex(weightMap: weightMap, totalByteCount: device.tensorByteCount)
        try FileSystem.writeFileAtomically(index.jsonBytes(), to: FileSystem.join(directory, "model.safetensors.index.json"))
        try record(device.directory + "/model.safetensors.index.json")
        for name in plan.source.sidecarFiles.sorted() {
          if name == "config.json", plan.options.dropMTP, let config = plan.source.config {
            let edited = ConversionPlan.withoutMTPLayers(config.raw)
            try FileSystem.writeFileAtomically(JSONWriter(pretty: true).bytes(.object(edited)) + [0x0A], to: FileSystem.join(directory, name))
            try record(device.directory + "/" + name)
            continue
          }
          try FileSystem.copyFile(FileSystem.join(plan.source.directory, name), to: FileSystem.join(directory, name))
          try record(device.directory + "/" + name)
        }
      }
    }
    let manifest = ShardManifest(plan, weightFiles: weightFiles, otherFiles: otherFiles)
    let manifestPath = FileSystem.join(outputDirectory, ShardManifest.fileName)
    try FileSystem.writeFileAtomically(manifest.sealedBytes, to: manifestPath)
    return Result(weightFiles: weightFiles, otherFiles: otherFiles, manifestPath: manifestPath)
  }

  /// Checks size and header, then hashes the file in bounded chunks.
  static func verifyAndHash(
    _ path: String, headerBytes: [UInt8], byteCount: Int, progress: (@Sendable (Int) -> Void)?
  ) throws -> String {
    let descriptor = try FileDescriptor.open(path, .readOnly)
    defer { descriptor.close() }
    let actual = try descriptor.byteCount()
    guard actual == byteCount else {
      throw ShardingError.outputDamaged(path: path, reason: "it has \(actual) bytes, the plan needs \(byteCount)")
    }
    var header = [UInt8](repeating: 0, count: headerBytes.count)
    try header.withUnsafeMutableBytes { try descriptor.read(into: $0, at: 0) }
    guard header == headerBytes else {
      throw ShardingError.outputDamaged(path: path, reason: "its safetensors header differs from the plan's (written by another plan or modified)")
    }
    return try FileDigest.sha256(of: descriptor, byteCount: byteCount, progress: progress)
  }
}

/// Runs a whole shard job: the plan file, the part's files, and (for a single run) finalization.
public enum ShardJob {
  /// Writes part `part` (0-based) of `partCount` into an output directory the caller checked and locked
  /// (`ShardOutput`): the plan file, the part's files and, for a part of several, its receipt with the
  /// SHA-256 of every file it wrote. Refuses a plan that does not fit before writing anything.
  /// - Parameter force: replace a plan file of another job (the caller's `--force`).
  /// - Returns: the indices (into `plan.files`) of the files written.
  @discardableResult
  public static func writePart(
    _ plan: ShardPlan, sourcePath: String, outputDirectory: String, part: Int = 0, of partCount: Int = 1,
    force: Bool = false, resume: Bool = false, progress: (@Sendable (Int) -> Void)? = nil
  ) throws -> [Int] {
    try plan.checkCapacities()
    try ShardWriter.ensureDirectory(outputDirectory)
    let planFile = try ShardPlanFile(plan: plan, sourcePath: sourcePath)
    try planFile.store(outputDirectory: outputDirectory, replacingOtherPlans: force)
    // One process per part: a second copy of the same task (a requeue racing the original) is refused.
    let partLock = try partCount > 1 ? PartReceipts.lock(outputDirectory: outputDirectory, part: part + 1, of: partCount) : nil
    defer { partLock?.release() }
    let written = try ShardWriter.write(plan, to: outputDirectory, part: part, of: partCount, resume: resume, progress: progress)
    if partCount > 1 {
      // Hashed now, while the bytes are fresh in the page cache: --finalize compares.
      let files = try written.map { index -> (path: String, sha256: String) in
        let path = plan.files[index].relativePath
        return (path, try FileDigest.sha256(of: FileSystem.join(outputDirectory, path)))
      }
      try PartReceipts.write(
        outputDirectory: outputDirectory, part: part + 1, of: partCount, planDigest: planFile.planDigest, files: files)
    }
    return written
  }

  /// Checks and locks the output (`ShardOutput`), writes part `part` (0-based) of `partCount`; a single run
  /// (`partCount == 1`) also finalizes and removes what earlier runs left.
  /// - Returns: the finalize result for a single run, `nil` for a part.
  @discardableResult
  public static func run(
    _ plan: ShardPlan, sourcePath: String, outputDirectory: String, part: Int = 0, of partCount: Int = 1,
    force: Bool = false, progress: (@Sendable (Int) -> Void)? = nil
  ) throws -> ShardFinalizer.Result? {
    try plan.checkCapacities()
    let output = try ShardOutput(plan, sourcePath: sourcePath, directory: outputDirectory, partCount: partCount, force: force)
    defer { output.release() }
    try writePart(plan, sourcePath: sourcePath, outputDirectory: outputDirectory, part: part, of: partCount, force: force, progress: progress)
    guard partCount == 1 else { return nil }
    let result = try ShardFinalizer.finalize(plan, outputDirectory: outputDirectory, partCount: 1)
    try output.removeStale(plan: plan, result: result)
    return result
  }

  /// `--finalize OUT`: re-derives the plan from the stored plan file and the source, checks it is the
  /// plan the parts wrote, that every part has finished and that every file is still what its part wrote,
  /// finalizes, removes the part receipts and what earlier runs left. Holds the directory exclusively.
  public static func finalize(outputDirectory: String, progress: (@Sendable (Int) -> Void)? = nil) throws -> (ShardPlan, ShardFinalizer.Result) {
    let output = try ShardOutput(finalizing: outputDirectory)
    defer { output.release() }
    let stored = try ShardPlanFile.read(outputDirectory: outputDirectory)
    let source = try ShardSource(checkpoint: try Checkpoint.open(stored.sourcePath))
    let plan = try ShardPlanner.plan(source, options: try stored.options())
    guard try ShardPlanFile.digest(plan) == stored.planDigest else {
      throw ShardingError.planMismatch(
        path: FileSystem.join(outputDirectory, ShardPlanFile.fileName),
        reason: "the checkpoint at '\(stored.sourcePath)' no longer gives the plan the parts were written with (it changed since)")
    }
    try PartReceipts.refuseRunningParts(outputDirectory: outputDirectory)
    let receipts = try PartReceipts.check(outputDirectory: outputDirectory, planDigest: stored.planDigest)
    let result = try ShardFinalizer.finalize(
      plan, outputDirectory: outputDirectory, partCount: receipts.partCount, recorded: receipts.files, progress: progress)
    try PartReceipts.removeAll(outputDirectory: outputDirectory)
    try output.removeStale(plan: plan, result: result)
    return (plan, result)
  }
}
