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
///    convert.py's dim for their module, or the family's `TensorParallelPlan`.
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
    let family = ModelFamily.detect(source.config)
    let classifier = TensorClassifier(family: family, trunkLayerCount: source.config?.numHiddenLayers)
    let classes = tensors.map { classifier.classify($0.name) }

    // Skipped tensors: deepseek-mp drops the MTP layer(s), as convert.py drops "model.layers.61".
    var skipped = [Bool](repeating: false, count: tensors.count)
    if deepSeek || options.dropMTP {
      for (i, place) in classes.enumerated() where place.isMTP { skipped[i] = true }
    }

    // Units: routed experts keyed by (layer, expert) — per-expert groups, plus each expert's share of a layer's
    // fused `[E, ...]` tensors; everything else one unit per group.
    var perExpertGroups: [Int: [Int: [Int]]] = [:]
    var fusedGroups: [Int: [Int]] = [:]
    var fusedExpertCount: [Int: Int] = [:]
    var otherGroups: [Int] = []
    for (g, group) in source.groups.enumerated() {
      guard let first = group.tensorIndices.first, !skipped[first] else { continue }
      let place = classes[first]
      guard place.isRoutedExpert, let layer = place.layer else {
        otherGroups.append(g)
        continue
      }
      if let expert = place.expert {
        perExpertGroups[layer, default: [:]][expert, default: []].append(g)
        continue
      }
      for t in group.tensorIndices {
        let count = tensors[t].shape.first ?? 0
        guard count > 0, fusedExpertCount[layer].map({ $0 == count }) ?? true else {
          throw .splitUnsupported(
            tensor: tensors[t].name,
            reason: "a fused expert tensor's first dim must be the layer's expert count (\(fusedExpertCount[layer] ?? 0)), found \(tensors[t].shape)")
        }
        fusedExpertCount[layer] = count
      }
      fusedGroups[layer, default: []].append(g)
    }

    func targets(ofTensors indices: [Int]) -> [Int] {
      for (r, rule) in rules.enumerated() where indices.contains(where: { rule.glob.matches(tensors[$0].name) }) {
        return ruleTargets[r]
      }
      return defaultTargets
    }
    func bytes(ofGroups groups: [Int]) -> Int {
      groups.reduce(0) { sum, g in sum + source.groups[g].tensorIndices.reduce(0) { $0 + tensors[$1].byteCount } }
    }

    // Group → devices, and for split groups the per-tensor split dim.
    var groupDevices = [[Int]](repeating: [], count: source.groups.count)
    var tensorSplitDim = [Int?](repeating: nil, count: tensors.count)
    /// Fused expert groups: per device, the experts of the layer it holds.
    var fusedDeviceExperts: [Int: [[Int]]] = [:]

    // Routed experts, per layer and target set.
    var layers: [Int: [(expert: Int, groups: [Int], byteCount: Int, targets: [Int])]] = [:]
    for layer in Set(perExpertGroups.keys).union(fusedGroups.keys) {
      let fused = fusedGroups[layer] ?? []
      let fusedTensors = fused.flatMap { source.groups[$0].tensorIndices }
      let expertCount = fusedExpertCount[layer] ?? 0
      let fusedShare = expertCount > 0 ? bytes(ofGroups: fused) / expertCount : 0
      let indices = Set(perExpertGroups[layer]?.keys.map { $0 } ?? []).union(0..<expertCount)
      layers[layer] = indices.map { expert in
        let groups = perExpertGroups[layer]?[expert] ?? []
        let all = groups.flatMap { source.groups[$0].tensorIndices } + fusedTensors
        return (expert, groups, bytes(ofGroups: groups) + (expert < expertCount ? fusedShare : 0), targets(ofTensors: all))
      }
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
            index: items[p].expert, byteCount: items[p].byteCount, load: options.expertLoad?.counts[layer]?[items[p].expert] ?? 1)
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
      for g in fusedGroups[layer] ?? [] {
        let expertCount = fusedExpertCount[layer] ?? 0
        let held = deviceExperts.map { $0.filter { $0 < expertCount } }
        fusedDeviceExperts[g] = held
        groupDevices[g] = held.indices.filter { !held[$0].isEmpty }
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
      try planSplit(
        group, source: source, plan: family.tensorParallel, config: source.config, deviceCount: targetSet.count,
        blockSize: blockSize, deepSeek: deepSeek, into: &tensorSplitDim)
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
        } else if let held = fusedDeviceExperts[groupOf[t]]?[d], let total = tensor.shape.first, held.count < total {
          planned.slice = TensorSlice.experts(held, of: total)
          planned.shape[0] = held.count
          planned.byteCount = tensor.byteCount / total * held.count
        }
        if classes[t].isRoutedExpert { expertBytes[d] += planned.byteCount }
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

  /// Decides the split dim of every tensor of `group` under the family's tensor-parallel `plan` (deepseek-mp:
  /// convert.py's renaming table), or throws why it cannot be split.
  static func planSplit(
    _ group: SourceGroup, source: ShardSource, plan: TensorParallelPlan, config: ModelConfig?, deviceCount n: Int,
    blockSize: [Int], deepSeek: Bool, into splitDims: inout [Int?]
  ) throws(ShardingError) {
    let tensors = source.tensors
    guard let primary = group.parts["weight"] ?? group.tensorIndices.first else { return }
    let key = TensorParallelPlan.moduleKey(tensors[primary].name)
    if !deepSeek, let refusal = plan.refusal { throw .splitUnsupported(tensor: tensors[primary].name, reason: refusal) }
    if !deepSeek, let reason = plan.refusedModules[String(key)] {
      throw .splitUnsupported(tensor: tensors[primary].name, reason: reason)
    }
    let dim: Int?
    if deepSeek {
      dim = try DeepSeekMPNaming.rename(tensors[primary].name).dim
    } else {
      dim = plan.splitDim(moduleKey: key)
    }
    guard let dim else { return }
    // Attention projections split on whole heads (grouped-query k/v heads, gpt-oss sinks).
    if !deepSeek, let head = plan.headAligned[String(key)], tensors[primary].shape.count > dim {
      let unit: Int?
      switch head {
      case .query(let perHead): unit = perHead ?? config?.headDim ?? config.flatMap { c in c.hiddenSize.flatMap { h in c.numAttentionHeads.map { h / max(1, $0) } } }
      case .keyValue: unit = config?.headDim ?? config.flatMap { c in c.hiddenSize.flatMap { h in c.numAttentionHeads.map { h / max(1, $0) } } }
      }
      let size = tensors[primary].shape[dim]
      if let unit, unit > 0, size % n == 0, (size / n) % unit != 0 {
        throw .splitCutsHead(tensor: tensors[primary].name, size: size, headSize: unit, deviceCount: n)
      }
    }
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
