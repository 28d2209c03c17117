import Checkpoint
import JSON
import TensorCore

/// `OUT/manifest.json` from a plan: what `smelt shard` writes (`ShardFinalizer`), digests (`ShardPlanFile`)
/// and prints (`--dry-run --json`). The document itself is `ShardManifest`'s (Checkpoint).
extension ShardManifest {
  /// The manifest of `plan` as written.
  ///
  /// - Parameters:
  ///   - weightFiles: parallel to `plan.files` (sizes, and hashes once written).
  ///   - otherFiles: indexes and copied sidecar files.
  ///   - includeTensors: the per-tensor provenance list (large: one entry per output tensor).
  public init(_ plan: ShardPlan, weightFiles: [FileRecord], otherFiles: [FileRecord] = [], includeTensors: Bool = true) {
    let source = plan.source
    let options = plan.options
    let devices = plan.devices.map { device in
      Device(
        name: device.device.name, capacityByteCount: device.device.capacityByteCount, budgetByteCount: device.budgetByteCount,
        directory: device.directory, tensorCount: device.tensors.count, tensorByteCount: device.tensorByteCount,
        expertByteCount: device.expertByteCount, expertLoad: device.expertLoad,
        files: device.fileIndices.map { i in
          var record = weightFiles[i]
          record.tensorCount = plan.files[i].tensorIndices.count
          record.tensorByteCount = plan.files[i].tensorByteCount
          return record
        })
    }
    let layers = plan.moeLayers.map { layer in
      MoELayer(
        layer: layer.layer, experts: layer.experts,
        expertToDevices: zip(layer.experts, layer.slots).map { expert, slots in
          (expert, slots.map { (plan.devices[$0.device].device.name, $0.localIndex) })
        },
        deviceToExperts: layer.deviceExperts.enumerated().map { d, experts in (plan.devices[d].device.name, experts) })
    }
    var tensors: [Tensor]?
    if includeTensors {
      var list: [Tensor] = []
      list.reserveCapacity(plan.devices.reduce(0) { $0 + $1.tensors.count })
      for planned in plan.files {
        for i in planned.tensorIndices {
          let tensor = plan.devices[planned.device].tensors[i]
          let origin = source.tensors[tensor.sourceIndex]
          list.append(Tensor(
            name: tensor.name, device: plan.devices[planned.device].device.name, file: planned.relativePath,
            dtype: tensor.dtype.rawValue, shape: tensor.shape, sourceFile: source.fileNames[origin.fileIndex],
            sourceName: origin.name, sourceDtype: origin.dtype.rawValue,
            sourceShape: tensor.slice.map { _ in origin.shape },
            slice: tensor.slice.map { Tensor.Slice(dim: $0.dim, start: $0.start, count: $0.count, indices: $0.indices) }))
        }
      }
      tensors = list
    }
    self.init(
      source: Source(
        directory: source.directory, files: source.fileNames, tensorCount: source.tensors.count,
        tensorByteCount: source.tensorByteCount),
      options: Options(
        layout: options.layout.rawValue, strategy: options.effectiveStrategy.rawValue,
        tensorParallel: options.tensorParallel || options.layout == .deepSeekMP,
        redundantExpertCount: options.redundantExpertCount, place: options.rules.map(\.text),
        maxFileByteCount: options.maxFileByteCount, reserveByteCount: options.reserveByteCount,
        expertLoad: options.expertLoad?.counts),
      devices: devices, moeLayers: layers, skippedTensors: plan.skippedTensors.map { source.tensors[$0].name },
      otherFiles: otherFiles, tensors: tensors)
  }

  /// The manifest document of `plan` (see `init(_:weightFiles:otherFiles:includeTensors:)`).
  public static func document(
    _ plan: ShardPlan, weightFiles: [FileRecord], otherFiles: [FileRecord] = [], includeTensors: Bool = true
  ) -> JSONValue {
    ShardManifest(plan, weightFiles: weightFiles, otherFiles: otherFiles, includeTensors: includeTensors).document()
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
