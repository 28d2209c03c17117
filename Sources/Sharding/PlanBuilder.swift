import Checkpoint
import TensorCore
import WeightFormats

/// The steps of `ShardPlanner.plan`, in order: `init` (devices, rules, units), `placeOtherUnits`,
/// `placeExperts`, `makePlan`. Pure: reads no tensor data.
struct PlanBuilder {
  let source: ShardSource
  let options: ShardOptions
  let devices: [ShardDevice]
  let deepSeek: Bool
  let rules: [PlacementRule]
  /// Per rule, the indices of its devices (ascending).
  let ruleTargets: [[Int]]
  /// The devices of units no rule matches.
  let defaultTargets: [Int]
  let strategy: ExpertStrategy
  let family: ModelFamily
  let classes: [TensorClass]
  /// Source tensors written nowhere (deepseek-mp drops the MTP layer(s), as convert.py drops `model.layers.61`).
  let skipped: [Bool]
  /// Per source tensor, its group (-1 for none).
  let groupOf: [Int]

  // Units: routed experts keyed by (layer, expert) — per-expert groups, plus each expert's share of a layer's
  // fused `[E, ...]` tensors; everything else one unit per group.
  var perExpertGroups: [Int: [Int: [Int]]] = [:]
  var fusedGroups: [Int: [Int]] = [:]
  var fusedExpertCount: [Int: Int] = [:]
  var otherGroups: [Int] = []

  /// Group → devices.
  var groupDevices: [[Int]]
  /// Per tensor, its tensor-parallel split dim.
  var tensorSplitDim: [Int?]
  /// Fused expert groups: per device, the experts of the layer it holds.
  var fusedDeviceExperts: [Int: [[Int]]] = [:]
  var moeLayers: [MoELayerPlacement] = []

  init(source: ShardSource, options: ShardOptions) throws(ShardingError) {
    self.source = source
    self.options = options
    devices = options.devices
    guard !devices.isEmpty else { throw .noDevices }
    var deviceIndex: [String: Int] = [:]
    for (i, device) in devices.enumerated() {
      guard ShardDevice.isValidName(device.name) else {
        throw .invalidDevice(text: device.name, reason: "the name must use only letters, digits, '_', '-' and '.'")
      }
      guard deviceIndex.updateValue(i, forKey: device.name) == nil else { throw .duplicateDevice(name: device.name) }
    }
    deepSeek = options.layout == .deepSeekMP
    rules = deepSeek ? [] : options.rules
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
    self.ruleTargets = ruleTargets
    let free = devices.indices.filter { !named.contains($0) }
    defaultTargets = free.isEmpty ? Array(devices.indices) : free
    strategy = options.effectiveStrategy
    if options.redundantExpertCount > 0 && (options.expertLoad == nil || strategy != .load) { throw .redundantWithoutLoad }

    family = ModelFamily.detect(source.config)
    let classifier = TensorClassifier(family: family, trunkLayerCount: source.config?.numHiddenLayers)
    classes = source.tensors.map { classifier.classify($0.name) }
    // deepseek-mp drops the MTP layer(s), as convert.py drops "model.layers.61"; --drop-mtp does for any layout.
    let dropsMTP = deepSeek || options.dropMTP
    skipped = classes.map { dropsMTP && $0.isMTP }
    var groupOf = [Int](repeating: -1, count: source.tensors.count)
    for (g, group) in source.groups.enumerated() { for t in group.tensorIndices { groupOf[t] = g } }
    self.groupOf = groupOf
    groupDevices = [[Int]](repeating: [], count: source.groups.count)
    tensorSplitDim = [Int?](repeating: nil, count: source.tensors.count)
    try collectUnits()
  }

  private mutating func collectUnits() throws(ShardingError) {
    let tensors = source.tensors
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
  }

  /// The devices of a unit made of `indices`: the first rule matching any of them, else the free devices.
  func targets(ofTensors indices: [Int]) -> [Int] {
    for (r, rule) in rules.enumerated() where indices.contains(where: { rule.glob.matches(source.tensors[$0].name) }) {
      return ruleTargets[r]
    }
    return defaultTargets
  }

  func bytes(ofGroups groups: [Int]) -> Int {
    groups.reduce(0) { sum, g in sum + source.groups[g].tensorIndices.reduce(0) { $0 + source.tensors[$1].byteCount } }
  }

