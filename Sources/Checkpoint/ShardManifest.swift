import JSON
import SystemIO
import TensorCore

/// `smelt shard`'s `OUT/manifest.json` (schema: `formats/shard-manifest.md`): the plan as written (source,
/// options, devices with their files' sizes and SHA-256, expert maps, skipped tensors, every output tensor's
/// placement and provenance). Sharding builds one from its plan and writes `sealedBytes`; `verify` and
/// `validate` read one with `read(directory:)`.
///
/// Reading is as lenient as the checks that use it: an entry that `verify` needs (a file, a device, a tensor,
/// an expert map) and cannot read is left out and reported in `problems`; a member no check needs (a count,
/// an option) that is absent or malformed reads as zero, empty or `nil`, and any such edit shows in
/// `selfCheckProblem`.
public struct ShardManifest: Sendable {
  /// The name of the manifest in the output directory.
  public static let fileName = "manifest.json"

  /// The checkpoint the output was made from.
  public struct Source: Sendable, Equatable {
    public var directory: String
    public var files: [String]
    public var tensorCount: Int
    public var tensorByteCount: Int

    public init(directory: String, files: [String], tensorCount: Int, tensorByteCount: Int) {
      self.directory = directory
      self.files = files
      self.tensorCount = tensorCount
      self.tensorByteCount = tensorByteCount
    }
  }

  /// The options the plan was made with, as `smelt shard` spells them.
  public struct Options: Sendable, Equatable {
    public var layout: String
    public var strategy: String
    public var tensorParallel: Bool
    public var redundantExpertCount: Int
    /// `--place` rule texts, in order.
    public var place: [String]
    public var maxFileByteCount: Int
    public var reserveByteCount: Int
    /// `--expert-load`: layer → per-expert counts, or `nil`.
    public var expertLoad: [Int: [Double]]?

    public init(
      layout: String, strategy: String, tensorParallel: Bool, redundantExpertCount: Int, place: [String],
      maxFileByteCount: Int, reserveByteCount: Int, expertLoad: [Int: [Double]]?
    ) {
      self.layout = layout
      self.strategy = strategy
      self.tensorParallel = tensorParallel
      self.redundantExpertCount = redundantExpertCount
      self.place = place
      self.maxFileByteCount = maxFileByteCount
      self.reserveByteCount = reserveByteCount
      self.expertLoad = expertLoad
    }
  }

  /// A written file: its path relative to the output directory, size and SHA-256 (hex; `nil` before it is
  /// hashed), and for a weight file the tensors it holds.
  public struct FileRecord: Sendable, Equatable {
    public var relativePath: String
    public var byteCount: Int
    public var sha256: String?
    public var tensorCount: Int?
    public var tensorByteCount: Int?

    public init(relativePath: String, byteCount: Int, sha256: String?, tensorCount: Int? = nil, tensorByteCount: Int? = nil) {
      self.relativePath = relativePath
      self.byteCount = byteCount
      self.sha256 = sha256
      self.tensorCount = tensorCount
      self.tensorByteCount = tensorByteCount
    }
  }

  /// One device: its budget, directory (`""` for deepseek-mp), figures and weight files.
  public struct Device: Sendable, Equatable {
    public var name: String
    /// `nil`: unlimited.
    public var capacityByteCount: Int?
    /// The capacity less the reserve; `nil`: unlimited.
    public var budgetByteCount: Int?
    public var directory: String
    public var tensorCount: Int
    public var tensorByteCount: Int
    public var expertByteCount: Int
    /// The summed load of the experts it holds (`--expert-load`), or `nil`.
    public var expertLoad: Double?
    public var files: [FileRecord]

    public init(
      name: String, capacityByteCount: Int?, budgetByteCount: Int?, directory: String, tensorCount: Int,
      tensorByteCount: Int, expertByteCount: Int, expertLoad: Double?, files: [FileRecord]
    ) {
      self.name = name
      self.capacityByteCount = capacityByteCount
      self.budgetByteCount = budgetByteCount
      self.directory = directory
      self.tensorCount = tensorCount
      self.tensorByteCount = tensorByteCount
      self.expertByteCount = expertByteCount
      self.expertLoad = expertLoad
      self.files = files
    }
  }

