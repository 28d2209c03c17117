import Quantization
import TensorCore
import WeightFormats

/// What `smelt convert --to` produces.
public enum ConversionTarget: Sendable, Equatable, CustomStringConvertible {
  /// Dequantize / cast weights to a plain floating dtype (`bf16`, `f16`, `f32`).
  case cast(DType)
  /// Plain unscaled casts of every floating tensor to `F8_E4M3` or `F8_E5M2`, saturating at ±max.
  case unscaledFP8(DType)
  /// Scaled FP8 E4M3 weights.
  case fp8(FP8Layout)
  /// A 4-bit (or MLX 8-bit) group layout.
  case group(GroupFormat)
  /// A mixed recipe: per-tensor schemes by glob rules (see `ConversionRecipe`).
  indirect case mixed(ConversionRecipe)

  /// A command-line option that refines some `--to` names and means nothing to the others (a usage error there).
  public typealias Refinement = TargetRefinement

  /// What refines a name: `--block-size`, `--scale-format`, `--group-size`, `--bits`.
  public typealias Options = TargetOptions

  /// One `--to` (and recipe scheme) name: its help line, the options that refine it, and how it becomes a target.
  public struct Name: Sendable {
    public let name: String
    /// What it writes, for `smelt convert --help`.
    public let help: String
    /// The options this name reads; any other `Refinement` given with it is refused.
    public let refinements: Set<Refinement>
    /// The group size the name itself fixes (`int4-g64`): a different `--group-size` or `:group=` is refused.
    public let fixedGroupSize: Int?
    /// The architectures (`config.json` `architectures`) its consumers load in this layout, or `nil` for any.
    public let consumerArchitectures: Set<String>?
    /// Names the ecosystem uses for this target (compressed-tensors presets, llm-compressor schemes), accepted
    /// by `--to` and in recipes.
    public let aliases: [String]
    let make: @Sendable (Options) -> ConversionTarget?

    init(
      _ name: String, help: String, refines refinements: Set<Refinement> = [], aliases: [String] = [],
      make: @escaping @Sendable (Options) -> ConversionTarget?
    ) {
      (self.name, self.help, self.refinements, self.fixedGroupSize, self.aliases, self.make) =
        (name, help, refinements, nil, aliases, make)
      self.consumerArchitectures = nil
    }

    /// A group layout's name (registered with its layout in WeightFormats).
    init(_ group: GroupTargetName) {
      (name, help, refinements, fixedGroupSize, aliases) =
        (group.name, group.help, group.refinements, group.fixedGroupSize, group.aliases)
      consumerArchitectures = group.consumerArchitectures
      make = { options in group.make(options).map(ConversionTarget.group) }
    }
  }

  /// Every `--to` name, in help order: the one table `--to` values, recipe schemes, option applicability and the
  /// help text read. The casts and FP8 layouts are here; the group layouts come from `WeightFormats.groupLayouts`.
  public static let catalog: [Name] = [
    Name("bf16", help: "dequantize/cast to BF16", aliases: ["BF16"]) { _ in .cast(.bfloat16) },
    Name("f16", help: "to F16") { _ in .cast(.float16) },
    Name("f32", help: "to F32") { _ in .cast(.float32) },
    Name(
      "fp8-block", help: "FP8 E4M3 with F32 block scales (DeepSeek; --block-size, --scale-format)",
      refines: [.blockSize, .scaleFormat, .compressedTensors], aliases: ["FP8_BLOCK"]
    ) { o in
      .fp8(FP8Layout(granularity: .block(rows: o.blockShape.rows, columns: o.blockShape.columns), ue8m0Scales: o.ue8m0))
    },
    Name("fp8-channel", help: "FP8 with a scale per output channel (compressed-tensors)", refines: [.scaleFormat]) { o in
      .fp8(FP8Layout(granularity: .channel, ue8m0Scales: o.ue8m0))
    },
    Name("fp8-tensor", help: "FP8 with one scale per tensor (compressed-tensors)", refines: [.scaleFormat]) { o in
      .fp8(FP8Layout(granularity: .tensor, ue8m0Scales: o.ue8m0))
    },
    Name("f8-e4m3", help: "unscaled cast to F8_E4M3") { _ in .unscaledFP8(.float8E4M3FN) },
    Name("f8-e5m2", help: "unscaled cast to F8_E5M2") { _ in .unscaledFP8(.float8E5M2) },
  ] + WeightFormats.groupTargetNames.map(Name.init)

  /// The names accepted by `--to`, in help order (aliases not included).
  public static let names = catalog.map(\.name)

  /// Every name and alias `--to` accepts.
  public static let acceptedNames = catalog.flatMap { [$0.name] + $0.aliases }

  /// The catalog entry for a name or an alias.
  public static func entry(named name: String) -> Name? {
    catalog.first { $0.name == name || $0.aliases.contains(name) }
  }

  /// `name (help), ...` for `smelt convert --help`.
  public static let helpSummary = catalog.map { "\($0.name) (\($0.help))" }.joined(separator: ", ")

