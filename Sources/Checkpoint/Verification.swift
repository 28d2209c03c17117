import Dispatch
import SafeTensors
import Synchronization
import SystemIO
import TensorCore

/// One problem (or, for warnings, a limit of what could be checked) found by `Verification.verify`.
public struct VerificationFinding: Sendable, Equatable, CustomStringConvertible {
  /// What kind of problem: a stable kebab-case code for scripts (`hash-mismatch`, `non-finite`, ...).
  public enum Code: String, Sendable, CaseIterable {
    case notADirectory = "not-a-directory"
    case noWeights = "no-weights"
    case invalidHeader = "invalid-header"
    case unreadableFile = "unreadable-file"
    case manifestMissing = "manifest-missing"
    case manifestInvalid = "manifest-invalid"
    case manifestTampered = "manifest-tampered"
    case fileMissing = "file-missing"
    case sizeMismatch = "size-mismatch"
    case hashMismatch = "hash-mismatch"
    case unlistedFile = "unlisted-file"
    case indexInvalid = "index-invalid"
    case indexNamesMissingFile = "index-names-missing-file"
    case indexTensorMissing = "index-tensor-missing"
    case tensorNotInIndex = "tensor-not-in-index"
    case fileNotInIndex = "file-not-in-index"
    case indexTotalSize = "index-total-size"
    case duplicateTensor = "duplicate-tensor"
    case incompleteRun = "incomplete-run"
    case inUse = "in-use"
    case nonFinite = "non-finite"
    case nonPositiveScale = "non-positive-scale"
    case placementMismatch = "placement-mismatch"
    case staleManifest = "stale-manifest"
    case unexplainedTensor = "unexplained-tensor"
    case configWithoutTensors = "config-without-tensors"
  }

  public var code: Code
  /// A warning does not fail verification (for example: no manifest, so no hashes to compare).
  public var isWarning: Bool
  /// The file concerned, relative to the directory.
  public var file: String?
  /// The tensor concerned.
  public var tensor: String?
  /// One lowercase line.
  public var message: String

  public init(_ code: Code, file: String? = nil, tensor: String? = nil, warning: Bool = false, _ message: String) {
    self.code = code
    self.isWarning = warning
    self.file = file
    self.tensor = tensor
    self.message = message
  }

  public var description: String { (isWarning ? "warning: " : "error: ") + message }
}

/// The result of verifying a directory.
public struct VerificationReport: Sendable {
  public var directory: String
  public var deep: Bool
  /// Files whose bytes were checked (hashed, or header-parsed without a manifest).
  public var checkedFileCount: Int
  /// Tensors whose headers were checked (and, with `deep`, whose values were scanned).
  public var checkedTensorCount: Int
  /// Problems, errors first, in a deterministic order.
  public var findings: [VerificationFinding]

  /// No errors (warnings allowed).
  public var isClean: Bool { !findings.contains { !$0.isWarning } }
  public var errors: [VerificationFinding] { findings.filter { !$0.isWarning } }
  public var warnings: [VerificationFinding] { findings.filter(\.isWarning) }
}

