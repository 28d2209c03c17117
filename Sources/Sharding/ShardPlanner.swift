import Checkpoint
import TensorCore
import WeightFormats

/// Turns a checkpoint description and options into a `ShardPlan`. Pure: reads no tensor data.
///
/// Placement rules, in order:
/// 1. The unit of placement is a routed expert (all its weights and their quantization companions) or one
///    weight group (a weight with its companions, or a lone tensor such as a norm).
/// 2. A unit matched by a `--place` rule (first rule matching any of the unit's tensors) goes to that
///    rule's devices only. Other units go to the *free* devices: those no rule names (all devices when
///    rules name every device).
/// 3. Routed experts are spread over their target devices by the strategy, per layer: each expert whole on
///    one device, plus replicas with `--redundant`.
/// 4. Other units are replicated to every target device, or, with tensor parallelism, split along
///    convert.py's dim for their module (see `TensorParallelRules`).
public enum ShardPlanner {
  public static func plan(_ source: ShardSource, options: ShardOptions) throws(ShardingError) -> ShardPlan {
    let devices = options.devices
    guard !devices.isEmpty else { throw .noDevices }
    var deviceIndex: [String: Int] = [:]
    for (i, device) in devices.enumerated() {
      guard ShardDevice.isValidName(device.name) else {
        throw .invalidDevice(text: device.name, reason: "the name must use only letters, digits, '_', '-' and '.'")
      }
      guard deviceIndex.updateValue(i, forKey: device.name) == nil else { throw .duplicateDevice(name: device.name) }
    }
    let deepSeek = options.layout == .deepSeekMP
    let rules = deepSeek ? [] : options.rules
    var ruleTargets: [[Int]] = []
    var named = Set<Int>()
    for rule in rules {
      var targets: [Int] = []
      for name in rule.deviceNames {
        guard let index = deviceIndex[name] else {
          throw .unknownDevice(rule: rule.text, device: name, known: devices.map(\.name))
        }
        if !targets.contains(index) { targets.append(index) }
        named.insert(index)
      }
      ruleTargets.append(targets.sorted())
    }
    let free = devices.indices.filter { !named.contains($0) }
    let defaultTargets = free.isEmpty ? Array(devices.indices) : free
    let strategy: ExpertStrategy = deepSeek ? .contiguous : options.strategy
    if options.redundantExpertCount > 0 && (options.expertLoad == nil || strategy != .load) { throw .redundantWithoutLoad }
    let splitting = deepSeek || options.tensorParallel

    let tensors = source.tensors
    let names = tensors.map { NameScan($0.name) }
    let hiddenLayers = source.config?.numHiddenLayers

    // Skipped tensors: deepseek-mp drops the MTP layer(s), as convert.py drops "model.layers.61".
    var skipped = [Bool](repeating: false, count: tensors.count)
    if deepSeek, let hiddenLayers {
      for (i, name) in names.enumerated() where (name.layer ?? -1) >= hiddenLayers && tensors[i].name.hasPrefix("model.layers.") {
        skipped[i] = true
      }
    }

    // Units: routed experts keyed by (layer, expert); everything else one unit per group.
    struct ExpertKey: Hashable { var layer: Int; var expert: Int }
    var expertGroups: [ExpertKey: [Int]] = [:]
    var otherGroups: [Int] = []
    for (g, group) in source.groups.enumerated() {
      guard let first = group.tensorIndices.first, !skipped[first] else { continue }
      if let expert = names[first].expert {
        expertGroups[ExpertKey(layer: names[first].layer ?? -1, expert: expert), default: []].append(g)
      } else {
        otherGroups.append(g)
      }
    }

    func targets(ofTensors indices: [Int]) -> [Int] {
      for (r, rule) in rules.enumerated() where indices.contains(where: { rule.glob.matches(tensors[$0].name) }) {
        return ruleTargets[r]
      }
      return defaultTargets
    }

    // Group → devices, and for split groups the per-tensor split dim.
    var groupDevices = [[Int]](repeating: [], count: source.groups.count)
    var tensorSplitDim = [Int?](repeating: nil, count: tensors.count)

    // Routed experts, per layer and target set.
    var layers: [Int: [(expert: Int, groups: [Int], targets: [Int])]] = [:]
    for (key, groups) in expertGroups {
      let all = groups.flatMap { source.groups[$0].tensorIndices }
      layers[key.layer, default: []].append((key.expert, groups, targets(ofTensors: all)))
    }
    if let load = options.expertLoad {
      for (layer, counts) in load.counts {
        guard let experts = layers[layer] else {
          throw .invalidExpertLoad(path: load.path, reason: "layer \(layer) has no routed experts in this checkpoint")
        }
        let needed = (experts.map(\.expert).max() ?? -1) + 1
        guard counts.count == needed else {
          throw .invalidExpertLoad(path: load.path, reason: "layer \(layer) has \(needed) routed experts but the file lists \(counts.count) counts")
        }
      }
    }
    var moeLayers: [MoELayerPlacement] = []
    for layer in layers.keys.sorted() {
      let items = layers[layer]!.sorted { $0.expert < $1.expert }
      var slots = [[ExpertSlot]](repeating: [], count: items.count)
      var placedDevices = [[Int]](repeating: [], count: items.count)
      let sets = Set(items.map(\.targets)).sorted { $0.lexicographicallyPrecedes($1) }
      for set in sets {
        let positions = items.indices.filter { items[$0].targets == set }
        if deepSeek && items.count % set.count != 0 {
          throw .expertsNotDivisible(layer: layer, expertCount: items.count, deviceCount: set.count)
        }
        let experts = positions.map { p in
          ExpertPlacement.Expert(
            index: items[p].expert,
            byteCount: items[p].groups.reduce(0) { sum, g in sum + source.groups[g].tensorIndices.reduce(0) { $0 + tensors[$1].byteCount } },
            load: options.expertLoad?.counts[layer]?[items[p].expert] ?? 1)
        }
        let placed = try ExpertPlacement.place(
          experts, deviceCount: set.count, strategy: strategy, capacities: set.map { devices[$0].capacityByteCount },
          redundantCount: options.redundantExpertCount, layer: layer)
        for (k, p) in positions.enumerated() { placedDevices[p] = placed[k].map { set[$0] } }
      }
      var deviceExperts = [[Int]](repeating: [], count: devices.count)
      for (p, item) in items.enumerated() {
        for d in placedDevices[p] { deviceExperts[d].append(item.expert) }
        for g in item.groups { groupDevices[g] = placedDevices[p] }
      }
      for (p, item) in items.enumerated() {
        slots[p] = placedDevices[p].map { d in
          ExpertSlot(device: d, localIndex: deviceExperts[d].firstIndex(of: item.expert) ?? 0)
        }
      }
      moeLayers.append(MoELayerPlacement(layer: layer, experts: items.map(\.expert), slots: slots, deviceExperts: deviceExperts))
    }

    // Everything else: replicated, or split.
    let blockSize = source.config?.quantizationConfig?.weightBlockSize ?? [128, 128]
    for g in otherGroups {
      let group = source.groups[g]
      let targetSet = targets(ofTensors: group.tensorIndices)
      groupDevices[g] = targetSet
      guard splitting, targetSet.count > 1 else { continue }
      try planSplit(group, source: source, deviceCount: targetSet.count, blockSize: blockSize, deepSeek: deepSeek, into: &tensorSplitDim)
    }

    // Output names.
    var outputNames = tensors.map(\.name)
    if deepSeek {
      for i in tensors.indices where !skipped[i] { outputNames[i] = try DeepSeekMPNaming.rename(tensors[i].name).name }
    }

    // Per-device tensor lists, in source-file order.
    var groupOf = [Int](repeating: -1, count: tensors.count)
    for (g, group) in source.groups.enumerated() { for t in group.tensorIndices { groupOf[t] = g } }
    let order = tensors.indices.sorted {
      tensors[$0].fileIndex != tensors[$1].fileIndex ? tensors[$0].fileIndex < tensors[$1].fileIndex : tensors[$0].fileOffset < tensors[$1].fileOffset
    }
    var deviceTensors = [[PlannedShardTensor]](repeating: [], count: devices.count)
    var expertBytes = [Int](repeating: 0, count: devices.count)
    var skippedList: [Int] = []
    for t in order {
      guard !skipped[t], groupOf[t] >= 0 else {
        skippedList.append(t)
        continue
      }
      let tensor = tensors[t]
      let targetSet = groupDevices[groupOf[t]]
      for (k, d) in targetSet.enumerated() {
        var planned = PlannedShardTensor(
          name: outputNames[t], dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount, sourceIndex: t, slice: nil)
        if let dim = tensorSplitDim[t] {
          let size = tensor.shape[dim] / targetSet.count
          planned.slice = TensorSlice(dim: dim, start: k * size, count: size, index: k, partCount: targetSet.count)
          planned.shape[dim] = size
          planned.byteCount = tensor.byteCount / targetSet.count
        }
        if names[t].expert != nil { expertBytes[d] += planned.byteCount }
        deviceTensors[d].append(planned)
      }
    }
    skippedList.sort()

    // Output files.
    var files: [PlannedOutputFile] = []
    var devicePlans: [DevicePlan] = []
    for (d, device) in devices.enumerated() {
      let list = deviceTensors[d]
      var seen = Set<String>(minimumCapacity: list.count)
      for tensor in list where !seen.insert(tensor.name).inserted {
        throw .duplicateOutputName(name: tensor.name, device: device.name)
      }
      var ranges: [([Int], Int)] = []
      if deepSeek {
        ranges = [(Array(list.indices), list.reduce(0) { $0 + $1.byteCount })]
      } else {
        for items in OutputSharding.assign(itemByteCounts: list.map(\.byteCount), maxByteCount: options.maxFileByteCount) {
          ranges.append((items, items.reduce(0) { $0 + list[$1].byteCount }))
        }
      }
      let hfNames = OutputSharding.fileNames(count: ranges.count)
      var fileIndices: [Int] = []
      for (k, (range, bytes)) in ranges.enumerated() {
        let path: String
        if deepSeek {
          path = "model\(d)-mp\(devices.count).safetensors"
        } else {
          path = device.name + "/" + hfNames[k]
        }
        fileIndices.append(files.count)
        files.append(PlannedOutputFile(relativePath: path, device: d, tensorIndices: range, tensorByteCount: bytes, formatMetadata: !deepSeek))
      }
      devicePlans.append(DevicePlan(
        device: device, tensors: list, tensorByteCount: list.reduce(0) { $0 + $1.byteCount }, expertByteCount: expertBytes[d],
        fileIndices: fileIndices, directory: deepSeek ? "" : device.name))
    }
    return ShardPlan(source: source, options: options, devices: devicePlans, moeLayers: moeLayers, files: files, skippedTensors: skippedList)
  }

