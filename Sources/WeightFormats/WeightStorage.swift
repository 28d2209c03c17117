import SafeTensors
import TensorCore

/// The identifier of a weight format: how a linear layer's weight is stored on disk. An open set: each format
/// declares its own identifier next to its `WeightFormat` (`extension WeightStorage { static let ... }`), so
/// a new format adds no case to a central enum. The raw value is the name `inspect --json`, validation
/// reports and error messages show.
public struct WeightStorage: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
  public let rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }
  public var description: String { rawValue }

  /// Every registered storage, in detection order.
  public static var allCases: [WeightStorage] { WeightFormats.all.map(\.storage) }
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

  /// The format that reads this group.
  public var format: any WeightFormat { WeightFormats.format(of: storage) }
}

/// The tensors of one module (`model.layers.3.self_attn.q_a_proj`) that no format has claimed yet: what a
/// format's `claim(_:)` looks at.
///
/// Leaves are kept as positions in the caller's entry array, sorted by leaf bytes, so that looking a leaf
/// up is a binary search and no leaf string is made unless a format asks for one; claimed leaves are
/// flags. Cost per module is independent of how many modules there are (and O(log n) per lookup in a
/// module of n leaves: a million dot-free names share the module `""`).
public struct ModuleTensors {
  /// The module path (`""` for top-level tensors).
  public let module: String
  private let entries: [TensorEntry]
  /// Byte offset of each entry's leaf in its name (parallel to `entries`).
  private let leafStart: [Int32]
  /// Positions in `entries`, sorted by leaf, leaves distinct.
  private let order: ArraySlice<Int>
  /// Per position of `order` (from its start): claimed by a format.
  private var claimedFlags: [Bool]

  fileprivate init(module: String, entries: [TensorEntry], leafStart: [Int32], order: ArraySlice<Int>) {
    self.module = module
    self.entries = entries
    self.leafStart = leafStart
    self.order = order
    claimedFlags = Array(repeating: false, count: order.count)
  }

  /// Leaf name → header entry, sorted by leaf (made on demand).
  public var leaves: [(leaf: String, entry: TensorEntry)] { order.indices.map { (leaf(at: $0), entries[order[$0]]) } }

  /// Leaves already claimed by a format.
  public var claimed: Set<String> { Set(order.indices.filter { isClaimed($0) }.map(leaf(at:))) }

  /// The unclaimed entry for `leaf`.
  public func entry(_ leaf: String) -> TensorEntry? {
    guard let k = position(of: leaf), !isClaimed(k) else { return nil }
    return entries[order[k]]
  }

  /// Whether an unclaimed `leaf` exists.
  public func has(_ leaf: String) -> Bool { entry(leaf) != nil }

  /// Unclaimed leaves, in order.
  public var unclaimedLeaves: [String] { order.indices.filter { !isClaimed($0) }.map(leaf(at:)) }

  /// The full tensor name of `leaf` (the entry's own name when the module has that leaf).
  public func name(_ leaf: String) -> String {
    if let k = position(of: leaf) { return entries[order[k]].name }
    return module.isEmpty ? leaf : module + "." + leaf
  }

  /// Claims the present `roles` (leaf names) as one group of `storage` named `modulePath` (the module by
  /// default) and returns it; absent optional roles are skipped.
  public mutating func claim(_ storage: WeightStorage, roles: [String], modulePath: String? = nil) -> WeightGroup {
    var parts: [String: String] = [:]
    for role in roles {
      guard let k = position(of: role), !isClaimed(k) else { continue }
      parts[role] = entries[order[k]].name
      claimedFlags[k - order.startIndex] = true
    }
    return WeightGroup(modulePath: modulePath ?? module, storage: storage, parts: parts)
  }

  /// Claims leaves under role names of the format's choosing (`leaf → role`).
  public mutating func claim(_ storage: WeightStorage, modulePath: String, leavesByRole: [String: String]) -> WeightGroup {
    var parts: [String: String] = [:]
    for (role, leaf) in leavesByRole {
      guard let k = position(of: leaf), !isClaimed(k) else { continue }
      parts[role] = entries[order[k]].name
      claimedFlags[k - order.startIndex] = true
    }
    return WeightGroup(modulePath: modulePath, storage: storage, parts: parts)
  }