  // MARK: - Other units

  /// Everything but routed experts: replicated on its target devices, or split (tensor parallelism).
  mutating func placeOtherUnits() throws(ShardingError) {
    let splitting = deepSeek || options.tensorParallel
    let blockSize = source.config?.quantizationConfig?.weightBlockSize ?? [128, 128]
    for g in otherGroups {
      let group = source.groups[g]
      let targetSet = targets(ofTensors: group.tensorIndices)
      groupDevices[g] = targetSet
      guard splitting, targetSet.count > 1 else { continue }
      try ShardPlanner.planSplit(
        group, source: source, plan: family.tensorParallel, config: source.config, deviceCount: targetSet.count,
        blockSize: blockSize, deepSeek: deepSeek, into: &tensorSplitDim)
    }
  }

  /// What the `k`-th device `d` of tensor `t`'s devices receives (`name` is the output name).
  func share(ofTensor t: Int, name: String, part k: Int, of partCount: Int, device d: Int) -> PlannedShardTensor {
    let tensor = source.tensors[t]
    var planned = PlannedShardTensor(
      name: name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount, sourceIndex: t, slice: nil)
    if let dim = tensorSplitDim[t] {
      let size = tensor.shape[dim] / partCount
      planned.slice = TensorSlice(dim: dim, start: k * size, count: size, index: k, partCount: partCount)
      planned.shape[dim] = size
      planned.byteCount = tensor.byteCount / partCount
    } else if groupOf[t] >= 0, let held = fusedDeviceExperts[groupOf[t]]?[d], let total = tensor.shape.first,
      held.count < total
    {
      planned.slice = TensorSlice.experts(held, of: total)
      planned.shape[0] = held.count
      planned.byteCount = tensor.byteCount / total * held.count
    }
    return planned
  }

  /// Per device, the bytes left for routed experts: its budget (capacity less the reserve) less the other
  /// units it holds; `nil` for a device without a capacity. Negative when the other units alone overflow it.
  func expertBudgets() -> [Int?] {
    var fixed = [Int](repeating: 0, count: devices.count)
    for g in otherGroups {
      let targetSet = groupDevices[g]
      for t in source.groups[g].tensorIndices {
        for (k, d) in targetSet.enumerated() {
          fixed[d] += share(ofTensor: t, name: "", part: k, of: targetSet.count, device: d).byteCount
        }
      }
    }
    return devices.indices.map { d in devices[d].capacityByteCount.map { $0 - options.reserveByteCount - fixed[d] } }
  }

  // MARK: - Routed experts

  /// One routed expert before placement.
  struct ExpertItem {
    var expert: Int
    var groups: [Int]
    var byteCount: Int
    var targets: [Int]
  }

  /// The experts of one layer that share a target device set: placed together.
  struct ExpertBatch {
    var layer: Int
    var targets: [Int]
    /// Positions in the layer's expert list.
    var positions: [Int]
    var experts: [ExpertPlacement.Expert]
    var byteCount: Int { experts.reduce(0) { $0 + $1.byteCount } }
  }

  /// Per MoE layer, its routed experts in ascending index.
  func expertItems() -> [Int: [ExpertItem]] {
    var layers: [Int: [ExpertItem]] = [:]
    for layer in Set(perExpertGroups.keys).union(fusedGroups.keys) {
      let fused = fusedGroups[layer] ?? []
      let fusedTensors = fused.flatMap { source.groups[$0].tensorIndices }
      let expertCount = fusedExpertCount[layer] ?? 0
      let fusedShare = expertCount > 0 ? bytes(ofGroups: fused) / expertCount : 0
      let indices = Set(perExpertGroups[layer]?.keys.map { $0 } ?? []).union(0..<expertCount)
      layers[layer] = indices.sorted().map { expert in
        let groups = perExpertGroups[layer]?[expert] ?? []
        let all = groups.flatMap { source.groups[$0].tensorIndices } + fusedTensors
        return ExpertItem(
          expert: expert, groups: groups, byteCount: bytes(ofGroups: groups) + (expert < expertCount ? fusedShare : 0),
          targets: targets(ofTensors: all))
      }
    }
    return layers
  }

