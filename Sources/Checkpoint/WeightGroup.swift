import SafeTensors
import TensorCore

/// How a linear layer's weight is stored on disk: plain, or one of the quantized layouts Smelt reads.
public enum WeightStorage: String, Sendable, CaseIterable, Codable {
  /// One floating-point `weight` tensor (F32/F16/BF16/...).
  case plain
  /// DeepSeek / HF `fp8`: `weight` F8_E4M3 + `weight_scale_inv` F32 block scales.
  case fp8Block = "fp8-block"
  /// compressed-tensors `float-quantized`: `weight` F8_E4M3 + `weight_scale` (block, channel or tensor).
  case fp8CompressedTensors = "fp8-compressed-tensors"
  /// compressed-tensors `pack-quantized` int4: `weight_packed` I32 + `weight_scale` + `weight_shape`.
  case int4PackQuantized = "int4-pack-quantized"
  /// GPTQ v1: `qweight`, `qzeros`, `scales`, `g_idx`.
  case gptq
  /// MLX affine: `weight` U32 + `scales` + `biases`.
  case mlxAffine = "mlx-affine"
  /// compressed-tensors `mxfp4-pack-quantized`: `weight_packed` U8 + `weight_scale` U8 (E8M0).
  case mxfp4CompressedTensors = "mxfp4-pack-quantized"
  /// gpt-oss MXFP4: `<name>_blocks` U8 + `<name>_scales` U8.
  case mxfp4GptOss = "mxfp4-gpt-oss"
  /// NVIDIA ModelOpt NVFP4: `weight` U8 + `weight_scale` F8_E4M3 + `weight_scale_2` F32.
  case nvfp4ModelOpt = "nvfp4-modelopt"
  /// compressed-tensors `nvfp4-pack-quantized`: `weight_packed` U8 + `weight_scale` F8_E4M3 + `weight_global_scale`.
  case nvfp4CompressedTensors = "nvfp4-pack-quantized"
}

/// One logical weight and the tensors that store it (a quantized weight's scales, zero points, shape
/// tensors). Shard plans move a group as a unit, so companions never end up on different devices.
public struct WeightGroup: Sendable {
  /// The module path (`model.layers.3.mlp.experts.7.up_proj`), or for gpt-oss the tensor stem.
  public var modulePath: String
  /// The storage layout.
  public var storage: WeightStorage
  /// Role → tensor name, e.g. `"weight"`, `"weight_scale_inv"`, `"qweight"`.
  public var parts: [String: String]

  public init(modulePath: String, storage: WeightStorage, parts: [String: String]) {
    self.modulePath = modulePath
    self.storage = storage
    self.parts = parts
  }

  /// All tensor names of the group, sorted.
  public var tensorNames: [String] { parts.values.sorted() }
}

/// Groups tensor names into logical weights by their companions.
public enum WeightGrouping {
  /// Detects the storage layout of every module in `entries` and returns one group per module that has a
  /// weight-like tensor, plus single-tensor `.plain` groups for everything else (norms, biases, embeddings).
  ///
  /// The grouping is purely by names and dtypes; it does not read tensor data. A module is the name up to
  /// its last `.` (names without one share the module `""`). Modules come out in first-appearance order;
  /// within a module, leaves are considered in byte order. O(n log n) in tensors, whatever the names:
  /// tensors are bucketed by module with one hash lookup each, and companions are found by binary search
  /// in the module's sorted leaves.
  public static func groups(of entries: [TensorEntry]) -> [WeightGroup] {
    var groups: [WeightGroup] = []
    groups.reserveCapacity(entries.count / 2)
    forEachGroup(of: entries) { groups.append($0) }
    return groups
  }