  /// Decides the split dim of every tensor of `group`, or throws why it cannot be split.
  static func planSplit(
    _ group: SourceGroup, source: ShardSource, deviceCount n: Int, blockSize: [Int], deepSeek: Bool,
    into splitDims: inout [Int?]
  ) throws(ShardingError) {
    let tensors = source.tensors
    guard let primary = group.parts["weight"] ?? group.tensorIndices.first else { return }
    let key = TensorParallelRules.moduleKey(tensors[primary].name)
    if !deepSeek && TensorParallelRules.unsupportedModules.contains(String(key)) {
      throw .splitUnsupported(tensor: tensors[primary].name, reason: "convert.py has no split rule for grouped-query attention ('\(key)'); shard without --tensor-parallel")
    }
    let dim: Int?
    if deepSeek {
      dim = try DeepSeekMPNaming.rename(tensors[primary].name).dim
    } else {
      dim = TensorParallelRules.splitDim(moduleKey: key)
    }
    guard let dim else { return }
    func checkDivides(_ t: Int) throws(ShardingError) {
      let tensor = tensors[t]
      guard tensor.dtype.byteWidth != nil else {
        throw .splitUnsupported(tensor: tensor.name, reason: "\(tensor.dtype) packs several elements per byte")
      }
      guard tensor.shape[dim] % n == 0 else {
        throw .splitNotDivisible(tensor: tensor.name, dim: dim, size: tensor.shape[dim], deviceCount: n)
      }
    }
    switch group.storage {
    case .plain:
      for t in group.tensorIndices where tensors[t].shape.count > dim {
        try checkDivides(t)
        splitDims[t] = dim
      }
    case .fp8Block:
      guard let weight = group.parts["weight"], let scale = group.parts["weight_scale_inv"],
        tensors[weight].shape.count == 2, tensors[scale].shape.count == 2
      else {
        throw .splitUnsupported(tensor: tensors[primary].name, reason: "an FP8 block-scaled weight must be 2-D with a 2-D weight_scale_inv")
      }
      try checkDivides(weight)
      let size = tensors[weight].shape[dim]
      let block = dim < blockSize.count ? max(1, blockSize[dim]) : 128
      guard (size / n) % block == 0 else {
        throw .splitCutsBlock(tensor: tensors[weight].name, scale: tensors[scale].name, dim: dim, size: size, block: block, deviceCount: n)
      }
      guard tensors[scale].shape[dim] == (size + block - 1) / block else {
        throw .splitUnsupported(tensor: tensors[scale].name, reason: "its shape \(tensors[scale].shape) does not match \(block)-blocks of \(tensors[weight].shape)")
      }
      splitDims[weight] = dim
      splitDims[scale] = dim
    default:
      throw .splitUnsupported(tensor: tensors[primary].name, reason: "\(group.storage.rawValue) weights cannot be sliced; only plain and FP8 block-scaled (weight_scale_inv) weights can")
    }
  }
}
