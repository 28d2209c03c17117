import Dispatch
import JSON
import SafeTensors
import Synchronization
import SystemIO
import TensorCore
import WeightFormats

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
/// scale may live in different files. Opening is linear in tensors: one hash index over all shard tensors
/// serves the index's keys (compared as bytes, never made into strings) and every later lookup.
public final class Checkpoint: Sendable {
  /// The checkpoint directory.
  public let directory: String
  /// The shards, in index order (or sorted name order without an index).
  public let files: [SafeTensorsFile]
  /// File names relative to `directory`, parallel to `files`.
  public let fileNames: [String]
  /// The parsed `config.json`, when present.
  public let config: ModelConfig?
  /// The model family `config.json` describes (`ModelFamily.generic` when none claims it, or without a config).
  public let family: ModelFamily
  /// What weight formats read from `config.json` (the FP8 block shape, the model dtype), read once.
  public let formatConfig: FormatConfig
  /// Every tensor name, in index order (or file order).
  public let tensorNames: [String]
  /// Disagreements that do not prevent reading (files the index does not mention, tensors missing from
  /// the index, a wrong `total_size`), as sentences for `inspect` to show.
  public let warnings: [String]
  /// `.safetensors` files in the directory that the index does not name (ignored when reading; jobs refuse
  /// them unless told, see `requireCompleteIndex()`).
  public let unindexedFiles: [String]
  /// Header entries in `tensorNames` order (built once: `entries` is read by every summary and plan).
  private let orderedEntries: [TensorEntry]
  /// The file of each tensor, in `tensorNames` order (an index into `files`).
  private let fileOfTensor: [Int32]
  /// `tensorNames` by name.
  private let tensorsByName: NameIndex
  /// What the index said besides its weight map, when there is one.
  private let indexInfo: IndexInfo?

  struct IndexInfo {
    /// How many leading `tensorNames` the index lists (the rest are unlisted shard tensors).
    var listedCount: Int
    var totalByteCount: Int?
    var metadata: JSONObject
  }

  /// True when the checkpoint was opened through `model.safetensors.index.json` (without building `index`).
  public var hasIndex: Bool { indexInfo != nil }

  /// The index, when the checkpoint has one: `weight_map` in the index's order, `total_size`, `metadata`.
  public var index: CheckpointIndex? {
    guard let indexInfo else { return nil }
    let weightMap = (0..<indexInfo.listedCount).map { p in (tensor: tensorNames[p], file: fileNames[Int(fileOfTensor[p])]) }
    return CheckpointIndex(weightMap: weightMap, totalByteCount: indexInfo.totalByteCount, metadata: indexInfo.metadata)
  }