  /// Calls `body` with each group `groups(of:)` returns, in the same order, without keeping them.
  public static func forEachGroup(of entries: [TensorEntry], _ body: (WeightGroup) throws -> Void) rethrows {
    let count = entries.count
    guard count > 0 else { return }
    // 1. The module of every entry, and where its leaf starts in the name. A module is known by its
    // first entry and the length of its name there (no string is made for it yet).
    var moduleOf = [Int32](repeating: 0, count: count)
    var leafStart = [Int32](repeating: 0, count: count)
    var moduleFirstEntry: [Int32] = []
    var moduleIndex = NameIndex(capacity: count / 2)
    func withModuleName(_ module: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
      let entry = Int(moduleFirstEntry[module])
      withUTF8(entries[entry].name) { body(UnsafeRawBufferPointer(rebasing: $0[..<max(0, Int(leafStart[entry]) - 1)])) }
    }
    for i in 0..<count {
      moduleOf[i] = Int32(withUTF8(entries[i].name) { name -> Int in
        var dot = name.count
        while dot > 0, name[dot - 1] != UInt8(ascii: ".") { dot -= 1 }
        leafStart[i] = Int32(dot)
        let moduleBytes = UnsafeRawBufferPointer(rebasing: name[..<max(0, dot - 1)])
        // Checkpoints list a module's tensors next to each other: compare with the previous name first.
        if i > 0, withUTF8(entries[i - 1].name, { previous -> Bool in
          NameIndex.bytesEqual(UnsafeRawBufferPointer(rebasing: previous[..<max(0, Int(leafStart[i - 1]) - 1)]), moduleBytes)
        }) {
          return Int(moduleOf[i - 1])
        }
        if let known = moduleIndex.position(ofUTF8: moduleBytes, withNameAt: withModuleName) { return known }
        moduleFirstEntry.append(Int32(i))
        moduleIndex.insert(utf8: moduleBytes, position: moduleFirstEntry.count - 1, withNameAt: withModuleName)
        return moduleFirstEntry.count - 1
      })
    }
    let moduleCount = moduleFirstEntry.count
    // 2. Entries bucketed by module (counting sort: stable, so entry order within a module).
    var starts = [Int](repeating: 0, count: moduleCount + 1)
    for module in moduleOf { starts[Int(module) + 1] += 1 }
    for m in 0..<moduleCount { starts[m + 1] += starts[m] }
    var order = [Int](repeating: 0, count: count)
    var fill = starts
    for i in 0..<count {
      let m = Int(moduleOf[i])
      order[fill[m]] = i
      fill[m] += 1
    }
    // 3. Each module's leaves in byte order (a repeated leaf keeps its last entry), then its groups. The
    // buckets of `order` are sorted in place (entry order breaks ties, so the sort need not be stable).
    var claimed = [Bool](repeating: false, count: count)
    for m in 0..<moduleCount {
      let bucket = starts[m]..<starts[m + 1]
      if bucket.count > 1 {
        // Before any slice of `order` is taken, so that the sort does not copy the whole array.
        order[bucket].sort { l, r in
          let c = compareLeaves(entries, leafStart, l, r)
          return c != 0 ? c < 0 : l < r
        }
      }
      var leaves = order[bucket]
      if leaves.count > 1 {
        if leaves.indices.dropFirst().contains(where: { compareLeaves(entries, leafStart, leaves[$0 - 1], leaves[$0]) == 0 }) {
          var unique: [Int] = []
          for entry in leaves {
            if let last = unique.last, compareLeaves(entries, leafStart, last, entry) == 0 {
              unique[unique.count - 1] = entry
            } else {
              unique.append(entry)
            }
          }
          leaves = unique[...]
        }
      }
      var module = ""
      withModuleName(m) { module = String(decoding: $0, as: UTF8.self) }
      try ModuleLeaves(module: module, entries: entries, leafStart: leafStart, leaves: leaves)
        .forEachGroup(claimed: &claimed, body)
    }
  }

  /// Byte order of the leaves (the part after the last `.`) of entries `a` and `b`: -1, 0 or 1.
  fileprivate static func compareLeaves(_ entries: [TensorEntry], _ leafStart: [Int32], _ a: Int, _ b: Int) -> Int {
    withUTF8(entries[a].name) { l in
      withUTF8(entries[b].name) { r in
        compare(UnsafeRawBufferPointer(rebasing: l[Int(leafStart[a])...]), UnsafeRawBufferPointer(rebasing: r[Int(leafStart[b])...]))
      }
    }
  }

  fileprivate static func compare(_ l: UnsafeRawBufferPointer, _ r: UnsafeRawBufferPointer) -> Int {
    let common = min(l.count, r.count)
    var i = 0
    while i < common {
      if l[i] != r[i] { return l[i] < r[i] ? -1 : 1 }
      i += 1
    }
    return l.count == r.count ? 0 : (l.count < r.count ? -1 : 1)
  }

  fileprivate static func withUTF8<R>(_ name: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    NameIndex.withUTF8(name, body)
  }
}

/// One module's leaves, sorted by bytes: the storage detection rules.
private struct ModuleLeaves {
  let module: String
  let entries: [TensorEntry]
  let leafStart: [Int32]
  /// Entry indices, sorted by leaf, leaves distinct.
  let leaves: ArraySlice<Int>

