import TensorCore

/// The part of a tensor a device receives: under tensor parallelism elements `start..<start+count` along
/// `dim`, the `index`-th of `partCount` equal parts; for fused routed experts (`[E, ...]`) the device's experts
/// along dim 0, `indices` when they are not one contiguous run.
public struct TensorSlice: Sendable, Hashable {
  public var dim: Int
  public var start: Int
  public var count: Int
  public var index: Int
  public var partCount: Int
  /// The positions along `dim` (ascending), when not `start..<start+count`: a device's experts of a fused tensor.
  public var indices: [Int]?

  public init(dim: Int, start: Int, count: Int, index: Int, partCount: Int, indices: [Int]? = nil) {
    self.dim = dim
    self.start = start
    self.count = count
    self.index = index
    self.partCount = partCount
    self.indices = indices
  }

  /// The experts `experts` (ascending) of a fused `[E, ...]` tensor: a contiguous slice when they are one run.
  public static func experts(_ experts: [Int], of total: Int) -> TensorSlice {
    let first = experts.first ?? 0
    let contiguous = experts.last.map { $0 - first + 1 == experts.count } ?? true
    return TensorSlice(dim: 0, start: first, count: experts.count, index: 0, partCount: total, indices: contiguous ? nil : experts)
  }

  /// The runs `(start, count)` along `dim` this slice takes, in output order.
  public var runs: [(start: Int, count: Int)] {
    guard let indices else { return [(start, count)] }
    var runs: [(start: Int, count: Int)] = []
    for i in indices {
      if let last = runs.last, last.start + last.count == i { runs[runs.count - 1].count += 1 } else { runs.append((i, 1)) }
    }
    return runs
  }
}

/// One tensor a device receives.
public struct PlannedShardTensor: Sendable {
  /// The name in the output (the source name, or DeepSeek's demo name).
  public var name: String
  public var dtype: DType
  /// The output shape (the source shape, or the slice's).
  public var shape: [Int]
  public var byteCount: Int
  /// Index into `ShardSource.tensors`.
  public var sourceIndex: Int
  /// `nil` when the whole tensor is copied unchanged.
  public var slice: TensorSlice?
}

/// Where a routed expert lives: a device and its index among that device's experts of the layer.
public struct ExpertSlot: Sendable, Hashable {
  /// Index into `ShardPlan.devices`.
  public var device: Int
  /// Position among the device's experts of this layer (ascending global index).
  public var localIndex: Int
}

/// The expert placement of one MoE layer.
public struct MoELayerPlacement: Sendable {
  public var layer: Int
  /// The routed experts found in the checkpoint, ascending global index.
  public var experts: [Int]
  /// Parallel to `experts`: every device holding the expert (more than one when replicated).
  public var slots: [[ExpertSlot]]
  /// Per device (parallel to `ShardPlan.devices`): the global experts it holds, in local-index order.
  public var deviceExperts: [[Int]]
}

/// One output file.
public struct PlannedOutputFile: Sendable {
  /// Path relative to the output directory (`gpu0/model-00001-of-00003.safetensors`).
  public var relativePath: String
  /// Index into `ShardPlan.devices`.
  public var device: Int
  /// Indices into the device's `tensors`.
  public var tensorIndices: [Int]
  /// Bytes of tensor data (the file is this plus its header).
  public var tensorByteCount: Int
  /// Whether the file carries `{"format": "pt"}` metadata (Hugging Face layout) or none (convert.py's
  /// `save_file` writes none).
  public var formatMetadata: Bool
}

/// One device's share of the plan.
public struct DevicePlan: Sendable {
  public var device: ShardDevice
  /// In write order: sorted by source file and offset, so copies read each input sequentially.
  public var tensors: [PlannedShardTensor]
  public var tensorByteCount: Int
  /// Bytes of routed-expert tensors (replicas included).
  public var expertByteCount: Int
  /// Output files, indices into `ShardPlan.files`.
  public var fileIndices: [Int]
  /// Directory relative to the output directory holding this device's files (`""` for deepseek-mp).
  public var directory: String
  /// The headroom kept free (`ShardOptions.reserveByteCount`).
  public var reserveByteCount: Int = 0
  /// With `--expert-load`: the summed load of the experts it holds, over the layers the file lists (a
  /// replicated expert's load split evenly between its replicas).
  public var expertLoad: Double?

  /// The bytes of tensors it can take: its capacity less the reserve; `nil` for unlimited.
  public var budgetByteCount: Int? { device.capacityByteCount.map { max(0, $0 - reserveByteCount) } }

  /// True when the device has no capacity or the plan fits its budget.
  public var fits: Bool { budgetByteCount.map { tensorByteCount <= $0 } ?? true }
}

/// A complete, deterministic shard plan: which bytes of which source tensor go to which output file.
public struct ShardPlan: Sendable {
  public var source: ShardSource
  public var options: ShardOptions
  public var devices: [DevicePlan]
  public var moeLayers: [MoELayerPlacement]
  public var files: [PlannedOutputFile]
  /// Source tensors not written anywhere (the MTP layer in the deepseek-mp layout), by index.
  public var skippedTensors: [Int]

  /// True when every device fits its capacity.
  public var fits: Bool { devices.allSatisfy(\.fits) }

  /// Throws `doesNotFit` with the per-device table, and the strategies that would fit, when a device is
  /// over its budget.
  public func checkCapacities() throws(ShardingError) {
    guard fits else {
      throw .doesNotFit(table: PlanReport.deviceTable(self), suggestions: PlanReport.suggestions(ShardPlanner.alternatives(to: self)))
    }
  }

  /// Assigns every output file to one of `partCount` parts: largest first onto the part with the fewest
  /// bytes (ties: lower part), so parts get similar work. Deterministic; returns a 0-based part per file.
  public func partAssignment(partCount: Int) -> [Int] {
    let order = files.indices.sorted { files[$0].tensorByteCount != files[$1].tensorByteCount ? files[$0].tensorByteCount > files[$1].tensorByteCount : $0 < $1 }
    var bytes = [Int](repeating: 0, count: max(1, partCount))
    var result = [Int](repeating: 0, count: files.count)
    for file in order {
      var best = 0
      for p in 1..<bytes.count where bytes[p] < bytes[best] { best = p }
      bytes[best] += files[file].tensorByteCount
      result[file] = best
    }
    return result
  }
}
