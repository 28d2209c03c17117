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
public struct ModuleTensors {
  /// The module path (`""` for top-level tensors).
  public let module: String
  /// Leaf name → header entry, sorted by leaf.
  public private(set) var leaves: [(leaf: String, entry: TensorEntry)]
  /// Leaves already claimed by a format.
  public private(set) var claimed: Set<String> = []

  init(module: String, leaves: [(leaf: String, entry: TensorEntry)]) {
    self.module = module
    self.leaves = leaves
  }

  /// The unclaimed entry for `leaf`.
  public func entry(_ leaf: String) -> TensorEntry? {
    guard !claimed.contains(leaf) else { return nil }
    return leaves.first { $0.leaf == leaf }?.entry
  }

  /// Whether an unclaimed `leaf` exists.
  public func has(_ leaf: String) -> Bool { entry(leaf) != nil }

  /// Unclaimed leaves, in order.
  public var unclaimedLeaves: [String] { leaves.map(\.leaf).filter { !claimed.contains($0) } }

  /// The full tensor name of `leaf`.
  public func name(_ leaf: String) -> String { module.isEmpty ? leaf : module + "." + leaf }

  /// Claims the present `roles` (leaf names) as one group of `storage` named `modulePath` (the module by
  /// default) and returns it; absent optional roles are skipped.
  public mutating func claim(_ storage: WeightStorage, roles: [String], modulePath: String? = nil) -> WeightGroup {
    var parts: [String: String] = [:]
    for role in roles where has(role) {
      parts[role] = name(role)
      claimed.insert(role)
    }
    return WeightGroup(modulePath: modulePath ?? module, storage: storage, parts: parts)
  }

  /// Claims leaves under role names of the format's choosing (`leaf → role`).
  public mutating func claim(_ storage: WeightStorage, modulePath: String, leavesByRole: [String: String]) -> WeightGroup {
    var parts: [String: String] = [:]
    for (role, leaf) in leavesByRole where has(leaf) {
      parts[role] = name(leaf)
      claimed.insert(leaf)
    }
    return WeightGroup(modulePath: modulePath, storage: storage, parts: parts)
  }
}

/// Groups tensor names into logical weights by their companions.
public enum WeightGrouping {
  /// Detects the storage layout of every module in `entries` (each registered format, in registry order,
  /// claims the tensors it recognizes) and returns one group per claimed weight, plus single-tensor `.plain`
  /// groups for everything else (norms, biases, embeddings).
  ///
  /// The grouping is purely by names and dtypes; it does not read tensor data.
  public static func groups(of entries: [TensorEntry]) -> [WeightGroup] {
    // Modules in first-appearance order, each with its few leaves. Checkpoints list a module's tensors
    // next to each other, so the previous module is checked before hashing.
    var moduleIndex: [String: Int] = [:]
    var modules: [(name: String, leaves: [(leaf: String, entry: TensorEntry)])] = []
    var previousModule: String?
    var previousIndex = 0
    for entry in entries {
      let (module, leaf) = split(entry.name)
      let index: Int
      if module == previousModule {
        index = previousIndex
      } else if let known = moduleIndex[module] {
        index = known
      } else {
        index = modules.count
        moduleIndex[module] = index
        modules.append((module, []))
      }
      previousModule = module
      previousIndex = index
      if let existing = modules[index].leaves.firstIndex(where: { $0.leaf == leaf }) {
        modules[index].leaves[existing].entry = entry
      } else {
        modules[index].leaves.append((leaf, entry))
      }
    }
    var groups: [WeightGroup] = []
    groups.reserveCapacity(modules.count)
    let formats = WeightFormats.all
    for (module, unsortedLeaves) in modules {
      let leaves = unsortedLeaves.count > 1 ? unsortedLeaves.sorted { $0.leaf < $1.leaf } : unsortedLeaves
      var tensors = ModuleTensors(module: module, leaves: leaves)
      for format in formats { groups += format.claim(&tensors) }
    }
    return groups
  }

  private static func split(_ name: String) -> (String, String) {
    guard let dot = name.lastIndex(of: ".") else { return ("", name) }
    return (String(name[..<dot]), String(name[name.index(after: dot)...]))
  }
}
