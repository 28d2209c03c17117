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
  public typealias Name = TargetName<ConversionTarget>

  /// Every `--to` name, in help order: the one table `--to` values, recipe schemes, option applicability and the
  /// help text read. Each format registers its own names (`WeightFormats`): the casts, the FP8 layouts, the
  /// group layouts.
  public static let catalog: [Name] =
    WeightFormats.castTargetNames.map { $0.map(ConversionTarget.plainCast) }
    + WeightFormats.fp8TargetNames.map { $0.map(ConversionTarget.fp8) }
    + WeightFormats.groupTargetNames.map { $0.map(ConversionTarget.group) }

  /// A cast to `dtype`: FP8 dtypes are unscaled casts, the others float casts.
  static func plainCast(_ dtype: DType) -> ConversionTarget {
    [.float8E4M3FN, .float8E5M2].contains(dtype) ? .unscaledFP8(dtype) : .cast(dtype)
  }

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