/// `smelt verify`: is this directory exactly what Smelt wrote, structurally sound, and (with `deep`)
/// numerically sane? See `formats/verify.md` for every check and its finding code.
///
/// Checks, in order, collecting every problem instead of stopping at the first:
/// 1. leftovers of an unfinished run (`.smelt-progress.json`, `.*.smelt-tmp`) and a live writer (lock held);
/// 2. `smelt-manifest.json`: its own checksum, then every listed file's presence, size and SHA-256, and
///    files present but not listed;
/// 3. every `*.safetensors` header with the strict parser;
/// 4. `model.safetensors.index.json` against the headers (files, tensors, `total_size`), or duplicate tensor
///    names across files when there is no index;
/// 5. with `deep`: every floating value finite, every scale tensor strictly positive.
///
/// Never modifies the directory.
public enum Verification {
  public static func verify(directory: String, deep: Bool) -> VerificationReport {
    var findings: [VerificationFinding] = []
    var report = VerificationReport(directory: directory, deep: deep, checkedFileCount: 0, checkedTensorCount: 0, findings: [])
    guard FileSystem.kind(of: directory) == .directory else {
      report.findings = [VerificationFinding(.notADirectory, "'\(directory)' is not a directory")]
      return report
    }
    let names: [String]
    do { names = try FileSystem.contents(of: directory) } catch {
      report.findings = [VerificationFinding(.unreadableFile, "\(error)")]
      return report
    }

    // 1. An unfinished or running job.
    if names.contains(".smelt-progress.json") {
      findings.append(VerificationFinding(
        .incompleteRun, file: ".smelt-progress.json",
        "an interrupted run's journal (.smelt-progress.json) is present: the output is incomplete; rerun the same command with --resume"))
    }
    for name in names where name.hasSuffix(".smelt-tmp") {
      findings.append(VerificationFinding(
        .incompleteRun, file: name, "temporary file '\(name)' is present: a run was interrupted or is still writing"))
    }
    // A FIFO, socket or device named like a part of a checkpoint: readers refuse it (never block on it).
    for name in names where !name.hasPrefix(".") {
      guard let status = FileSystem.status(of: FileSystem.join(directory, name)) else { continue }
      if status.kind != .regularFile && status.kind != .directory {
        findings.append(VerificationFinding(
          .unreadableFile, file: name, "'\(name)' is \(status.kind.phrase), not a regular file: no reader can use it"))
      }
    }
    if names.contains(DirectoryLock.fileName), DirectoryLock.isHeldByAnyone(directory: directory) {
      findings.append(VerificationFinding(.inUse, file: DirectoryLock.fileName, "a smelt process is writing this directory right now"))
    }

    // 2. The manifest: smelt's own (convert), or the one `smelt shard` writes over its device directories.
    // A directory holding both is a convert output written over a shard output (or the reverse): the
    // convert manifest, written last by a finished convert, wins, and the other is reported as stale.
    let visible = names.filter { !$0.hasPrefix(".") && FileSystem.kind(of: FileSystem.join(directory, $0)) == .file }
    let shardManifest = visible.contains(ShardManifest.fileName) ? ShardManifest.read(directory: directory) : nil
    if let shard = shardManifest, !visible.contains(OutputManifest.fileName) {
      return verifyShardOutput(directory: directory, deep: deep, manifest: shard, findings: findings)
    }
    if shardManifest != nil {
      findings.append(VerificationFinding(
        .staleManifest, file: ShardManifest.fileName,
        "\(ShardManifest.fileName) is a smelt shard manifest, but \(OutputManifest.fileName) says this is a convert output: one of them is left over from an earlier run; rerun the last command with --force"))
    }
    let manifestPath = FileSystem.join(directory, OutputManifest.fileName)
    var hashed = 0
    if visible.contains(OutputManifest.fileName) {
      do {
        let bytes = try FileSystem.readFile(manifestPath)
        let manifest = try OutputManifest(json: bytes, path: manifestPath)
        if let problem = manifest.selfCheckProblem(bytes) {
          findings.append(VerificationFinding(.manifestTampered, file: OutputManifest.fileName, "\(OutputManifest.fileName): \(problem)"))
        }
        findings += checkFiles(manifest.files, directory: directory)
        hashed = manifest.files.count
        let listed = Set(manifest.files.map(\.name))
        for name in visible where name != OutputManifest.fileName && !listed.contains(name) {
          findings.append(VerificationFinding(
            .unlistedFile, file: name, "'\(name)' is not listed in \(OutputManifest.fileName) (added after the run?)"))
        }
      } catch {
        findings.append(VerificationFinding(.manifestInvalid, file: OutputManifest.fileName, "\(error)"))
      }
    } else {
      findings.append(VerificationFinding(
        .manifestMissing, file: OutputManifest.fileName, warning: true,
        "no \(OutputManifest.fileName): file hashes were not checked (not a smelt output directory?)"))
    }

    // 3-5. Headers, index, values.
    let weights = checkWeights(directory: directory, prefix: "", visible: visible, deep: deep)
    findings += weights.findings
    findings += consumerFindings(directory: directory, headers: weights.headers)
    report.checkedFileCount = max(hashed, weights.fileCount)
    report.checkedTensorCount = weights.tensorCount
    report.findings = findings.filter { !$0.isWarning } + findings.filter(\.isWarning)
    return report
  }

