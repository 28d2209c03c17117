/// A command-line option that refines some `--to` names and means nothing to the others (a usage error there).
public enum TargetRefinement: String, Sendable, CaseIterable, Comparable {
  case blockSize = "block-size"
  case scaleFormat = "scale-format"
  case compressedTensors = "compressed-tensors"
  case groupSize = "group-size"
  case bits
  case search
  case skipIncompatible = "skip-incompatible"

  /// What refines every 4-bit group name: `--search`, `--skip-incompatible`.
  public static let fourBit: Set<TargetRefinement> = [.search, .skipIncompatible]

  public static func < (a: TargetRefinement, b: TargetRefinement) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

/// What refines a `--to` name: `--block-size`, `--scale-format`, `--group-size`, `--bits`.
public struct TargetOptions: Sendable {
  public var blockShape: (rows: Int, columns: Int)
  public var ue8m0: Bool
  public var groupSize: Int?
  public var bits: Int

  public init(blockShape: (rows: Int, columns: Int), ue8m0: Bool, groupSize: Int?, bits: Int) {
    (self.blockShape, self.ue8m0, self.groupSize, self.bits) = (blockShape, ue8m0, groupSize, bits)
  }
}

/// One `--to` (and recipe scheme) name: its help line, the options that refine it, and what it makes — a
/// `DType` for the plain casts (`PlainFormat.castTargetNames`), an `FP8Layout`, a `GroupFormat`. Each format
/// declares its names next to its reader; `ConversionTarget.catalog` lists them all.
public struct TargetName<Product: Sendable>: Sendable {
  public let name: String
  /// What it writes, for `smelt convert --help`.
  public let help: String
  /// The options this name reads; any other `TargetRefinement` given with it is refused.
  public let refinements: Set<TargetRefinement>
  /// The group size the name itself fixes (`int4-g64`): a different `--group-size` or `:group=` is refused.
  public let fixedGroupSize: Int?
  /// Names the ecosystem uses for this target (compressed-tensors presets, llm-compressor schemes), accepted
  /// by `--to` and in recipes.
  public let aliases: [String]
  /// The architectures (`config.json` `architectures`) its consumers load in this layout, or `nil` for any.
  public let consumerArchitectures: Set<String>?
  /// What the name makes with these options, or `nil` when they are not supported (MLX with 3 bits).
  public let make: @Sendable (TargetOptions) -> Product?

  public init(
    _ name: String, help: String, refines refinements: Set<TargetRefinement> = [], fixedGroupSize: Int? = nil,
    aliases: [String] = [], loadedOnly consumerArchitectures: Set<String>? = nil,
    make: @escaping @Sendable (TargetOptions) -> Product?
  ) {
    (self.name, self.help, self.refinements, self.fixedGroupSize, self.aliases, self.make) =
      (name, help, refinements, fixedGroupSize, aliases, make)
    self.consumerArchitectures = consumerArchitectures
  }

  /// The same name making `transform` of what this one makes (`ConversionTarget.group` of a `GroupFormat`).
  public func map<Other: Sendable>(_ transform: @escaping @Sendable (Product) -> Other) -> TargetName<Other> {
    let make = self.make
    return TargetName<Other>(
      name, help: help, refines: refinements, fixedGroupSize: fixedGroupSize, aliases: aliases,
      loadedOnly: consumerArchitectures
    ) { options in make(options).map(transform) }
  }
}

/// The `--to` names of a group layout.
public typealias GroupTargetName = TargetName<GroupFormat>