  private func isClaimed(_ k: Int) -> Bool { claimedFlags[k - order.startIndex] }

  private func leaf(at k: Int) -> String {
    let entry = order[k]
    return WeightGrouping.withUTF8(entries[entry].name) {
      String(decoding: UnsafeRawBufferPointer(rebasing: $0[Int(leafStart[entry])...]), as: UTF8.self)
    }
  }

  /// The position in `order` of `leaf`, by binary search over leaf bytes.
  private func position(of leaf: String) -> Int? {
    WeightGrouping.withUTF8(leaf) { wanted in
      var low = order.startIndex
      var high = order.endIndex
      while low < high {
        let mid = (low + high) / 2
        let c = WeightGrouping.compareLeaf(of: entries[order[mid]].name, from: Int(leafStart[order[mid]]), with: wanted)
        if c == 0 { return mid }
        if c < 0 { low = mid + 1 } else { high = mid }
      }
      return nil
    }
  }
}

/// Groups tensor names into logical weights by their companions.
public enum WeightGrouping {
  /// Detects the storage layout of every module in `entries` (each registered format, in registry order,
  /// claims the tensors it recognizes) and returns one group per claimed weight, plus single-tensor `.plain`
  /// groups for everything else (norms, biases, embeddings).
  ///
  /// The grouping is purely by names and dtypes; it does not read tensor data. A module is the name up to
  /// its last `.` (names without one share the module `""`). Modules come out in first-appearance order;
  /// within a module, formats see the leaves in byte order. O(n log n) in tensors whatever the names:
  /// tensors are bucketed by module with one hash lookup each, and leaves are found by binary search.
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
    // 3. Each module's leaves in byte order (a repeated leaf keeps its last entry); the formats claim them.
    let formats = WeightFormats.all
    for m in 0..<moduleCount {
      let bucket = starts[m]..<starts[m + 1]
      if bucket.count > 1 {
        // Sorted in place before any slice of `order` is taken (so the sort does not copy the array);
        // entry order breaks ties, so the sort need not be stable.
        order[bucket].sort { l, r in
          let c = compareLeaves(entries, leafStart, l, r)
          return c != 0 ? c < 0 : l < r
        }
      }
      var leaves = order[bucket]
      if leaves.count > 1,
        leaves.indices.dropFirst().contains(where: { compareLeaves(entries, leafStart, leaves[$0 - 1], leaves[$0]) == 0 })
      {
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
      var module = ""
      withModuleName(m) { module = String(decoding: $0, as: UTF8.self) }
      var tensors = ModuleTensors(module: module, entries: entries, leafStart: leafStart, order: leaves)
      for format in formats {
        for group in format.claim(&tensors) { try body(group) }
      }
    }
  }

  /// Byte order of the leaves (the part after the last `.`) of entries `a` and `b`: -1, 0 or 1.
  static func compareLeaves(_ entries: [TensorEntry], _ leafStart: [Int32], _ a: Int, _ b: Int) -> Int {
    withUTF8(entries[b].name) { r in
      compareLeaf(of: entries[a].name, from: Int(leafStart[a]), with: UnsafeRawBufferPointer(rebasing: r[Int(leafStart[b])...]))
    }
  }

  /// Byte order of `name`'s bytes from `start` against `other`: -1, 0 or 1.
  static func compareLeaf(of name: String, from start: Int, with other: UnsafeRawBufferPointer) -> Int {
    withUTF8(name) { l in
      let leaf = UnsafeRawBufferPointer(rebasing: l[start...])
      let common = min(leaf.count, other.count)
      var i = 0
      while i < common {
        if leaf[i] != other[i] { return leaf[i] < other[i] ? -1 : 1 }
        i += 1
      }
      return leaf.count == other.count ? 0 : (leaf.count < other.count ? -1 : 1)
    }
  }

  static func withUTF8<R>(_ name: String, _ body: (UnsafeRawBufferPointer) -> R) -> R { NameIndex.withUTF8(name, body) }
}
