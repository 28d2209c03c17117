import SafeTensors
import SystemIO
import TensorCore
import WeightFormats

/// The files beside the weights that a converter copies to its output (config, tokenizer, generation
/// config, code, ...), and the ones it must not copy.
///
/// Copying follows a rule, because a checkpoint directory is untrusted: a sidecar is copied only when it is
/// a regular file inside the checkpoint directory. A symbolic link is followed only when its target is a
/// regular file inside the directory, or, for a Hugging Face cache snapshot
/// (`…/models--ORG--NAME/snapshots/REV/`, whose every file is a link into `../../blobs/`), inside that
/// repository's blob store. Anything else (`leak.txt -> /etc/shadow`, a FIFO, a device, a directory) is
/// skipped and reported. Copies keep the source's permission bits, never wider (see `AtomicOutputFile`).
public struct SidecarListing: Sendable {
  /// Names (relative to the checkpoint directory) to copy, sorted.
  public var files: [String]
  /// Names not copied, each with the reason, for a note.
  public var skipped: [(name: String, reason: String)]

  /// One line per skipped file, for `note:` output.
  public var notes: [String] {
    skipped.map { "not copying '\($0.name)': \($0.reason)" }
  }
}

extension Checkpoint {
  /// Every file a job reads from this checkpoint, as the paths it reads them by: the weight files, the
  /// index and `config.json` when present, and the sidecars it would copy. Output-directory checks compare
  /// these against the output (`OutputDirectory.refuseOverlap`).
  public func inputFilePaths() throws -> [String] {
    var paths = files.map(\.path)
    for name in ["model.safetensors.index.json", "config.json"] where FileSystem.exists(FileSystem.join(directory, name)) {
      paths.append(FileSystem.join(directory, name))
    }
    paths += try sidecarFiles().map { FileSystem.join(directory, $0) }
    return paths
  }

  /// Throws `CheckpointError.incompleteIndex` when the index leaves out `.safetensors` files of the
  /// directory (unless `allowUnindexedFiles`), or names no tensor at all: a job would otherwise write a
  /// model missing those weights and exit 0.
  /// - Parameter override: the option that allows unindexed files, named in the message.
  public func requireCompleteIndex(allowUnindexedFiles: Bool, override: String?) throws {
    guard hasIndex else { return }
    let indexPath = FileSystem.join(directory, "model.safetensors.index.json")
    guard tensorNames.isEmpty || (!unindexedFiles.isEmpty && !allowUnindexedFiles) else { return }
    throw CheckpointError.incompleteIndex(
      index: indexPath, unindexedFiles: unindexedFiles, tensorCount: tensorNames.count,
      override: tensorNames.isEmpty ? nil : override)
  }

  /// Throws, naming the file, if a weight file changed while this checkpoint had it mapped: truncated (its
  /// lost pages read as zeros, see `MappedFile`) or, when `thorough`, rewritten in place or replaced (one
  /// `stat` per file). Jobs call it without `thorough` after each chunk of work and with it before they
  /// commit an output, so a changed input fails the job instead of reaching a result.
  public func checkInputsUnchanged(thorough: Bool = true) throws {
    for file in files {
      if thorough { try file.mapping.checkUnchanged() } else { try file.mapping.checkNotTruncated() }
    }
  }

  /// The input files as a resume fingerprint: per weight file its name and `inputStamps()` stamp.
  public func inputFingerprint() -> String {
    inputStamps().map { "\($0.name)|\($0.stamp);" }.joined()
  }

  /// Per weight file (in file order) a stamp of what it was when opened: its size, modification and status
  /// change times, and the SHA-256 of its header. A file rewritten in place (same size; its modification
  /// time restored or not) or re-headered gets another stamp.
  public func inputStamps() -> [(name: String, stamp: String)] {
    zip(fileNames, files).map { name, file in
      let header = UnsafeRawBufferPointer(rebasing: file.mapping.bytes[0..<min(file.header.dataStart, file.mapping.byteCount)])
      let mapping = file.mapping
      return (name, "\(mapping.byteCount)|\(mapping.modificationTime)|\(mapping.statusChangeTime)|\(SHA256.hex(of: Array(header)))")
    }
  }

  /// Throws unless every scale tensor of `group` holds what `smelt verify --deep` accepts (positive finite
  /// numbers; nonzero finite ones for MLX affine scales, which are signed), so that convert never turns a
  /// checkpoint verify calls corrupt into an output verify calls clean (or the reverse).
  public func checkScales(of group: WeightGroup) throws {
    let names = Set(group.parts.values)
    for name in names.sorted() where ValueScan.isScale(name, among: names) {
      guard let view = try? tensor(name),
        let problem = view.withUnsafeBytes({ ValueScan.scaleProblem(name, among: names, bytes: $0, dtype: view.dtype) })
      else { continue }
      throw CheckpointError.badScale(
        tensor: name, dtype: view.dtype.rawValue, count: problem.bad.count, firstIndex: problem.bad.firstIndex,
        bits: problem.bad.firstBits, expectation: problem.expectation)
    }
  }

  /// The sidecar files to copy (see `SidecarListing`). Hidden files, weights, the index and Smelt's own
  /// manifests are not sidecars.
  public func sidecarFiles() throws -> [String] { try sidecarListing().files }

  /// The sidecar files to copy and the ones skipped, with reasons.
  public func sidecarListing() throws -> SidecarListing {
    var listing = SidecarListing(files: [], skipped: [])
    let roots = Checkpoint.trustedRoots(of: directory)
    for name in try FileSystem.contents(of: directory) {
      guard !name.hasPrefix("."), !name.hasSuffix(".safetensors"), name != "model.safetensors.index.json",
        name != "smelt-manifest.json"
      else { continue }
      let path = FileSystem.join(directory, name)
      guard let entry = FileSystem.status(of: path, followingLinks: false) else { continue }
      switch entry.kind {
      case .regularFile:
        listing.files.append(name)
      case .directory:
        continue  // subdirectories are not part of a checkpoint's flat layout
      case .symbolicLink:
        guard let target = FileSystem.canonicalPath(path), let resolved = FileSystem.status(of: target) else {
          listing.skipped.append((name, "it is a symbolic link to nothing"))
          continue
        }
        guard roots.contains(where: { target.hasPrefix($0 + "/") }) else {
          listing.skipped.append((name, "it is a symbolic link to '\(target)', outside the checkpoint directory"))
          continue
        }
        guard resolved.kind == .regularFile else {
          if resolved.kind != .directory { listing.skipped.append((name, "it links to \(resolved.kind.phrase)")) }
          continue
        }
        listing.files.append(name)
      default:
        listing.skipped.append((name, "it is \(entry.kind.phrase), not a regular file"))
      }
    }
    return listing
  }

  /// The directories whose files a sidecar link may point into: the checkpoint directory itself and, in a
  /// Hugging Face cache snapshot, the repository's `blobs/`.
  static func trustedRoots(of directory: String) -> [String] {
    guard let real = FileSystem.canonicalPath(directory) else { return [] }
    var roots = [real]
    let (snapshots, _) = FileSystem.split(real)
    let (repository, snapshotsName) = FileSystem.split(snapshots)
    if snapshotsName == "snapshots", FileSystem.split(repository).name.hasPrefix("models--"),
      let blobs = FileSystem.canonicalPath(FileSystem.join(repository, "blobs"))
    {
      roots.append(blobs)
    }
    return roots
  }
}