  /// Where one MoE layer's routed experts went.
  public struct MoELayer: Sendable {
    /// One copy of an expert: the device holding it and its index among that device's experts of the layer.
    public typealias Replica = (device: String, localIndex: Int)

    public var layer: Int
    /// Global expert indices.
    public var experts: [Int]
    /// `expert_to_devices`: each expert's copies (several when replicated).
    public var expertToDevices: [(expert: Int, replicas: [Replica])]
    /// `device_to_experts`: each device's experts in local-index order.
    public var deviceToExperts: [(device: String, experts: [Int])]

    public init(
      layer: Int, experts: [Int], expertToDevices: [(expert: Int, replicas: [Replica])],
      deviceToExperts: [(device: String, experts: [Int])]
    ) {
      self.layer = layer
      self.experts = experts
      self.expertToDevices = expertToDevices
      self.deviceToExperts = deviceToExperts
    }
  }

  /// One output tensor: where it is and what it was made from.
  public struct Tensor: Sendable, Equatable {
    /// A tensor-parallel slice, or a device's share of a fused `[E, ...]` expert tensor.
    public struct Slice: Sendable, Equatable {
      public var dim: Int
      public var start: Int
      public var count: Int
      /// The source positions along `dim` in the order stored, when they are not `start..<start + count`.
      public var indices: [Int]?

      public init(dim: Int, start: Int, count: Int, indices: [Int]?) {
        self.dim = dim
        self.start = start
        self.count = count
        self.indices = indices
      }
    }

    public var name: String
    public var device: String
    /// The file, relative to the output directory.
    public var file: String
    public var dtype: String
    public var shape: [Int]
    public var sourceFile: String
    /// The tensor's name in the source checkpoint.
    public var sourceName: String
    public var sourceDtype: String
    /// The source tensor's shape, given with `slice`.
    public var sourceShape: [Int]?
    public var slice: Slice?

    public init(
      name: String, device: String, file: String, dtype: String, shape: [Int], sourceFile: String, sourceName: String,
      sourceDtype: String, sourceShape: [Int]? = nil, slice: Slice? = nil
    ) {
      self.name = name
      self.device = device
      self.file = file
      self.dtype = dtype
      self.shape = shape
      self.sourceFile = sourceFile
      self.sourceName = sourceName
      self.sourceDtype = sourceDtype
      self.sourceShape = sourceShape
      self.slice = slice
    }
  }

