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
/// Leaves are interned once per grouping (`LeafTable`: each distinct leaf gets an id in byte order), and a
/// module is a range of positions in the table's flat order, sorted by leaf id, leaves distinct. Looking a
/// leaf up is a binary search over the distinct leaves and then over the module's ids (integers, no string
/// made or compared per module); claimed leaves are bits. A copy costs two retains, whatever the module's
/// size. Cost per module is independent of how many modules there are (and O(log n) per lookup in a
/// module of n leaves: a million dot-free names share the module `""`).
public struct ModuleTensors {
  /// The module path (`""` for top-level tensors).
  public let module: String
  private let table: LeafTable
  /// Positions in `table.order` (and `table.orderLeafID`) of this module's entries.
  private let range: Range<Int>
  /// Claimed flags of the first 64 positions (from `range.lowerBound`), as bits.
  private var claimedBits: UInt64 = 0
  /// Claimed flags of positions 64 and up (empty unless the module has more than 64 leaves).
  private var claimedBeyond64: [Bool]

  fileprivate init(module: String, table: LeafTable, range: Range<Int>) {
    self.module = module
    self.table = table
    self.range = range
    claimedBeyond64 = range.count > 64 ? Array(repeating: false, count: range.count - 64) : []
  }

  /// Leaf name → header entry, sorted by leaf (made on demand).
  public var leaves: [(leaf: String, entry: TensorEntry)] { range.map { (leaf(at: $0), table.entries[table.order[$0]]) } }

  /// Leaves already claimed by a format.
  public var claimed: Set<String> { Set(range.filter { isClaimed($0) }.map(leaf(at:))) }

  /// The unclaimed entry for `leaf`.
  public func entry(_ leaf: String) -> TensorEntry? {
    guard let k = position(of: leaf), !isClaimed(k) else { return nil }
    return table.entries[table.order[k]]
  }

  /// Whether an unclaimed `leaf` exists.
  public func has(_ leaf: String) -> Bool {
    guard let k = position(of: leaf) else { return false }
    return !isClaimed(k)
  }

  /// Unclaimed leaves, in order.
  public var unclaimedLeaves: [String] { range.filter { !isClaimed($0) }.map(leaf(at:)) }

  /// The full tensor name of `leaf` (the entry's own name when the module has that leaf).
  public func name(_ leaf: String) -> String {
    if let k = position(of: leaf) { return table.entries[table.order[k]].name }
    return module.isEmpty ? leaf : module + "." + leaf
  }

  /// Claims the present `roles` (leaf names) as one group of `storage` named `modulePath` (the module by
  /// default) and returns it; absent optional roles are skipped.
  public mutating func claim(_ storage: WeightStorage, roles: [String], modulePath: String? = nil) -> WeightGroup {
    // Sized up front: grown one role at a time, a two-tensor group's dictionary would be allocated twice.
    var parts = [String: String](minimumCapacity: roles.count)
    for role in roles {
      guard let k = position(of: role), !isClaimed(k) else { continue }
      parts[role] = table.entries[table.order[k]].name
      markClaimed(k)
    }
    return WeightGroup(modulePath: modulePath ?? module, storage: storage, parts: parts)
  }

  /// Claims leaves under role names of the format's choosing (`leaf → role`).
  public mutating func claim(_ storage: WeightStorage, modulePath: String, leavesByRole: [String: String]) -> WeightGroup {
    var parts = [String: String](minimumCapacity: leavesByRole.count)
    for (role, leaf) in leavesByRole {
      guard let k = position(of: leaf), !isClaimed(k) else { continue }
      parts[role] = table.entries[table.order[k]].name
      markClaimed(k)
    }
    return WeightGroup(modulePath: modulePath, storage: storage, parts: parts)
  }

  private func isClaimed(_ k: Int) -> Bool {
    let offset = k - range.lowerBound
    return offset < 64 ? claimedBits & (1 << UInt64(offset)) != 0 : claimedBeyond64[offset - 64]
  }