  func checkExpertLoad(_ layers: [Int: [ExpertItem]]) throws(ShardingError) {
    guard let load = options.expertLoad else { return }
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

  /// Spreads every layer's routed experts by the strategy, within the devices' expert budgets.
  mutating func placeExperts() throws(ShardingError) {
    let layers = expertItems()
    try checkExpertLoad(layers)
    var batches: [ExpertBatch] = []
    for layer in layers.keys.sorted() {
      let items = layers[layer]!
      for set in Set(items.map(\.targets)).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
        let positions = items.indices.filter { items[$0].targets == set }
        if deepSeek && items.count % set.count != 0 {
          throw .expertsNotDivisible(layer: layer, expertCount: items.count, deviceCount: set.count)
        }
        let experts = positions.map { p in
          ExpertPlacement.Expert(
            index: items[p].expert, byteCount: items[p].byteCount, load: options.expertLoad?.counts[layer]?[items[p].expert] ?? 1)
        }
        batches.append(ExpertBatch(layer: layer, targets: set, positions: positions, experts: experts))
      }
    }
    let placed = try place(batches)
    var next = 0
    for layer in layers.keys.sorted() {
      let items = layers[layer]!
      var placedDevices = [[Int]](repeating: [], count: items.count)
      while next < batches.count && batches[next].layer == layer {
        for (k, p) in batches[next].positions.enumerated() { placedDevices[p] = placed[next][k] }
        next += 1
      }
      record(layer: layer, items: items, placedDevices: placedDevices)
    }
  }

  /// Per batch, per expert: its devices (indices into `devices`). Budgets are shared by all layers: each
  /// batch may use its device's remaining budget in proportion to its share of the expert bytes still to
  /// place there (the allowance `contiguous` sizes its ranges by).
  func place(_ batches: [ExpertBatch]) throws(ShardingError) -> [[[Int]]] {
    let budgets = deepSeek ? [Int?](repeating: nil, count: devices.count) : expertBudgets()
    var remaining = budgets
    var pending = [Int](repeating: 0, count: devices.count)
    for batch in batches { for d in batch.targets { pending[d] += batch.byteCount } }
    var placed: [[[Int]]] = []
    for batch in batches {
      let total = batch.byteCount
      let local = batch.targets.map { remaining[$0] }
      let allowances = batch.targets.map { d in
        remaining[d].map { room in room <= 0 ? 0 : pending[d] <= total ? room : Int(Int128(room) * Int128(total) / Int128(pending[d])) }
      }
      let result = try ExpertPlacement.place(
        batch.experts, deviceCount: batch.targets.count, strategy: strategy, budgets: local, allowances: allowances,
        redundantCount: options.redundantExpertCount, layer: batch.layer
      ).map { $0.map { batch.targets[$0] } }
      for (k, held) in result.enumerated() {
        for d in held { remaining[d] = remaining[d].map { $0 - batch.experts[k].byteCount } }
      }
      for d in batch.targets { pending[d] -= total }
      placed.append(result)
    }
    // Balanced: when the greedy pass left a device over its budget, any placement that fits.
    let overflow = zip(budgets, remaining).contains { budget, left in (budget ?? 0) >= 0 && (left ?? 0) < 0 }
    guard strategy == .balanced, overflow else { return placed }
    let sizes = batches.flatMap { $0.experts.map(\.byteCount) }
    let allowed = batches.flatMap { batch in batch.experts.map { _ in batch.targets } }
    guard let fit = ExpertPlacement.fit(sizes: sizes, allowed: allowed, budgets: budgets) else { return placed }
    var item = 0
    return batches.map { batch in
      batch.experts.map { _ in
        defer { item += 1 }
        return [fit[item]]
      }
    }
  }

  /// Records a layer's placement: its groups' devices, fused tensors' per-device experts, slots.
  private mutating func record(layer: Int, items: [ExpertItem], placedDevices: [[Int]]) {
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
    let slots = items.indices.map { p in
      placedDevices[p].map { d in ExpertSlot(device: d, localIndex: deviceExperts[d].firstIndex(of: items[p].expert) ?? 0) }
    }
    moeLayers.append(MoELayerPlacement(layer: layer, experts: items.map(\.expert), slots: slots, deviceExperts: deviceExperts))
  }

  // MARK: - The plan