  /// Steps 3-5 for one checkpoint directory; file names in findings get `prefix` (a device directory).
  ///
  /// `fileOwners` (file name → device) scopes the duplicate-name check to each device's files: a layout with
  /// every rank's file in one directory (`--layout deepseek-mp`) repeats replicated names by design.
  static func checkWeights(
    directory: String, prefix: String, visible: [String], deep: Bool, fileOwners: [String: String] = [:]
  ) -> (findings: [VerificationFinding], fileCount: Int, tensorCount: Int, headers: [String: SafeTensorsHeader]) {
    var findings: [VerificationFinding] = []
    let weightNames = visible.filter { $0.hasSuffix(".safetensors") }
    var opened: [(name: String, file: SafeTensorsFile)] = []
    for name in weightNames {
      do { opened.append((name, try SafeTensorsFile(path: FileSystem.join(directory, name)))) } catch {
        findings.append(VerificationFinding(.invalidHeader, file: prefix + name, "\(error)"))
      }
    }
    if weightNames.isEmpty {
      findings.append(VerificationFinding(.noWeights, "'\(directory)' contains no .safetensors files"))
    }
    let unreadable = Set(weightNames).subtracting(opened.map(\.name))
    for finding in checkIndex(directory: directory, visible: visible, opened: opened, unreadable: unreadable, fileOwners: fileOwners) {
      var finding = finding
      finding.file = finding.file.map { prefix + $0 }
      findings.append(finding)
    }
    if deep {
      let allNames = Set(opened.flatMap { $0.file.header.tensors.map(\.name) })
      for (name, file) in opened { findings += scanValues(file, name: prefix + name, tensorNames: allNames) }
    }
    var headers: [String: SafeTensorsHeader] = [:]
    for (name, file) in opened { headers[name] = file.header }
    return (findings, weightNames.count, opened.reduce(0) { $0 + $1.file.header.tensors.count }, headers)
  }

  /// `smelt shard` output: `manifest.json` lists every file with its SHA-256; each device directory is a
  /// checkpoint of its own.
  static func verifyShardOutput(directory: String, deep: Bool, manifest: ShardManifest, findings initial: [VerificationFinding])
    -> VerificationReport
  {
    var findings = initial
    findings += manifest.problems.map { VerificationFinding(.manifestInvalid, file: ShardManifest.fileName, "\(ShardManifest.fileName): \($0)") }
    if let problem = manifest.selfCheckProblem {
      findings.append(VerificationFinding(.manifestTampered, file: ShardManifest.fileName, "\(ShardManifest.fileName): \(problem)"))
    }
    findings += checkFiles(manifest.files, directory: directory)
    let listed = Set(manifest.files.map(\.name))
    var tensorCount = 0
    var weightFiles = 0
    var directories = manifest.deviceDirectories
    if directories.isEmpty || directories.contains("") { directories = [""] + directories.filter { !$0.isEmpty } }
    findings += checkTopLevel(directory: directory, manifest: manifest, checksFiles: !directories.contains(""))
    findings += checkExpertMaps(manifest)
    for device in Set(directories).sorted() {
      let path = device.isEmpty ? directory : FileSystem.join(directory, device)
      let prefix = device.isEmpty ? "" : device + "/"
      let names = (try? FileSystem.contents(of: path)) ?? []
      for name in names where name.hasSuffix(".smelt-tmp") || name == ".smelt-progress.json" {
        findings.append(VerificationFinding(.incompleteRun, file: prefix + name, "'\(prefix + name)' is left over from an interrupted run"))
      }
      let visible = names.filter { !$0.hasPrefix(".") && FileSystem.kind(of: FileSystem.join(path, $0)) == .file }
      for name in visible where !listed.contains(prefix + name) && !(device.isEmpty && name == ShardManifest.fileName) {
        findings.append(VerificationFinding(
          .unlistedFile, file: prefix + name, "'\(prefix + name)' is not listed in \(ShardManifest.fileName) (added after the run?)"))
      }
      if device.isEmpty && !manifest.deviceDirectories.contains("") && !visible.contains(where: { $0.hasSuffix(".safetensors") }) { continue }
      for name in names where !name.hasPrefix(".") && FileSystem.isDirectory(FileSystem.join(path, name)) && !device.isEmpty {
        findings.append(VerificationFinding(
          .unlistedFile, file: prefix + name, "directory '\(prefix + name)' is not part of the shard output (added after the run?)"))
      }
      // File name inside this directory → its device (`--layout deepseek-mp` shares one directory).
      let owners = Dictionary(
        manifest.fileOwners.compactMap { path, owner -> (String, String)? in
          let (parent, name) = path.contains("/") ? FileSystem.split(path) : ("", path)
          return parent == device ? (name, owner) : nil
        }, uniquingKeysWith: { first, _ in first })
      let weights = checkWeights(directory: path, prefix: prefix, visible: visible, deep: deep, fileOwners: owners)
      findings += weights.findings
      findings += consumerFindings(directory: path, headers: weights.headers, prefix: prefix)
      findings += checkPlacement(manifest, device: device, headers: weights.headers)
      tensorCount += weights.tensorCount
      weightFiles += weights.fileCount
    }
    return VerificationReport(
      directory: directory, deep: deep, checkedFileCount: max(manifest.files.count, weightFiles), checkedTensorCount: tensorCount,
      findings: findings.filter { !$0.isWarning } + findings.filter(\.isWarning))
  }