  /// Opens the checkpoint at `path`: a `.safetensors` file or a directory.
  ///
  /// - Throws: `CheckpointError` for layout problems, `SafeTensorsError`-carrying errors (with the file
  ///   path) for malformed shards, `SystemError` for I/O failures.
  public static func open(_ path: String) throws -> Checkpoint {
    guard let kind = FileSystem.kind(of: path) else { throw CheckpointError.notFound(path: path) }
    if kind == .file {
      let (directory, name) = FileSystem.split(path)
      return try Checkpoint(directory: directory, shards: try Shards(directory: directory, fileNames: [name]), index: nil)
    }
    guard kind == .directory else { throw CheckpointError.notFound(path: path) }
    let indexPath = FileSystem.join(path, "model.safetensors.index.json")
    if FileSystem.exists(indexPath) {
      // The index text lives only until its keys are resolved (it is as large as all headers together).
      let (shards, listing) = try Checkpoint.openIndexed(directory: path, indexPath: indexPath)
      return try Checkpoint(directory: path, shards: shards, index: listing)
    }
    let names = try FileSystem.contents(of: path).filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }
    guard !names.isEmpty else { throw CheckpointError.noWeights(directory: path) }
    return try Checkpoint(directory: path, shards: try Shards(directory: path, fileNames: names), index: nil)
  }

  /// Reads the index, opens the shards it names and resolves its keys.
  private static func openIndexed(directory: String, indexPath: String) throws -> (Shards, IndexListing) {
    let bytes = try FileSystem.readFile(indexPath)
    return try bytes.withUnsafeBytes { text in
      guard let decoded = IndexDecoder.decode(text) else {
        let index = try CheckpointIndex(strictJSON: bytes, path: indexPath)
        let source = IndexSource(path: indexPath, text: UnsafeRawBufferPointer(start: nil, count: 0), decoded: IndexDecoder(index))
        return try source.open(directory: directory)
      }
      do {
        return try IndexSource(path: indexPath, text: text, decoded: decoded).open(directory: directory)
      } catch {
        // Problems of the index itself come first, as the strict parse (before any shard was opened)
        // reports them; only a well-formed index lets the shard's error through.
        _ = try CheckpointIndex(strictJSON: bytes, path: indexPath)
        throw error
      }
    }
  }

  private init(directory: String, shards: Shards, index: IndexListing?) throws {
    self.directory = directory
    self.files = shards.files
    self.fileNames = shards.fileNames
    let tensorCount = shards.tensorCount
    var names: [String] = []
    var entries: [TensorEntry] = []
    var fileOfTensor: [Int32] = []
    names.reserveCapacity(tensorCount)
    entries.reserveCapacity(tensorCount)
    fileOfTensor.reserveCapacity(tensorCount)
    var warnings: [String] = []
    var unindexed: [String] = []
    if let index {
      for global in index.order {
        let file = shards.fileIndex(ofGlobalPosition: Int(global))
        let entry = shards.files[file].header.tensors[Int(global) - shards.fileStarts[file]]
        names.append(entry.name)
        entries.append(entry)
        fileOfTensor.append(Int32(file))
      }
      warnings = index.warnings
      let indexed = Set(fileNames)
      let others = (try? FileSystem.contents(of: directory))?.filter {
        $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") && !indexed.contains($0)
      } ?? []
      unindexed = others
      if !others.isEmpty {
        warnings.append("\(others.count) .safetensors file(s) in the directory are not named by the index and were ignored: \(others.prefix(3).joined(separator: ", "))")
      }
      indexInfo = IndexInfo(listedCount: index.listedCount, totalByteCount: index.totalByteCount, metadata: index.metadata)
    } else {
      for (number, file) in files.enumerated() {
        let tensors = file.header.tensors
        for entry in tensors {
          names.append(entry.name)
          entries.append(entry)
        }
        fileOfTensor.append(contentsOf: repeatElement(Int32(number), count: tensors.count))
      }
      indexInfo = nil
    }
    // One name index over every tensor; a name in two files is refused (reported in file order).
    var tensorsByName = NameIndex(capacity: names.count)
    for position in names.indices {
      if tensorsByName.insert(names[position], position: position, nameAt: { names[$0] }) != nil {
        try shards.checkDistinctNames()
      }
    }
    tensorNames = names
    orderedEntries = entries
    self.fileOfTensor = fileOfTensor
    self.tensorsByName = tensorsByName
    self.warnings = warnings
    self.unindexedFiles = unindexed

    let configPath = FileSystem.join(directory, "config.json")
    config = FileSystem.exists(configPath) ? try ModelConfig(json: try FileSystem.readFile(configPath), path: configPath) : nil
    family = ModelFamily.detect(config)
    formatConfig = FormatConfig(config?.raw)
    if let config { try family.check(config, path: configPath) }
  }

  /// Classifies this checkpoint's tensor names (`family` with `config.num_hidden_layers`).
  public var classifier: TensorClassifier { TensorClassifier(family: family, trunkLayerCount: config?.numHiddenLayers) }

  /// Where `name` lives, or `nil`.
  public func location(of name: String) -> TensorLocation? {
    guard let p = position(of: name) else { return nil }
    let file = Int(fileOfTensor[p])
    return TensorLocation(fileIndex: file, fileName: fileNames[file], entry: orderedEntries[p])
  }

  /// The position of `name` in `tensorNames` (and `entries`), or `nil`.
  public func position(of name: String) -> Int? { tensorsByName.position(of: name, nameAt: { tensorNames[$0] }) }

  /// The index into `files` of the tensor at `position` in `tensorNames`.
  public func fileIndex(ofTensorAt position: Int) -> Int { Int(fileOfTensor[position]) }

  /// The header entry of `name`, or `nil` (`location(of:)` without the file).
  public func entry(named name: String) -> TensorEntry? {
    position(of: name).map { orderedEntries[$0] }
  }

  /// True if the checkpoint has a tensor called `name`.
  public func contains(_ name: String) -> Bool { position(of: name) != nil }

  /// The header entry of `name`.
  public func entry(_ name: String) throws -> TensorEntry {
    guard let location = location(of: name) else { throw CheckpointError.unknownTensor(name: name, checkpoint: directory) }
    return location.entry
  }

  /// A zero-copy view of the tensor `name`.
  public func tensor(_ name: String) throws -> TensorView {
    guard let location = location(of: name) else { throw CheckpointError.unknownTensor(name: name, checkpoint: directory) }
    return files[location.fileIndex].tensor(location.entry)
  }

  /// All header entries, in `tensorNames` order.
  public var entries: [TensorEntry] { orderedEntries }

  /// Total bytes of tensor data.
  public var tensorByteCount: Int { files.reduce(0) { sum, file in sum + file.header.dataByteCount } }
}