  /// `ALIAS = name, ...` for `smelt convert --help`.
  public static let aliasSummary = catalog.flatMap { entry in entry.aliases.map { "\($0) = \(entry.name)" } }
    .joined(separator: ", ")

  /// Group sizes accepted by the int4, GPTQ and MLX targets.
  public static let groupSizes = GroupFormat.groupSizes

  /// Parses a `--to` value (a name or an alias). `blockShape` and `ue8m0` refine `fp8-block`; `groupSize`
  /// (default 128 for `int4-asym` and GPTQ, 64 for MLX) and `bits` (MLX: 4 or 8) refine the group formats.
  /// Returns `nil` for an unknown name, an unsupported group size / bit width, or a group size that contradicts
  /// the name's own (`int4-g128` with 64).
  public static func parse(
    _ name: String, blockShape: (rows: Int, columns: Int) = (128, 128), ue8m0: Bool = false, groupSize: Int? = nil,
    bits: Int = 4
  ) -> ConversionTarget? {
    if let group = groupSize, !groupSizes.contains(group) { return nil }
    guard let entry = entry(named: name) else { return nil }
    if let fixed = entry.fixedGroupSize, let group = groupSize, group != fixed { return nil }
    return entry.make(Options(blockShape: blockShape, ue8m0: ue8m0, groupSize: groupSize, bits: bits))
  }

  /// Why no consumer of one of `schemes` loads a model of `architectures` (`config.json`), or `nil` when all do.
  public static func layoutRefusal(schemes: [String], architectures: [String]) -> String? {
    for entry in schemes.compactMap({ entry(named: $0) }) {
      guard let loaded = entry.consumerArchitectures, !architectures.contains(where: loaded.contains) else { continue }
      let model = architectures.first ?? "an unnamed architecture"
      return "--to \(entry.name) writes a layout its consumers load only for \(loaded.sorted().joined(separator: ", ")), "
        + "not \(model): the output would load nowhere. Pick mxfp4 (compressed-tensors) for this model, or pass "
        + "--force-layout to write it anyway"
    }
    return nil
  }

  /// The usage error for options given (`given`) that refine none of `schemes` (the `--to` name and the
  /// recipe's scheme names, `keep` included), or `nil` when each refines at least one.
  public static func inapplicableOptions(_ given: Set<Refinement>, schemes: [String]) -> String? {
    let entries = schemes.compactMap { entry(named: $0) }
    for option in given.sorted() where !entries.contains(where: { $0.refinements.contains(option) }) {
      let takers = catalog.filter { $0.refinements.contains(option) }.map(\.name)
      let fixed = entries.compactMap { entry in entry.fixedGroupSize.map { "\(entry.name) is group \($0) by name" } }
      let named = schemes.count == 1 ? "--to \(schemes[0])" : "any scheme of this conversion (\(schemes.joined(separator: ", ")))"
      return "--\(option.rawValue) does not apply to \(named)"
        + (option == .groupSize && !fixed.isEmpty ? " (\(fixed.joined(separator: ", ")): use int4-g32/int4-g64/int4-g128)" : "")
        + "; it refines \(takers.joined(separator: ", "))"
    }
    return nil
  }

  public var description: String {
    switch self {
    case .cast(let dtype): return "cast to \(dtype)"
    case .unscaledFP8(let dtype): return "unscaled cast to \(dtype)"
    case .fp8(let layout): return layout.description
    case .group(let format): return format.description
    case .mixed(let recipe): return "mixed recipe (\(recipe.rules.count) rule(s), default \(recipe.fallback))"
    }
  }
}

/// Scaled FP8 E4M3 weight layouts.
///
/// - `block` with the DeepSeek naming is the release convention (`weight_scale_inv` F32
///   `[ceil(out/r), ceil(in/c)]`, `quant_method: fp8`); `channel` and `tensor` use the compressed-tensors
///   `float-quantized` naming (`weight_scale` `[out, 1]` / `[1]`), which vLLM loads.
public struct FP8Layout: Sendable, Equatable, CustomStringConvertible {
  public enum Granularity: Sendable, Equatable {
    case block(rows: Int, columns: Int)
    case channel
    case tensor
  }
  public var granularity: Granularity
  /// Round every scale up to a power of two (DeepSeek-V3.1 `scale_fmt: ue8m0`), then quantize with it.
  public var ue8m0Scales: Bool

  public init(granularity: Granularity, ue8m0Scales: Bool = false) {
    self.granularity = granularity
    self.ue8m0Scales = ue8m0Scales
  }

  /// The name of the scale tensor next to `weight`.
  public var scaleLeaf: String {
    if case .block = granularity { return "weight_scale_inv" }
    return "weight_scale"
  }

  public var description: String {
    switch granularity {
    case .block(let r, let c): return "FP8 E4M3, F32 scale per \(r)x\(c) block\(ue8m0Scales ? " (ue8m0)" : "")"
    case .channel: return "FP8 E4M3, scale per output channel (compressed-tensors)"
    case .tensor: return "FP8 E4M3, one scale per tensor (compressed-tensors)"
    }
  }
}