  /// Presence, size and SHA-256 of every file the manifest lists (hashed in parallel).
  static func checkFiles(_ files: [OutputManifest.File], directory: String) -> [VerificationFinding] {
    let results = Mutex([VerificationFinding?](repeating: nil, count: files.count))
    DispatchQueue.concurrentPerform(iterations: files.count) { i in
      let entry = files[i]
      let path = FileSystem.join(directory, entry.name)
      let finding: VerificationFinding?
      if FileSystem.kind(of: path) != .file {
        finding = VerificationFinding(.fileMissing, file: entry.name, "'\(entry.name)' is listed in the manifest but missing")
      } else {
        do {
          let size = try FileSystem.byteCount(of: path)
          if size != entry.byteCount {
            finding = VerificationFinding(
              .sizeMismatch, file: entry.name, "'\(entry.name)' has \(size) bytes, the manifest says \(entry.byteCount)")
          } else {
            let digest = try FileDigest.sha256(of: path)
            finding = digest == entry.sha256.lowercased()
              ? nil
              : VerificationFinding(
                .hashMismatch, file: entry.name,
                "'\(entry.name)' changed: SHA-256 is \(digest), the manifest says \(entry.sha256)")
          }
        } catch {
          finding = VerificationFinding(.unreadableFile, file: entry.name, "\(error)")
        }
      }
      results.withLock { $0[i] = finding }
    }
    return results.withLock { $0.compactMap { $0 } }
  }

  static func checkIndex(
    directory: String, visible: [String], opened: [(name: String, file: SafeTensorsFile)], unreadable: Set<String>,
    fileOwners: [String: String] = [:]
  ) -> [VerificationFinding] {
    var findings: [VerificationFinding] = []
    let indexName = "model.safetensors.index.json"
    // Where each tensor is, by the headers. A name may repeat only in files of different owning devices.
    var home: [String: String] = [:]
    var homeOnDevice: [String: [String: String]] = [:]
    for (name, file) in opened {
      let owner = fileOwners[name] ?? ""
      for entry in file.header.tensors {
        if let first = homeOnDevice[owner, default: [:]].updateValue(name, forKey: entry.name) {
          findings.append(VerificationFinding(
            .duplicateTensor, file: name, tensor: entry.name, "tensor '\(entry.name)' is in both '\(first)' and '\(name)'"))
        }
        if home[entry.name] == nil { home[entry.name] = name }
      }
    }
    guard visible.contains(indexName) else { return findings }
    let indexPath = FileSystem.join(directory, indexName)
    let index: CheckpointIndex
    do { index = try CheckpointIndex(json: try FileSystem.readFile(indexPath), path: indexPath) } catch {
      findings.append(VerificationFinding(.indexInvalid, file: indexName, "\(error)"))
      return findings
    }
    // The index names files by relative paths that loaders resolve (`./x.safetensors`, `sub/x.safetensors`):
    // compare by the normalized path, and read the files that live in subdirectories too.
    var opened = opened
    var visible = visible
    var indexFiles = Set<String>()
    var renamed: [String: String] = [:]
    for file in index.files {
      let normalized = normalizedRelativePath(file)
      renamed[file] = normalized
      indexFiles.insert(normalized)
      guard !visible.contains(normalized) else { continue }
      let path = FileSystem.join(directory, normalized)
      if FileSystem.kind(of: path) == .file, let header = try? SafeTensorsFile(path: path) {
        visible.append(normalized)
        opened.append((normalized, header))
        for entry in header.header.tensors where home[entry.name] == nil { home[entry.name] = normalized }
        continue
      }
      let count = index.weightMap.filter { $0.file == file }.count
      findings.append(VerificationFinding(
        .indexNamesMissingFile, file: file, "\(indexName) names '\(file)' (\(count) tensor(s)) but it does not exist"))
    }
    var listed = Set<String>()
    var reported = 0
    for (tensor, named) in index.weightMap {
      listed.insert(tensor)
      let file = renamed[named] ?? named
      guard visible.contains(file), !unreadable.contains(file), home[tensor] != file else { continue }
      reported += 1
      if reported <= 20 {
        let actual = home[tensor].map { "it is in '\($0)'" } ?? "no file has it"
        findings.append(VerificationFinding(
          .indexTensorMissing, file: file, tensor: tensor,
          "\(indexName) says tensor '\(tensor)' is in '\(file)', but \(actual)"))
      }
    }
    if reported > 20 {
      findings.append(VerificationFinding(.indexTensorMissing, "… and \(reported - 20) more tensor(s) missing from the files the index names"))
    }
    for (name, file) in opened {
      guard indexFiles.contains(name) else {
        findings.append(VerificationFinding(.fileNotInIndex, file: name, "'\(name)' is not named by \(indexName); loaders ignore it"))
        continue
      }
      let missing = file.header.tensors.filter { !listed.contains($0.name) }
      if let first = missing.first {
        findings.append(VerificationFinding(
          .tensorNotInIndex, file: name, tensor: first.name,
          "\(missing.count) tensor(s) of '\(name)' are not in \(indexName) (e.g. '\(first.name)')"))
      }
    }
    if unreadable.isEmpty, let declared = index.totalByteCount {
      let actual = opened.reduce(0) { $0 + $1.file.header.dataByteCount }
      if declared != actual {
        findings.append(VerificationFinding(
          .indexTotalSize, file: indexName, "\(indexName): metadata.total_size is \(declared) but the files hold \(actual) bytes of tensor data"))
      }
    }
    return findings
  }

