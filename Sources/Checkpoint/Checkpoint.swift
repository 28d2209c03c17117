import Dispatch
import SafeTensors
import Synchronization
import SystemIO
import TensorCore

/// Where one tensor of a checkpoint lives.
public struct TensorLocation: Sendable {
  /// Index into `Checkpoint.files`.
  public var fileIndex: Int
  /// The file name relative to the checkpoint directory.
  public var fileName: String
  /// The tensor's header entry in that file.
  public var entry: TensorEntry
}

/// A safetensors checkpoint: one file, or a directory of shards with `model.safetensors.index.json`,
/// plus its `config.json`.
///
/// Opening maps every shard and validates every header (in parallel), but reads no tensor data: data is
/// reached lazily through zero-copy views. Tensors are resolved through the index, so a weight and its
/// scale may live in different files.
public final class Checkpoint: Sendable {
  /// The checkpoint directory.
  public let directory: String
  /// The shards, in index order (or sorted name order without an index).
  public let files: [SafeTensorsFile]
  /// File names relative to `directory`, parallel to `files`.
  public let fileNames: [String]
  /// The parsed index, when the checkpoint has one.
  public let index: CheckpointIndex?
  /// The parsed `config.json`, when present.
  public let config: ModelConfig?
  /// The model family `config.json` describes (`ModelFamily.generic` when none claims it, or without a config).
  public let family: ModelFamily
  /// Every tensor name, in index order (or file order).
  public let tensorNames: [String]
  /// Disagreements that do not prevent reading (files the index does not mention, tensors missing from
  /// the index, a wrong `total_size`), as sentences for `inspect` to show.
  public let warnings: [String]
  private let locations: [String: TensorLocation]
  /// Header entries in `tensorNames` order (built once: `entries` is read by every summary and plan).
  private let orderedEntries: [TensorEntry]

