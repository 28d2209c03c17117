import Checkpoint
import JSON
import SafeTensors
import SystemIO
import TensorCore

/// `OUT/.smelt-shard-plan.json`: what `--finalize` needs to re-derive the plan (the source path and the
/// options) and a digest of the plan, so that a finalize over other inputs or options fails instead of
/// writing a wrong manifest. Every part, and a single run, writes the same bytes.
public struct ShardPlanFile: Sendable, Equatable {
  public static let fileName = ".smelt-shard-plan.json"

  public var sourcePath: String
  public var planDigest: String
  /// The options as the manifest records them, plus the devices.
  public var optionsDocument: JSONValue

  /// Describes `plan`, read from `sourcePath`.
  public init(plan: ShardPlan, sourcePath: String) throws(ShardingError) {
    self.sourcePath = sourcePath
    self.planDigest = try ShardPlanFile.digest(plan)
    self.optionsDocument = ShardPlanFile.optionsDocument(plan.options)
  }

  /// The SHA-256 of the manifest document without hashes: every device, file size and tensor placement.
  public static func digest(_ plan: ShardPlan) throws(ShardingError) -> String {
    var records: [ShardManifest.FileRecord] = []
    for (i, file) in plan.files.enumerated() {
      records.append(.init(relativePath: file.relativePath, byteCount: try plan.layout(ofFile: i).fileByteCount, sha256: nil))
    }
    let bytes = JSONWriter().bytes(ShardManifest.document(plan, weightFiles: records))
    return SHA256.hex(of: bytes)
  }

  static func optionsDocument(_ options: ShardOptions) -> JSONValue {
    var load: JSONValue = .null
    if let expertLoad = options.expertLoad {
      load = .object(members: expertLoad.counts.keys.sorted().map { layer in
        ("\(layer)", .array((expertLoad.counts[layer] ?? []).map { JSONNumber($0).map(JSONValue.number) ?? .null }))
      })
    }
    return .object(members: [
      ("devices", .array(options.devices.map { device in
        .object(members: [("name", .string(device.name)), ("capacity_bytes", device.capacityByteCount.map { .number(JSONNumber($0)) } ?? .null)])
      })),
      ("layout", .string(options.layout.rawValue)),
      ("strategy", .string(options.strategy.rawValue)),
      ("tensor_parallel", .bool(options.tensorParallel)),
      ("redundant_experts", .number(JSONNumber(options.redundantExpertCount))),
      ("place", .array(options.rules.map { .string($0.text) })),
      ("max_file_bytes", .number(JSONNumber(options.maxFileByteCount))),
      ("reserve_bytes", .number(JSONNumber(options.reserveByteCount))),
      ("expert_load", load),
    ])
  }

  /// The options recorded in the file.
  public func options() throws(ShardingError) -> ShardOptions {
    let path = ShardPlanFile.fileName
    func bad(_ what: String) -> ShardingError { .planMismatch(path: path, reason: "unreadable plan: \(what)") }
    guard let object = optionsDocument.objectValue, let deviceList = object["devices"]?.arrayValue,
      let layout = object["layout"]?.stringValue.flatMap(ShardLayout.init(rawValue:)),
      let strategy = object["strategy"]?.stringValue.flatMap(ExpertStrategy.init(rawValue:)),
      let tensorParallel = object["tensor_parallel"]?.boolValue, let redundant = object["redundant_experts"]?.intValue,
      let place = object["place"]?.arrayValue, let maxFile = object["max_file_bytes"]?.intValue
    else { throw bad("options") }
    var devices: [ShardDevice] = []
    for item in deviceList {
      guard let name = item["name"]?.stringValue else { throw bad("device") }
      devices.append(ShardDevice(name: name, capacityByteCount: item["capacity_bytes"]?.intValue))
    }
    var rules: [PlacementRule] = []
    for item in place {
      guard let text = item.stringValue else { throw bad("place rule") }
      rules.append(try PlacementRule(parsing: text))
    }
    var load: ExpertLoad?
    if let value = object["expert_load"], !value.isNull {
      load = try ExpertLoad(json: JSONWriter().bytes(value), path: path)
    }
    var options = ShardOptions(
      devices: devices, strategy: strategy, expertLoad: load, redundantExpertCount: redundant, rules: rules,
      tensorParallel: tensorParallel, layout: layout, maxFileByteCount: maxFile,
      reserveByteCount: object["reserve_bytes"]?.intValue ?? 0)
    options.strategy = strategy
    return options
  }

  /// The file's JSON bytes.
  public func jsonBytes() -> [UInt8] {
    let document: JSONValue = .object(members: [
      ("schema", .string(DocumentSchema.shardPlan)), ("source", .string(sourcePath)),
      ("plan_sha256", .string(planDigest)), ("options", optionsDocument),
    ])
    return JSONWriter(pretty: true).bytes(document) + [0x0A]
  }

  /// Reads the plan file of `outputDirectory`.
  public static func read(outputDirectory: String) throws(ShardingError) -> ShardPlanFile {
    let path = FileSystem.join(outputDirectory, fileName)
    guard FileSystem.exists(path) else { throw .planMissing(path: path) }
    let value: JSONValue
    do { value = try JSONParser.parse(try FileSystem.readFile(path)) } catch {
      throw .planMismatch(path: path, reason: "unreadable plan: \(error)")
    }
    guard DocumentSchema.declares(DocumentSchema.shardPlan, value, legacyFormat: "smelt-shard-plan"), let source = value["source"]?.stringValue,
      let digest = value["plan_sha256"]?.stringValue,
      let options = value["options"], options.objectValue != nil
    else { throw .planMismatch(path: path, reason: "not a smelt shard plan") }
    return ShardPlanFile(sourcePath: source, planDigest: digest, optionsDocument: options)
  }

  init(sourcePath: String, planDigest: String, optionsDocument: JSONValue) {
    self.sourcePath = sourcePath
    self.planDigest = planDigest
    self.optionsDocument = optionsDocument
  }

  /// Writes the file, or checks that an existing one (from another part) is identical.
  /// - Parameter replacingOtherPlans: overwrite the plan file of another job instead of refusing (`--force`).
  public func store(outputDirectory: String, replacingOtherPlans: Bool = false) throws(ShardingError) {
    let path = FileSystem.join(outputDirectory, ShardPlanFile.fileName)
    let bytes = jsonBytes()
    if FileSystem.exists(path) && !replacingOtherPlans {
      let existing: [UInt8]
      do { existing = try FileSystem.readFile(path) } catch { throw .io(path: path, reason: "\(error)") }
      if existing == bytes { return }
      if let other = try? ShardPlanFile.read(outputDirectory: outputDirectory), other.planDigest != planDigest {
        throw .planMismatch(path: path, reason: "this directory holds parts of another plan (other inputs or options); use a fresh output directory or delete it")
      }
    }
    // Several parts may start at once: each writes its own temporary file, then renames it into place
    // (the contents are identical, so whichever rename lands last is fine).
    let temporary = FileSystem.join(outputDirectory, ".smelt-shard-plan.\(CurrentProcess.identifier).\(UInt32.random(in: 0...UInt32.max)).smelt-tmp")
    do {
      let descriptor = try FileDescriptor.open(temporary, .createTruncating)
      defer { descriptor.close() }
      try descriptor.write(bytes, at: 0)
      try descriptor.sync()
      try FileSystem.rename(temporary, to: path)
    } catch {
      _ = try? FileSystem.remove(temporary)
      throw .io(path: path, reason: "\(error)")
    }
  }
}