  /// `--deep` for one file: NaN/infinity anywhere, non-positive scales (zero or non-finite for the signed
  /// MLX affine scales). `tensorNames`: every tensor of the checkpoint, to recognise MLX scales by their
  /// `biases`.
  static func scanValues(_ file: SafeTensorsFile, name: String, tensorNames: Set<String>) -> [VerificationFinding] {
    var findings: [VerificationFinding] = []
    for entry in file.header.tensors where entry.byteCount > 0 {
      let bytes = UnsafeRawBufferPointer(rebasing: file.mapping.bytes[file.header.fileRange(of: entry)])
      let position = { (index: Int) -> String in
        entry.shape.count >= 2 ? "element \(index) (\(unflatten(index, shape: entry.shape)))" : "element \(index)"
      }
      if ValueScan.isScale(entry.name, among: tensorNames) {
        if let problem = ValueScan.scaleProblem(entry.name, among: tensorNames, bytes: bytes, dtype: entry.dtype) {
          let bad = problem.bad
          findings.append(VerificationFinding(
            .nonPositiveScale, file: name, tensor: entry.name,
            "\(name): scale tensor '\(entry.name)' (\(entry.dtype) \(entry.shape)) has \(bad.count) value(s) that are not \(problem.expectation); first at \(position(bad.firstIndex)), bits \(bad.firstBits)"))
        }
      } else if let bad = ValueScan.nonFinite(bytes, dtype: entry.dtype) {
        findings.append(VerificationFinding(
          .nonFinite, file: name, tensor: entry.name,
          "\(name): tensor '\(entry.name)' (\(entry.dtype) \(entry.shape)) has \(bad.count) NaN/infinite value(s); first at \(position(bad.firstIndex)), bits \(bad.firstBits)"))
      }
    }
    do { try file.mapping.checkNotTruncated() } catch {
      // What was scanned after the truncation read as zeros: the scan proves nothing.
      findings.append(VerificationFinding(.unreadableFile, file: name, "\(error)"))
    }
    withExtendedLifetime(file) {}
    return findings
  }

  /// `path` without `.` components (`./a/./b.safetensors` → `a/b.safetensors`).
  static func normalizedRelativePath(_ path: String) -> String {
    path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }.joined(separator: "/")
  }

  /// `[row, column, ...]` of a flat row-major index.
  static func unflatten(_ index: Int, shape: [Int]) -> String {
    var rest = index
    var coordinates: [Int] = []
    for dim in shape.reversed() {
      guard dim > 0 else { return "\(index)" }
      coordinates.append(rest % dim)
      rest /= dim
    }
    return "[" + coordinates.reversed().map(String.init).joined(separator: ", ") + "]"
  }
}