/// The shards of a checkpoint, opened. A tensor's "global position" counts the files' tensors one file
/// after another.
private struct Shards {
  let fileNames: [String]
  let files: [SafeTensorsFile]
  /// The global position of each file's first tensor, plus the total at the end.
  let fileStarts: [Int]

  /// Opens and validates every file, in parallel (header parsing dominates on 163-shard checkpoints).
  init(directory: String, fileNames: [String]) throws {
    self.fileNames = fileNames
    let paths = fileNames.map { FileSystem.join(directory, $0) }
    let results = Mutex([Result<SafeTensorsFile, any Error>?](repeating: nil, count: paths.count))
    DispatchQueue.concurrentPerform(iterations: paths.count) { i in
      let result = Result { try SafeTensorsFile(path: paths[i]) }
      results.withLock { $0[i] = result }
    }
    files = try results.withLock { all in try all.map { try $0!.get() } }
    var fileStarts: [Int] = [0]
    fileStarts.reserveCapacity(files.count + 1)
    for file in files { fileStarts.append(fileStarts.last! + file.header.tensors.count) }
    self.fileStarts = fileStarts
  }

  var tensorCount: Int { fileStarts.last! }

  /// The file holding global position `global`: the last file whose start is ≤ it (files may be empty,
  /// so starts can repeat).
  func fileIndex(ofGlobalPosition global: Int) -> Int {
    var low = 0
    var high = fileStarts.count - 1
    while high - low > 1 {
      let mid = (low + high) / 2
      if fileStarts[mid] <= global { low = mid } else { high = mid }
    }
    return low
  }

  func name(atGlobalPosition global: Int) -> String {
    let file = fileIndex(ofGlobalPosition: global)
    return files[file].header.tensors[global - fileStarts[file]].name
  }

  /// Throws `duplicateTensor` for the first name (in file order) that a later file repeats.
  func checkDistinctNames() throws {
    var index = NameIndex(capacity: tensorCount)
    for (number, file) in files.enumerated() {
      for (local, entry) in file.header.tensors.enumerated() {
        if let earlier = index.insert(entry.name, position: fileStarts[number] + local, nameAt: name(atGlobalPosition:)) {
          throw CheckpointError.duplicateTensor(
            name: entry.name, firstFile: fileNames[fileIndex(ofGlobalPosition: earlier)], secondFile: fileNames[number])
        }
      }
    }
  }
}