  private mutating func markClaimed(_ k: Int) {
    let offset = k - range.lowerBound
    if offset < 64 { claimedBits |= 1 << UInt64(offset) } else { claimedBeyond64[offset - 64] = true }
  }

  private func leaf(at k: Int) -> String { table.distinctLeaves[Int(table.orderLeafID[k])] }

  /// The position in `table.order` of `leaf`: its id, then a binary search over the module's ids.
  private func position(of leaf: String) -> Int? {
    guard let id = table.id(of: leaf) else { return nil }
    let ids = table.orderLeafID
    var low = range.lowerBound
    var high = range.upperBound
    while low < high {
      let mid = (low + high) / 2
      let c = ids[mid]
      if c == id { return mid }
      if c < id { low = mid + 1 } else { high = mid }
    }
    return nil
  }
}

/// The entries of one grouping run with their leaves interned, shared by every `ModuleTensors` of the run.
final class LeafTable {
  let entries: [TensorEntry]
  /// The distinct leaves, in byte order; a leaf's id is its position here.
  let distinctLeaves: [String]
  /// The distinct leaves' bytes, concatenated (leaf `k` is `distinctBytes[distinctStart[k]..<distinctStart[k + 1]]`).
  private let distinctBytes: [UInt8]
  private let distinctStart: [Int]
  /// Entry positions, module by module, each module's sorted by leaf id, leaves distinct.
  let order: [Int]
  /// The leaf id of each entry of `order` (parallel to it).
  let orderLeafID: [Int32]

  init(entries: [TensorEntry], distinctLeaves: [String], order: [Int], orderLeafID: [Int32]) {
    self.entries = entries
    self.distinctLeaves = distinctLeaves
    var bytes: [UInt8] = []
    var starts = [0]
    starts.reserveCapacity(distinctLeaves.count + 1)
    for leaf in distinctLeaves {
      bytes.append(contentsOf: leaf.utf8)
      starts.append(bytes.count)
    }
    distinctBytes = bytes
    distinctStart = starts
    self.order = order
    self.orderLeafID = orderLeafID
  }

