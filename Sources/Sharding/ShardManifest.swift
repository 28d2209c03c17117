import JSON
import TensorCore

/// `OUT/manifest.json`: the plan as written (devices, expert maps, every tensor's provenance) and the
/// SHA-256 of every output file. Schema: `formats/shard-manifest.md`.
public enum ShardManifest {
  /// The name of the manifest in the output directory.
  public static let fileName = "manifest.json"

  /// The manifest file's bytes: `document` (pretty JSON) with a last member `manifest_sha256`, the SHA-256
  /// of the same document without it, so that `smelt verify` detects any edit of the manifest itself
  /// (a device renamed, a tensor moved, an expert map changed). See `ShardManifestFiles.selfCheckProblem`.
  public static func sealedBytes(_ document: JSONValue) -> [UInt8] {
    guard case .object(var object) = document else { return JSONWriter(pretty: true).bytes(document) + [0x0A] }
    let body = JSONWriter(pretty: true).bytes(document) + [0x0A]
    object["manifest_sha256"] = .string(SHA256.hex(of: body))
    return JSONWriter(pretty: true).bytes(.object(object)) + [0x0A]
  }

  /// A written file: its path relative to the output directory, size and SHA-256 (hex).
  public struct FileRecord: Sendable, Equatable {
    public var relativePath: String
    public var byteCount: Int
    public var sha256: String?

    public init(relativePath: String, byteCount: Int, sha256: String?) {
      self.relativePath = relativePath
      self.byteCount = byteCount
      self.sha256 = sha256
    }
  }