  /// Opens the checkpoint at `path`: a `.safetensors` file or a directory.
  ///
  /// - Throws: `CheckpointError` for layout problems, `SafeTensorsError`-carrying errors (with the file
  ///   path) for malformed shards, `SystemError` for I/O failures.
  public static func open(_ path: String) throws -> Checkpoint {
    guard let kind = FileSystem.kind(of: path) else { throw CheckpointError.notFound(path: path) }
    if kind == .file {
      let (directory, name) = FileSystem.split(path)
      return try Checkpoint(directory: directory, fileNames: [name], index: nil, indexPath: nil, configDirectory: directory)
    }
    guard kind == .directory else { throw CheckpointError.notFound(path: path) }
    let indexPath = FileSystem.join(path, "model.safetensors.index.json")
    if FileSystem.exists(indexPath) {
      let index = try CheckpointIndex(json: try FileSystem.readFile(indexPath), path: indexPath)
      return try Checkpoint(directory: path, fileNames: index.files, index: index, indexPath: indexPath, configDirectory: path)
    }
    let names = try FileSystem.contents(of: path).filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }
    guard !names.isEmpty else { throw CheckpointError.noWeights(directory: path) }
    return try Checkpoint(directory: path, fileNames: names, index: nil, indexPath: nil, configDirectory: path)
  }

  private init(
    directory: String, fileNames: [String], index: CheckpointIndex?, indexPath: String?, configDirectory: String
  ) throws {
    self.directory = directory
    self.fileNames = fileNames
    self.index = index
    var warnings: [String] = []

    if let index, let indexPath {
      for file in fileNames where !FileSystem.exists(FileSystem.join(directory, file)) {
        let named = index.weightMap.filter { $0.file == file }
        throw CheckpointError.missingShard(index: indexPath, file: file, tensorCount: named.count, example: named.first?.tensor ?? "")
      }
    }
    files = try Checkpoint.openAll(fileNames.map { FileSystem.join(directory, $0) })

    var locations: [String: TensorLocation] = [:]
    var fileOrder: [String] = []
    var fileOrderEntries: [TensorEntry] = []
    locations.reserveCapacity(files.reduce(0) { $0 + $1.header.tensors.count })
    for (fileIndex, file) in files.enumerated() {
      for entry in file.header.tensors {
        let location = TensorLocation(fileIndex: fileIndex, fileName: fileNames[fileIndex], entry: entry)
        if let previous = locations.updateValue(location, forKey: entry.name) {
          throw CheckpointError.duplicateTensor(name: entry.name, firstFile: previous.fileName, secondFile: fileNames[fileIndex])
        }
        fileOrder.append(entry.name)
        fileOrderEntries.append(entry)
      }
    }

    if let index, let indexPath {
      var names: [String] = []
      var entries: [TensorEntry] = []
      names.reserveCapacity(index.weightMap.count)
      entries.reserveCapacity(index.weightMap.count)
      for (tensor, file) in index.weightMap {
        guard let location = locations[tensor], location.fileName == file else {
          throw CheckpointError.tensorMissingFromShard(index: indexPath, tensor: tensor, file: file)
        }
        names.append(tensor)
        entries.append(location.entry)
      }
      // Every index entry resolved to a shard tensor. Index names are distinct (JSON keys), so when the
      // counts agree every shard tensor is listed; only otherwise is a set of the listed names needed.
      var unlisted: [String] = []
      if names.count != fileOrder.count {
        let mentioned = Set(names)
        unlisted = fileOrder.filter { !mentioned.contains($0) }
      }
      if !unlisted.isEmpty {
        warnings.append("\(unlisted.count) tensor(s) are in the shards but not in the index (e.g. '\(unlisted[0])'); they are readable but other tools will not see them")
        names.append(contentsOf: unlisted)
        entries.append(contentsOf: unlisted.compactMap { locations[$0]?.entry })
      }
      let actualTotal = files.reduce(0) { sum, file in sum + file.header.tensors.reduce(0) { $0 + $1.byteCount } }
      if let declared = index.totalByteCount, declared != actualTotal {
        warnings.append("the index's metadata.total_size is \(declared) but the shards hold \(actualTotal) bytes of tensor data")
      }
      let indexed = Set(fileNames)
      let others = (try? FileSystem.contents(of: directory))?.filter {
        $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") && !indexed.contains($0)
      } ?? []
      if !others.isEmpty {
        warnings.append("\(others.count) .safetensors file(s) in the directory are not named by the index and were ignored: \(others.prefix(3).joined(separator: ", "))")
      }
      tensorNames = names
      orderedEntries = entries
    } else {
      tensorNames = fileOrder
      orderedEntries = fileOrderEntries
    }
    self.locations = locations
    self.warnings = warnings

    let configPath = FileSystem.join(configDirectory, "config.json")
    config = FileSystem.exists(configPath) ? try ModelConfig(json: try FileSystem.readFile(configPath), path: configPath) : nil
    family = ModelFamily.detect(config)
    if let config { try family.check(config, path: configPath) }
  }

  /// Classifies this checkpoint's tensor names (`family` with `config.num_hidden_layers`).
  public var classifier: TensorClassifier { TensorClassifier(family: family, trunkLayerCount: config?.numHiddenLayers) }

  /// Maps and validates every file, several at a time (header parsing dominates on 163-shard checkpoints).
  private static func openAll(_ paths: [String]) throws -> [SafeTensorsFile] {
    let results = Mutex([Result<SafeTensorsFile, any Error>?](repeating: nil, count: paths.count))
    DispatchQueue.concurrentPerform(iterations: paths.count) { i in
      let result = Result { try SafeTensorsFile(path: paths[i]) }
      results.withLock { $0[i] = result }
    }
    return try results.withLock { all in try all.map { try $0!.get() } }
  }

  /// Where `name` lives, or `nil`.
  public func location(of name: String) -> TensorLocation? { locations[name] }

  /// True if the checkpoint has a tensor called `name`.
  public func contains(_ name: String) -> Bool { locations[name] != nil }

  /// The header entry of `name`.
  public func entry(_ name: String) throws -> TensorEntry {
    guard let location = locations[name] else { throw CheckpointError.unknownTensor(name: name, checkpoint: directory) }
    return location.entry
  }

  /// A zero-copy view of the tensor `name`.
  public func tensor(_ name: String) throws -> TensorView {
    guard let location = locations[name], let view = files[location.fileIndex].tensor(named: name) else {
      throw CheckpointError.unknownTensor(name: name, checkpoint: directory)
    }
    return view
  }

  /// All header entries, in `tensorNames` order.
  public var entries: [TensorEntry] { orderedEntries }

  /// Total bytes of tensor data.
  public var tensorByteCount: Int { files.reduce(0) { sum, file in sum + file.header.tensors.reduce(0) { $0 + $1.byteCount } } }

  /// Files in the directory that are not weights (config, tokenizer, generation config, code, ...): the
  /// ones a converter copies to its output. Hidden files and Smelt's own manifests are excluded.
  public func sidecarFiles() throws -> [String] {
    try FileSystem.contents(of: directory).filter { name in
      !name.hasPrefix(".") && !name.hasSuffix(".safetensors") && name != "model.safetensors.index.json"
        && name != "smelt-manifest.json" && FileSystem.kind(of: FileSystem.join(directory, name)) == .file
    }
  }
}