  /// The id of `leaf`, or nil when no entry has that leaf (a binary search over the distinct leaves).
  func id(of leaf: String) -> Int32? {
    NameIndex.withUTF8(leaf) { wanted in
      distinctBytes.withUnsafeBytes { all in
        var low = 0
        var high = distinctStart.count - 1
        while low < high {
          let mid = (low + high) / 2
          let c = WeightGrouping.compareBytes(
            UnsafeRawBufferPointer(rebasing: all[distinctStart[mid]..<distinctStart[mid + 1]]), wanted)
          if c == 0 { return Int32(mid) }
          if c < 0 { low = mid + 1 } else { high = mid }
        }
        return nil
      }
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
    try forEachGroup(of: entries, askingEveryFormat: false, body)
  }

  /// `forEachGroup(of:_:)`; with `askingEveryFormat` every module is offered to every format, the plain twin
  /// of skipping the formats whose `mayClaim(amongLeaves:)` rules them out for the whole checkpoint.
  static func forEachGroup(
    of entries: [TensorEntry], askingEveryFormat: Bool, _ body: (WeightGroup) throws -> Void
  ) rethrows {
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
    // The leaves, interned: each distinct leaf is known by its first entry (ids in first-appearance order
    // here, renumbered in byte order below).
    var leafOf = [Int32](repeating: 0, count: count)
    var leafFirstEntry: [Int32] = []
    var leafIndex = NameIndex(capacity: 64)
    func withLeafName(_ leaf: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
      let entry = Int(leafFirstEntry[leaf])
      withUTF8(entries[entry].name) { body(UnsafeRawBufferPointer(rebasing: $0[Int(leafStart[entry])...])) }
    }
    for i in 0..<count {
      moduleOf[i] = Int32(withUTF8(entries[i].name) { name -> Int in
        var dot = name.count
        while dot > 0, name[dot - 1] != UInt8(ascii: ".") { dot -= 1 }
        leafStart[i] = Int32(dot)
        let leafBytes = UnsafeRawBufferPointer(rebasing: name[dot...])
        if let known = leafIndex.position(ofUTF8: leafBytes, withNameAt: withLeafName) {
          leafOf[i] = Int32(known)
        } else {
          leafFirstEntry.append(Int32(i))
          leafIndex.insert(utf8: leafBytes, position: leafFirstEntry.count - 1, withNameAt: withLeafName)
          leafOf[i] = Int32(leafFirstEntry.count - 1)
        }
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
    // Leaf ids in byte order of the leaves, so that sorting a module by id sorts it by leaf.
    let byBytes = leafFirstEntry.indices.sorted { l, r in
      compareLeaves(entries, leafStart, Int(leafFirstEntry[l]), Int(leafFirstEntry[r])) < 0
    }
    var rank = [Int32](repeating: 0, count: byBytes.count)
    for (r, leaf) in byBytes.enumerated() { rank[leaf] = Int32(r) }
    let distinctLeaves = byBytes.map { leaf -> String in
      var name = ""
      withLeafName(leaf) { name = String(decoding: $0, as: UTF8.self) }
      return name
    }
    for i in 0..<count { leafOf[i] = rank[Int(leafOf[i])] }

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
    // 3. Each module's leaves in byte order (by id; a repeated leaf keeps its last entry), compacted in
    // place: module m ends up at starts[m]..<ends[m].
    var orderLeafID = [Int32](repeating: 0, count: count)
    var ends = [Int](repeating: 0, count: moduleCount)
    for m in 0..<moduleCount {
      let bucket = starts[m]..<starts[m + 1]
      if bucket.count > 1 {
        // Entry order breaks ties, so the sort need not be stable.
        order[bucket].sort { l, r in leafOf[l] != leafOf[r] ? leafOf[l] < leafOf[r] : l < r }
      }
      var end = bucket.lowerBound
      for k in bucket {
        let entry = order[k]
        if end > bucket.lowerBound, orderLeafID[end - 1] == leafOf[entry] {
          order[end - 1] = entry
        } else {
          order[end] = entry
          orderLeafID[end] = leafOf[entry]
          end += 1
        }
      }
      ends[m] = end
    }
    // 4. The formats claim them.
    let table = LeafTable(entries: entries, distinctLeaves: distinctLeaves, order: order, orderLeafID: orderLeafID)
    let leafSet = Set(distinctLeaves)
    let formats = askingEveryFormat ? WeightFormats.all : WeightFormats.all.filter { $0.mayClaim(amongLeaves: leafSet) }
    for m in 0..<moduleCount {
      var module = ""
      withModuleName(m) { module = String(decoding: $0, as: UTF8.self) }
      var tensors = ModuleTensors(module: module, table: table, range: starts[m]..<ends[m])
      for format in formats {
        for group in format.claim(&tensors) { try body(group) }
      }
    }
  }

  /// Byte order of the leaves (the part after the last `.`) of entries `a` and `b`: -1, 0 or 1.
  static func compareLeaves(_ entries: [TensorEntry], _ leafStart: [Int32], _ a: Int, _ b: Int) -> Int {
    withUTF8(entries[a].name) { l in
      withUTF8(entries[b].name) { r in
        compareBytes(
          UnsafeRawBufferPointer(rebasing: l[Int(leafStart[a])...]), UnsafeRawBufferPointer(rebasing: r[Int(leafStart[b])...]))
      }
    }
  }

  /// Byte order of `a` against `b`: -1, 0 or 1.
  static func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let common = min(a.count, b.count)
    var i = 0
    while i < common {
      if a[i] != b[i] { return a[i] < b[i] ? -1 : 1 }
      i += 1
    }
    return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
  }

  static func withUTF8<R>(_ name: String, _ body: (UnsafeRawBufferPointer) -> R) -> R { NameIndex.withUTF8(name, body) }
}