/// What an index contributes once resolved against the shards: the tensor order and the warnings.
private struct IndexListing {
  /// Global positions in `tensorNames` order: the index's entries, then unlisted shard tensors.
  var order: [Int32]
  var listedCount: Int
  var totalByteCount: Int?
  var metadata: JSONObject
  var warnings: [String]
}

/// A decoded index and the text its keys point into (valid while the index is being resolved).
private struct IndexSource {
  let path: String
  let text: UnsafeRawBufferPointer
  let decoded: IndexDecoder

  func withKey<R>(_ k: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    decoded.withKey(decoded.entries[k], in: text, body)
  }

  func key(_ k: Int) -> String { withKey(k) { String(decoding: $0, as: UTF8.self) } }

  /// The keys of the entries naming file `number`, in index order.
  func keys(inFile number: Int) -> [String] {
    decoded.entries.indices.filter { Int(decoded.entries[$0].file) == number }.map(key)
  }

  /// Opens the shards the index names (all must exist) and resolves every key to a tensor of the shard
  /// the index names for it.
  func open(directory: String) throws -> (Shards, IndexListing) {
    let fileNames = decoded.files
    for (number, file) in fileNames.enumerated() where !FileSystem.exists(FileSystem.join(directory, file)) {
      let named = keys(inFile: number)
      throw CheckpointError.missingShard(index: path, file: file, tensorCount: named.count, example: named.first ?? "")
    }
    let shards = try Shards(directory: directory, fileNames: fileNames)
    let tensorCount = shards.tensorCount
    var listed = [Bool](repeating: false, count: tensorCount)
    var order: [Int32] = []
    order.reserveCapacity(tensorCount)
    for k in decoded.entries.indices {
      // Each key is looked up in the header of the file the index names for it (read in place in its file:
      // a header bound to a local would be copied per key).
      let fileNumber = Int(decoded.entries[k].file)
      let file = shards.files[fileNumber]
      guard let local = withKey(k, { file.header.position(ofUTF8: $0) }) else {
        // A name in two files is reported first, as the shards were indexed before the keys resolved.
        try shards.checkDistinctNames()
        throw CheckpointError.tensorMissingFromShard(index: path, tensor: key(k), file: fileNames[fileNumber])
      }
      let global = shards.fileStarts[fileNumber] + local
      // A repeated key (the strict parse, which the caller runs on any error, names it precisely).
      guard !listed[global] else {
        throw CheckpointError.invalidIndex(path: path, reason: "weight_map lists '\(key(k))' twice")
      }
      listed[global] = true
      order.append(Int32(global))
    }
    var warnings: [String] = []
    // Every index entry resolved to a distinct shard tensor, so when the counts agree every shard tensor
    // is listed.
    let listedCount = order.count
    if listedCount != tensorCount {
      let unlisted = listed.indices.filter { !listed[$0] }
      warnings.append("\(unlisted.count) tensor(s) are in the shards but not in the index (e.g. '\(shards.name(atGlobalPosition: unlisted[0]))'); they are readable but other tools will not see them")
      order.append(contentsOf: unlisted.map { Int32($0) })
    }
    let actualTotal = shards.files.reduce(0) { sum, file in sum + file.header.dataByteCount }
    if let declared = decoded.totalByteCount, declared != actualTotal {
      warnings.append("the index's metadata.total_size is \(declared) but the shards hold \(actualTotal) bytes of tensor data")
    }
    let listing = IndexListing(
      order: order, listedCount: listedCount, totalByteCount: decoded.totalByteCount, metadata: decoded.metadata,
      warnings: warnings)
    return (shards, listing)
  }
}