  /// The manifest document.
  ///
  /// - Parameters:
  ///   - weightFiles: parallel to `plan.files` (sizes, and hashes once written).
  ///   - otherFiles: indexes and copied sidecar files.
  ///   - includeTensors: the per-tensor provenance list (large: one entry per output tensor).
  public static func document(
    _ plan: ShardPlan, weightFiles: [FileRecord], otherFiles: [FileRecord] = [], includeTensors: Bool = true
  ) -> JSONValue {
    let source = plan.source
    let options = plan.options
    func int(_ n: Int) -> JSONValue { .number(JSONNumber(n)) }
    func file(_ record: FileRecord, extra: [(String, JSONValue)] = []) -> JSONValue {
      var members: [(String, JSONValue)] = [("path", .string(record.relativePath)), ("bytes", int(record.byteCount))]
      members += extra
      if let hash = record.sha256 { members.append(("sha256", .string(hash))) }
      return .object(members: members)
    }
    var loadValue: JSONValue = .null
    if let load = options.expertLoad {
      loadValue = .object(members: load.counts.keys.sorted().map { layer in
        ("\(layer)", .array((load.counts[layer] ?? []).map { JSONNumber($0).map(JSONValue.number) ?? .null }))
      })
    }
    let optionsValue = JSONValue.object(members: [
      ("layout", .string(options.layout.rawValue)),
      ("strategy", .string(options.effectiveStrategy.rawValue)),
      ("tensor_parallel", .bool(options.tensorParallel || options.layout == .deepSeekMP)),
      ("redundant_experts", int(options.redundantExpertCount)),
      ("place", .array(options.rules.map { .string($0.text) })),
      ("max_file_bytes", int(options.maxFileByteCount)),
      ("reserve_bytes", int(options.reserveByteCount)),
      ("expert_load", loadValue),
    ])
    let devices: [JSONValue] = plan.devices.enumerated().map { d, device in
      .object(members: [
        ("name", .string(device.device.name)),
        ("capacity_bytes", device.device.capacityByteCount.map(int) ?? .null),
        ("budget_bytes", device.budgetByteCount.map(int) ?? .null),
        ("directory", .string(device.directory)),
        ("tensor_count", int(device.tensors.count)),
        ("tensor_bytes", int(device.tensorByteCount)),
        ("expert_bytes", int(device.expertByteCount)),
        ("expert_load", device.expertLoad.flatMap { JSONNumber($0).map(JSONValue.number) } ?? .null),
        ("files", .array(device.fileIndices.map { i in
          file(weightFiles[i], extra: [("tensor_count", int(plan.files[i].tensorIndices.count)), ("tensor_bytes", int(plan.files[i].tensorByteCount))])
        })),
      ])
    }
    let layers: [JSONValue] = plan.moeLayers.map { layer in
      .object(members: [
        ("layer", int(layer.layer)),
        ("experts", .array(layer.experts.map(int))),
        ("expert_to_devices", .object(members: zip(layer.experts, layer.slots).map { expert, slots in
          ("\(expert)", .array(slots.map { .object(members: [("device", .string(plan.devices[$0.device].device.name)), ("local_index", int($0.localIndex))]) }))
        })),
        ("device_to_experts", .object(members: layer.deviceExperts.enumerated().map { d, experts in
          (plan.devices[d].device.name, .array(experts.map(int)))
        })),
      ])
    }
    var members: [(String, JSONValue)] = [
      ("schema", .string(DocumentSchema.shardManifest)),
      ("source", .object(members: [
        ("directory", .string(source.directory)),
        ("files", .array(source.fileNames.map { .string($0) })),
        ("tensor_count", int(source.tensors.count)),
        ("tensor_bytes", int(source.tensorByteCount)),
      ])),
      ("options", optionsValue),
      ("devices", .array(devices)),
      ("moe_layers", .array(layers)),
      ("skipped_tensors", .array(plan.skippedTensors.map { .string(source.tensors[$0].name) })),
      ("other_files", .array(otherFiles.map { file($0) })),
    ]
    if includeTensors {
      var tensors: [JSONValue] = []
      tensors.reserveCapacity(plan.devices.reduce(0) { $0 + $1.tensors.count })
      for (f, planned) in plan.files.enumerated() {
        for i in planned.tensorIndices {
          let tensor = plan.devices[planned.device].tensors[i]
          let origin = source.tensors[tensor.sourceIndex]
          var item: [(String, JSONValue)] = [
            ("name", .string(tensor.name)),
            ("device", .string(plan.devices[planned.device].device.name)),
            ("file", .string(plan.files[f].relativePath)),
            ("dtype", .string(tensor.dtype.rawValue)),
            ("shape", .array(tensor.shape.map(int))),
            ("source_file", .string(source.fileNames[origin.fileIndex])),
            ("source_name", .string(origin.name)),
            ("source_dtype", .string(origin.dtype.rawValue)),
          ]
          if let slice = tensor.slice {
            item.append(("source_shape", .array(origin.shape.map(int))))
            var fields: [(String, JSONValue)] = [("dim", int(slice.dim)), ("start", int(slice.start)), ("count", int(slice.count))]
            if let indices = slice.indices { fields.append(("indices", .array(indices.map(int)))) }
            item.append(("slice", .object(members: fields)))
          }
          tensors.append(.object(members: item))
        }
      }
      members.append(("tensors", .array(tensors)))
    }
    return .object(members: members)
  }

  /// `smelt shard --dry-run --json`: `document` without tensors, plus `fits` and, for a plan that does not
  /// fit, `alternatives`: every other strategy re-planned with the same options, with its per-device figures.
  public static func dryRunDocument(_ plan: ShardPlan, weightFiles: [FileRecord]) -> JSONValue {
    guard case .object(var object) = document(plan, weightFiles: weightFiles, includeTensors: false) else { return .null }
    object["schema"] = .string(DocumentSchema.shardDryRun)
    object["fits"] = .bool(plan.fits)
    if !plan.fits {
      object["alternatives"] = .array(ShardPlanner.alternatives(to: plan).map { alternative in
        .object(members: [
          ("strategy", .string(alternative.strategy.rawValue)),
          ("fits", .bool(alternative.plan.fits)),
          ("devices", .array(alternative.plan.devices.map { device in
            .object(members: [
              ("name", .string(device.device.name)),
              ("tensor_bytes", .number(JSONNumber(device.tensorByteCount))),
              ("budget_bytes", device.budgetByteCount.map { .number(JSONNumber($0)) } ?? .null),
            ])
          })),
        ])
      })
    }
    return .object(object)
  }
}