  /// An entry of a read manifest that could not be read (`verify` reports it as `manifest-invalid`).
  public struct Problem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
      case deviceDirectory, fileEntry, noFiles, deviceEntry, tensorEntry, moeLayerEntry
    }
    public var kind: Kind
    public var description: String
  }

  public let source: Source
  public let options: Options
  /// In declaration order (a read manifest: the entries with a name and a directory).
  public let devices: [Device]
  public let moeLayers: [MoELayer]
  /// Source names not written (the MTP layer in deepseek-mp).
  public let skippedTensors: [String]
  /// The indexes and copied sidecar files.
  public let otherFiles: [FileRecord]
  /// Every output tensor in file order; `nil` for a document without the list.
  public let tensors: [Tensor]?

  /// Every file listed with its size and SHA-256: `other_files`, then each device entry's (a device entry
  /// `devices` leaves out included).
  public let files: [OutputManifest.File]
  /// The directory of every device entry that names a plain relative one (`""`: the output directory).
  public let deviceDirectories: [String]
  /// File path (as listed) → the device whose `files` list it: the owner of its tensors. Device directories
  /// alone cannot say it: `--layout deepseek-mp` puts every rank's file in the top directory.
  public let fileOwners: [String: String]
  /// Entries of a read manifest that could not be read; empty for one built from a plan.
  public let problems: [Problem]
  /// Why a read manifest is not exactly what smelt wrote (edited after the run), or `nil`.
  public let selfCheckProblem: String?

  /// A manifest with these contents (every file hashed, for `sealedBytes`; `sha256` may be `nil` in a
  /// document that is only digested or printed).
  public init(
    source: Source, options: Options, devices: [Device], moeLayers: [MoELayer], skippedTensors: [String],
    otherFiles: [FileRecord], tensors: [Tensor]?
  ) {
    self.source = source
    self.options = options
    self.devices = devices
    self.moeLayers = moeLayers
    self.skippedTensors = skippedTensors
    self.otherFiles = otherFiles
    self.tensors = tensors
    files = (otherFiles + devices.flatMap(\.files)).compactMap { record in
      record.sha256.map { OutputManifest.File(name: record.relativePath, sha256: $0, byteCount: record.byteCount) }
    }
    deviceDirectories = devices.map(\.directory)
    var owners: [String: String] = [:]
    for device in devices {
      for file in device.files where owners[file.relativePath] == nil { owners[file.relativePath] = device.name }
    }
    fileOwners = owners
    problems = []
    selfCheckProblem = nil
  }

  // MARK: - Reading

  /// The manifest of `directory`, or `nil` when there is none, it is larger than `byteLimit` or it is not a
  /// smelt shard manifest.
  public static func read(directory: String, byteLimit: Int = 512 << 20) -> ShardManifest? {
    guard let bytes = try? FileSystem.readFile(FileSystem.join(directory, fileName), limit: byteLimit) else { return nil }
    return ShardManifest(json: bytes)
  }

  /// Decodes a manifest, or `nil` when `bytes` are not JSON declaring `smelt.shard-manifest/1` (or the
  /// earlier `"format": "smelt-shard-manifest"`).
  public init?(json bytes: [UInt8]) {
    guard let value = try? bytes.withUnsafeBytes({ try JSONParser.parse($0) }),
      DocumentSchema.declares(DocumentSchema.shardManifest, value, legacyFormat: "smelt-shard-manifest")
    else { return nil }
    // Problems are reported in this order: device directories, file entries, devices, tensors, MoE layers.
    var directoryProblems: [Problem] = []
    var fileProblems: [Problem] = []
    var deviceProblems: [Problem] = []
    var directories: [String] = []
    var listed: [OutputManifest.File] = []
    func fileRecords(_ entries: [JSONValue]) -> [FileRecord] {
      var records: [FileRecord] = []
      for entry in entries {
        guard let path = entry["path"]?.stringValue, let byteCount = entry["bytes"]?.intValue, byteCount >= 0,
          let sha = entry["sha256"]?.stringValue, CheckpointIndex.isSafeRelativePath(path)
        else {
          fileProblems.append(Problem(kind: .fileEntry, description: "malformed file entry \(JSONWriter().string(entry))"))
          continue
        }
        records.append(FileRecord(
          relativePath: path, byteCount: byteCount, sha256: sha, tensorCount: entry["tensor_count"]?.intValue,
          tensorByteCount: entry["tensor_bytes"]?.intValue))
        listed.append(OutputManifest.File(name: path, sha256: sha, byteCount: byteCount))
      }
      return records
    }
    let otherFiles = fileRecords(value["other_files"]?.arrayValue ?? [])
    var devices: [Device] = []
    var owners: [String: String] = [:]
    for entry in value["devices"]?.arrayValue ?? [] {
      let directory = entry["directory"]?.stringValue
      if let directory {
        if directory.isEmpty || CheckpointIndex.isSafeRelativePath(directory) {
          directories.append(directory)
        } else {
          directoryProblems.append(Problem(kind: .deviceDirectory, description: "device directory '\(directory)' is not a plain relative path"))
        }
      }
      // A device entry without a name or directory still lists files to hash.
      let files = fileRecords(entry["files"]?.arrayValue ?? [])
      guard let name = entry["name"]?.stringValue, let directory else {
        deviceProblems.append(Problem(kind: .deviceEntry, description: "malformed device entry"))
        continue
      }
      // Ownership counts every listed path, a malformed file entry's too.
      for file in entry["files"]?.arrayValue ?? [] {
        if let path = file["path"]?.stringValue, owners[path] == nil { owners[path] = name }
      }
      devices.append(Device(
        name: name, capacityByteCount: entry["capacity_bytes"]?.intValue, budgetByteCount: entry["budget_bytes"]?.intValue,
        directory: directory, tensorCount: entry["tensor_count"]?.intValue ?? 0,
        tensorByteCount: entry["tensor_bytes"]?.intValue ?? 0, expertByteCount: entry["expert_bytes"]?.intValue ?? 0,
        expertLoad: entry["expert_load"]?.doubleValue, files: files))
    }
    var problems = directoryProblems + fileProblems
    if listed.isEmpty { problems.append(Problem(kind: .noFiles, description: "lists no files")) }
    problems += deviceProblems

    var tensors: [Tensor]?
    if let items = value["tensors"]?.arrayValue {
      var decoded: [Tensor] = []
      decoded.reserveCapacity(items.count)
      for item in items {
        guard let tensor = Self.tensor(item) else {
          problems.append(Problem(kind: .tensorEntry, description: "malformed tensor entry \(JSONWriter().string(item))"))
          continue
        }
        decoded.append(tensor)
      }
      tensors = decoded
    }
    var layers: [MoELayer] = []
    for item in value["moe_layers"]?.arrayValue ?? [] {
      guard let layer = Self.moeLayer(item) else {
        problems.append(Problem(kind: .moeLayerEntry, description: "malformed moe_layers entry"))
        continue
      }
      layers.append(layer)
    }

    let sourceValue = value["source"]
    source = Source(
      directory: sourceValue?["directory"]?.stringValue ?? "",
      files: sourceValue?["files"]?.arrayValue?.compactMap(\.stringValue) ?? [],
      tensorCount: sourceValue?["tensor_count"]?.intValue ?? 0, tensorByteCount: sourceValue?["tensor_bytes"]?.intValue ?? 0)
    options = Self.options(value["options"])
    self.devices = devices
    moeLayers = layers
    skippedTensors = value["skipped_tensors"]?.arrayValue?.compactMap(\.stringValue) ?? []
    self.otherFiles = otherFiles
    self.tensors = tensors
    files = listed
    deviceDirectories = directories
    fileOwners = owners
    self.problems = problems
    selfCheckProblem = Self.selfCheckProblem(bytes, value)
  }

  private static func tensor(_ item: JSONValue) -> Tensor? {
    guard let name = item["name"]?.stringValue, let device = item["device"]?.stringValue,
      let file = item["file"]?.stringValue, let dtype = item["dtype"]?.stringValue,
      let shape = item["shape"]?.arrayValue?.compactMap(\.intValue), let sourceName = item["source_name"]?.stringValue
    else { return nil }
    var slice: Tensor.Slice?
    if let value = item["slice"], let dim = value["dim"]?.intValue, let start = value["start"]?.intValue,
      let count = value["count"]?.intValue
    {
      slice = Tensor.Slice(dim: dim, start: start, count: count, indices: value["indices"]?.arrayValue?.compactMap(\.intValue))
    }
    return Tensor(
      name: name, device: device, file: file, dtype: dtype, shape: shape, sourceFile: item["source_file"]?.stringValue ?? "",
      sourceName: sourceName, sourceDtype: item["source_dtype"]?.stringValue ?? "",
      sourceShape: item["source_shape"]?.arrayValue?.compactMap(\.intValue), slice: slice)
  }

  private static func moeLayer(_ item: JSONValue) -> MoELayer? {
    guard let layer = item["layer"]?.intValue, let forward = item["expert_to_devices"]?.objectValue,
      let backward = item["device_to_experts"]?.objectValue
    else { return nil }
    var expertToDevices: [(expert: Int, replicas: [MoELayer.Replica])] = []
    for (key, slots) in forward {
      guard let expert = Int(key), let list = slots.arrayValue else { continue }
      expertToDevices.append((expert, list.compactMap { slot in
        slot["device"]?.stringValue.map { ($0, slot["local_index"]?.intValue ?? 0) }
      }))
    }
    return MoELayer(
      layer: layer, experts: item["experts"]?.arrayValue?.compactMap(\.intValue) ?? [], expertToDevices: expertToDevices,
      deviceToExperts: backward.map { ($0.key, $0.value.arrayValue?.compactMap(\.intValue) ?? []) })
  }

  private static func options(_ value: JSONValue?) -> Options {
    var load: [Int: [Double]]?
    if let object = value?["expert_load"]?.objectValue {
      load = [:]
      for (key, counts) in object {
        if let layer = Int(key) { load?[layer] = counts.arrayValue?.compactMap(\.doubleValue) ?? [] }
      }
    }
    return Options(
      layout: value?["layout"]?.stringValue ?? "", strategy: value?["strategy"]?.stringValue ?? "",
      tensorParallel: value?["tensor_parallel"]?.boolValue ?? false,
      redundantExpertCount: value?["redundant_experts"]?.intValue ?? 0,
      place: value?["place"]?.arrayValue?.compactMap(\.stringValue) ?? [],
      maxFileByteCount: value?["max_file_bytes"]?.intValue ?? 0, reserveByteCount: value?["reserve_bytes"]?.intValue ?? 0,
      expertLoad: load)
  }

  /// Why `bytes` (parsed as `value`) is not exactly what smelt writes (see `sealedBytes`): not in the
  /// canonical form, no `manifest_sha256`, or a checksum that does not match the contents.
  static func selfCheckProblem(_ bytes: [UInt8], _ value: JSONValue) -> String? {
    guard case .object(let object) = value, let recorded = object["manifest_sha256"]?.stringValue else {
      return "has no manifest_sha256 (edited, or written by an older smelt)"
    }
    let body = JSONWriter(pretty: true).bytes(.object(object.removing("manifest_sha256"))) + [0x0A]
    if SHA256.hex(of: body) != recorded {
      return "its contents do not match its manifest_sha256 (the manifest was changed after it was written: devices, placement or expert maps)"
    }
    if JSONWriter(pretty: true).bytes(value) + [0x0A] != bytes {
      return "is not byte-for-byte what smelt writes for its contents (the manifest was edited)"
    }
    return nil
  }

  // MARK: - Views for verify

  /// Per MoE layer: expert → device names (`expert_to_devices`) and device name → experts
  /// (`device_to_experts`); a repeated key keeps its last entry.
  public var expertMaps: [(layer: Int, expertToDevices: [Int: [String]], deviceToExperts: [String: [Int]])] {
    moeLayers.map { layer in
      (
        layer.layer,
        Dictionary(layer.expertToDevices.map { ($0.expert, $0.replicas.map(\.device)) }, uniquingKeysWith: { _, last in last }),
        Dictionary(layer.deviceToExperts.map { ($0.device, $0.experts) }, uniquingKeysWith: { _, last in last })
      )
    }
  }

  // MARK: - Writing

  /// The manifest document (pretty JSON member order as `formats/shard-manifest.md` lists it), without
  /// `manifest_sha256`.
  public func document() -> JSONValue {
    func int(_ n: Int) -> JSONValue { .number(JSONNumber(n)) }
    func number(_ x: Double) -> JSONValue { JSONNumber(x).map(JSONValue.number) ?? .null }
    func file(_ record: FileRecord) -> JSONValue {
      var members: [(String, JSONValue)] = [("path", .string(record.relativePath)), ("bytes", int(record.byteCount))]
      if let count = record.tensorCount { members.append(("tensor_count", int(count))) }
      if let bytes = record.tensorByteCount { members.append(("tensor_bytes", int(bytes))) }
      if let hash = record.sha256 { members.append(("sha256", .string(hash))) }
      return .object(members: members)
    }
    var loadValue: JSONValue = .null
    if let load = options.expertLoad {
      loadValue = .object(members: load.keys.sorted().map { layer in ("\(layer)", .array((load[layer] ?? []).map(number))) })
    }
    let optionsValue = JSONValue.object(members: [
      ("layout", .string(options.layout)),
      ("strategy", .string(options.strategy)),
      ("tensor_parallel", .bool(options.tensorParallel)),
      ("redundant_experts", int(options.redundantExpertCount)),
      ("place", .array(options.place.map { .string($0) })),
      ("max_file_bytes", int(options.maxFileByteCount)),
      ("reserve_bytes", int(options.reserveByteCount)),
      ("expert_load", loadValue),
    ])
    let devicesValue: [JSONValue] = devices.map { device in
      .object(members: [
        ("name", .string(device.name)),
        ("capacity_bytes", device.capacityByteCount.map(int) ?? .null),
        ("budget_bytes", device.budgetByteCount.map(int) ?? .null),
        ("directory", .string(device.directory)),
        ("tensor_count", int(device.tensorCount)),
        ("tensor_bytes", int(device.tensorByteCount)),
        ("expert_bytes", int(device.expertByteCount)),
        ("expert_load", device.expertLoad.map(number) ?? .null),
        ("files", .array(device.files.map(file))),
      ])
    }
    let layersValue: [JSONValue] = moeLayers.map { layer in
      .object(members: [
        ("layer", int(layer.layer)),
        ("experts", .array(layer.experts.map(int))),
        ("expert_to_devices", .object(members: layer.expertToDevices.map { expert, replicas in
          ("\(expert)", .array(replicas.map { .object(members: [("device", .string($0.device)), ("local_index", int($0.localIndex))]) }))
        })),
        ("device_to_experts", .object(members: layer.deviceToExperts.map { ($0.device, .array($0.experts.map(int))) })),
      ])
    }
    var members: [(String, JSONValue)] = [
      ("schema", .string(DocumentSchema.shardManifest)),
      ("source", .object(members: [
        ("directory", .string(source.directory)),
        ("files", .array(source.files.map { .string($0) })),
        ("tensor_count", int(source.tensorCount)),
        ("tensor_bytes", int(source.tensorByteCount)),
      ])),
      ("options", optionsValue),
      ("devices", .array(devicesValue)),
      ("moe_layers", .array(layersValue)),
      ("skipped_tensors", .array(skippedTensors.map { .string($0) })),
      ("other_files", .array(otherFiles.map(file))),
    ]
    if let tensors {
      members.append(("tensors", .array(tensors.map { tensor in
        var item: [(String, JSONValue)] = [
          ("name", .string(tensor.name)),
          ("device", .string(tensor.device)),
          ("file", .string(tensor.file)),
          ("dtype", .string(tensor.dtype)),
          ("shape", .array(tensor.shape.map(int))),
          ("source_file", .string(tensor.sourceFile)),
          ("source_name", .string(tensor.sourceName)),
          ("source_dtype", .string(tensor.sourceDtype)),
        ]
        if let sourceShape = tensor.sourceShape { item.append(("source_shape", .array(sourceShape.map(int)))) }
        if let slice = tensor.slice {
          var fields: [(String, JSONValue)] = [("dim", int(slice.dim)), ("start", int(slice.start)), ("count", int(slice.count))]
          if let indices = slice.indices { fields.append(("indices", .array(indices.map(int)))) }
          item.append(("slice", .object(members: fields)))
        }
        return .object(members: item)
      })))
    }
    return .object(members: members)
  }

  /// The manifest file's bytes: `document()` sealed (see `sealedBytes(_:)`).
  public var sealedBytes: [UInt8] { Self.sealedBytes(document()) }

  /// `document` (pretty JSON) with a last member `manifest_sha256`, the SHA-256 of the same document without
  /// it, so that `smelt verify` detects any edit of the manifest itself (a device renamed, a tensor moved, an
  /// expert map changed). See `selfCheckProblem`.
  public static func sealedBytes(_ document: JSONValue) -> [UInt8] {
    guard case .object(var object) = document else { return JSONWriter(pretty: true).bytes(document) + [0x0A] }
    let body = JSONWriter(pretty: true).bytes(document) + [0x0A]
    object["manifest_sha256"] = .string(SHA256.hex(of: body))
    return JSONWriter(pretty: true).bytes(.object(object)) + [0x0A]
  }
}