  /// The position in `leaves` of leaf `leaf`, by binary search.
  func find(_ leaf: UnsafeRawBufferPointer) -> Int? {
    var low = leaves.startIndex
    var high = leaves.endIndex
    while low < high {
      let mid = (low + high) / 2
      let c = WeightGrouping.withUTF8(entries[leaves[mid]].name) { name in
        WeightGrouping.compare(UnsafeRawBufferPointer(rebasing: name[Int(leafStart[leaves[mid]])...]), leaf)
      }
      if c == 0 { return mid }
      if c < 0 { low = mid + 1 } else { high = mid }
    }
    return nil
  }

  func find(_ leaf: String) -> Int? { WeightGrouping.withUTF8(leaf) { find($0) } }

  func entry(_ leaf: String) -> TensorEntry? { find(leaf).map { entries[leaves[$0]] } }

  func has(_ leaf: String) -> Bool { find(leaf) != nil }

  func leafName(_ k: Int) -> String {
    WeightGrouping.withUTF8(entries[leaves[k]].name) {
      String(decoding: UnsafeRawBufferPointer(rebasing: $0[Int(leafStart[leaves[k]])...]), as: UTF8.self)
    }
  }

  func join(_ leaf: String) -> String { module.isEmpty ? leaf : module + "." + leaf }

  /// Calls `body` with each group of the module. `claimed` is indexed by entry (all false for this
  /// module's entries on entry).
  func forEachGroup(claimed: inout [Bool], _ body: (WeightGroup) throws -> Void) rethrows {
    func claim(_ storage: WeightStorage, _ roles: [String]) -> WeightGroup {
      var parts: [String: String] = [:]
      for role in roles {
        guard let k = find(role) else { continue }
        parts[role] = entries[leaves[k]].name
        claimed[leaves[k]] = true
      }
      return WeightGroup(modulePath: module, storage: storage, parts: parts)
    }
    let weight = entry("weight")
    if let weight, weight.dtype == .float8E4M3FN, has("weight_scale_inv") {
      try body(claim(.fp8Block, ["weight", "weight_scale_inv"]))
    } else if let weight, weight.dtype == .float8E4M3FN, has("weight_scale") {
      try body(claim(.fp8CompressedTensors, ["weight", "weight_scale", "input_scale"]))
    } else if let packed = entry("weight_packed"), packed.dtype == .int32, has("weight_scale") {
      try body(claim(.int4PackQuantized, ["weight_packed", "weight_scale", "weight_shape", "weight_zero_point", "weight_g_idx"]))
    } else if let packed = entry("weight_packed"), packed.dtype == .uint8, has("weight_global_scale") {
      try body(claim(.nvfp4CompressedTensors, ["weight_packed", "weight_scale", "weight_global_scale", "input_global_scale"]))
    } else if let packed = entry("weight_packed"), packed.dtype == .uint8, has("weight_scale") {
      try body(claim(.mxfp4CompressedTensors, ["weight_packed", "weight_scale"]))
    } else if has("qweight"), has("scales") {
      try body(claim(.gptq, ["qweight", "qzeros", "scales", "g_idx"]))
    } else if let weight, weight.dtype == .uint32, has("scales") {
      try body(claim(.mlxAffine, ["weight", "scales", "biases"]))
    } else if let weight, weight.dtype == .uint8, has("weight_scale"), has("weight_scale_2") {
      try body(claim(.nvfp4ModelOpt, ["weight", "weight_scale", "weight_scale_2", "input_scale"]))
    }
    // gpt-oss: `<stem>_blocks` + `<stem>_scales` (e.g. experts.gate_up_proj_blocks).
    for k in leaves.indices where !claimed[leaves[k]] {
      let isBlocks = WeightGrouping.withUTF8(entries[leaves[k]].name) { $0.count - Int(leafStart[leaves[k]]) >= 7 && $0.suffix(7).elementsEqual("_blocks".utf8) }
      guard isBlocks else { continue }
      let leaf = leafName(k)
      let stem = String(leaf.dropLast("_blocks".count))
      guard let scales = find(stem + "_scales") else { continue }
      claimed[leaves[k]] = true
      claimed[leaves[scales]] = true
      try body(WeightGroup(
        modulePath: join(stem), storage: .mxfp4GptOss,
        parts: ["blocks": entries[leaves[k]].name, "scales": entries[leaves[scales]].name]))
    }
    for k in leaves.indices where !claimed[leaves[k]] {
      // The module path of a lone tensor is its whole name.
      let name = entries[leaves[k]].name
      try body(WeightGroup(modulePath: name, storage: .plain, parts: ["weight": name]))
    }
  }
}