  func makePlan() throws(ShardingError) -> ShardPlan {
    let (deviceTensors, expertBytes, skippedList) = try deviceTensorLists()
    let loads = expertLoadSums()
    var files: [PlannedOutputFile] = []
    var devicePlans: [DevicePlan] = []
    for (d, device) in devices.enumerated() {
      let list = deviceTensors[d]
      var seen = NameIndex(capacity: list.count)
      for position in list.indices where seen.insert(list[position].name, position: position, nameAt: { list[$0].name }) != nil {
        throw .duplicateOutputName(name: list[position].name, device: device.name)
      }
      var fileIndices: [Int] = []
      for file in outputFiles(of: list, device: d) {
        fileIndices.append(files.count)
        files.append(file)
      }
      devicePlans.append(DevicePlan(
        device: device, tensors: list, tensorByteCount: list.reduce(0) { $0 + $1.byteCount }, expertByteCount: expertBytes[d],
        fileIndices: fileIndices, directory: deepSeek ? "" : device.name, reserveByteCount: options.reserveByteCount,
        expertLoad: loads?[d]))
    }
    return ShardPlan(source: source, options: options, devices: devicePlans, moeLayers: moeLayers, files: files, skippedTensors: skippedList)
  }

  /// Per device its tensors in source-file order (so copies read each input sequentially) and its
  /// routed-expert bytes; the skipped source tensors, ascending.
  private func deviceTensorLists() throws(ShardingError) -> (tensors: [[PlannedShardTensor]], expertBytes: [Int], skipped: [Int]) {
    let tensors = source.tensors
    var outputNames = tensors.map(\.name)
    if deepSeek {
      for i in tensors.indices where !skipped[i] { outputNames[i] = try DeepSeekMPNaming.rename(tensors[i].name).name }
    }
    // Sorted on a flat copy of the keys (comparing through `tensors` would copy a tensor per comparison).
    let places = tensors.map { (file: $0.fileIndex, offset: $0.fileOffset) }
    let order = places.indices.sorted {
      places[$0].file != places[$1].file ? places[$0].file < places[$1].file : places[$0].offset < places[$1].offset
    }
    var deviceTensors = [[PlannedShardTensor]](repeating: [], count: devices.count)
    var expertBytes = [Int](repeating: 0, count: devices.count)
    var skippedList: [Int] = []
    for t in order {
      let g = groupOf[t]
      guard !skipped[t], g >= 0 else {
        skippedList.append(t)
        continue
      }
      let targetSet = groupDevices[g]
      for (k, d) in targetSet.enumerated() {
        let planned = share(ofTensor: t, name: outputNames[t], part: k, of: targetSet.count, device: d)
        if classes[t].isRoutedExpert { expertBytes[d] += planned.byteCount }
        deviceTensors[d].append(planned)
      }
    }
    return (deviceTensors, expertBytes, skippedList.sorted())
  }

  /// A device's output files: convert.py's one file per rank (deepseek-mp), else Hugging Face size shards.
  private func outputFiles(of list: [PlannedShardTensor], device d: Int) -> [PlannedOutputFile] {
    if deepSeek {
      return [PlannedOutputFile(
        relativePath: "model\(d)-mp\(devices.count).safetensors", device: d, tensorIndices: Array(list.indices),
        tensorByteCount: list.reduce(0) { $0 + $1.byteCount }, formatMetadata: false)]
    }
    let shards = OutputSharding.assign(itemByteCounts: list.map(\.byteCount), maxByteCount: options.maxFileByteCount)
    let names = OutputSharding.fileNames(count: shards.count)
    return zip(shards, names).map { items, name in
      PlannedOutputFile(
        relativePath: devices[d].name + "/" + name, device: d, tensorIndices: items,
        tensorByteCount: items.reduce(0) { $0 + list[$1].byteCount }, formatMetadata: true)
    }
  }

  /// With `--expert-load`: per device, the summed load of its experts over the layers the file lists.
  private func expertLoadSums() -> [Double]? {
    guard let load = options.expertLoad else { return nil }
    var sums = [Double](repeating: 0, count: devices.count)
    for layer in moeLayers {
      guard let counts = load.counts[layer.layer] else { continue }
      for (expert, slots) in zip(layer.experts, layer.slots) where expert < counts.count && !slots.isEmpty {
        for slot in slots { sums[slot.device] += counts[expert] / Double(slots.count) }
      }
    }
    return sums
  }
}
