import Checkpoint
import JSON
import TensorCore
import WeightFormats

/// What a recipe rule does with the tensors it matches.
public indirect enum RecipeScheme: Sendable, Equatable, CustomStringConvertible {
  /// Leave the tensor at its source precision (a quantized source is dequantized to the model dtype when the
  /// output is a 4-bit checkpoint, whose consumer would not read the source layout).
  case keep
  /// Convert with this target.
  case target(ConversionTarget)

  public var description: String {
    switch self {
    case .keep: return "keep"
    case .target(let target): return "\(target)"
    }
  }
}

/// Mixed recipes: `--rule 'GLOB=SCHEME'` (repeatable) or `--recipe FILE`, first matching rule wins.
///
/// A rule's glob is matched against the weight's logical tensor name (`model.layers.3.mlp.experts.7.up_proj.weight`)
/// and its module path (`...up_proj`). Matched tensors are converted when they are linear weights (2-D `weight`
/// tensors other than the router `mlp.gate` and `embed_tokens`; `--include` adds others, `--exclude` removes).
/// Tensors no rule matches follow `fallback` with its default selection (for quantizing schemes: what DeepSeek's
/// release quantizes).
///
/// A scheme is a `--to` name, `fp8-block` or `keep`, optionally with parameters: `int4-g128:group=64`,
/// `mlx-affine:bits=8,group=32`.
///
/// Recipe file (JSON): `{"rules": [{"match": "*.mlp.experts.*", "scheme": "int4-g128"}, ...], "default": "keep"}`;
/// a rule may carry `"group_size"` and `"bits"` instead of the `:` parameters.
public struct ConversionRecipe: Sendable, Equatable, CustomStringConvertible {
  /// One `GLOB=SCHEME` rule.
  public struct Rule: Sendable, Equatable {
    public var glob: Glob
    public var scheme: RecipeScheme
    /// The scheme as written (for messages).
    public var schemeText: String

    public init(glob: Glob, scheme: RecipeScheme, schemeText: String) {
      self.glob = glob
      self.scheme = scheme
      self.schemeText = schemeText
    }
  }

  /// Scheme-name defaults from the command line (`--group-size`, `--bits`, `--block-size`, `--scale-format`).
  public struct SchemeDefaults: Sendable {
    public var groupSize: Int?
    public var bits: Int
    public var blockShape: (rows: Int, columns: Int)
    public var ue8m0: Bool

    public init(groupSize: Int? = nil, bits: Int = 4, blockShape: (rows: Int, columns: Int) = (128, 128), ue8m0: Bool = false) {
      self.groupSize = groupSize
      self.bits = bits
      self.blockShape = blockShape
      self.ue8m0 = ue8m0
    }
  }

  public var rules: [Rule]
  /// The scheme of tensors no rule matches.
  public var fallback: RecipeScheme
  /// The fallback as written (a `--to` name, the recipe's `"default"`, or `keep`).
  public var fallbackText: String

  public init(rules: [Rule], fallback: RecipeScheme, fallbackText: String = "keep") {
    self.rules = rules
    self.fallback = fallback
    self.fallbackText = fallbackText
  }

  /// The scheme names the recipe uses (its rules' and its fallback's), without parameters.
  public var schemeNames: [String] {
    (rules.map(\.schemeText) + [fallbackText]).map { text in
      String(text.split(separator: ":", maxSplits: 1).first ?? "").trimmingSpaces
    }
  }

  public var description: String {
    (rules.map { "\($0.glob.pattern)=\($0.schemeText)" } + ["default=\(fallback)"]).joined(separator: ", ")
  }

  /// The first rule matching `name` or `module`, if any.
  public func rule(for name: String, module: String) -> Rule? {
    rules.first { $0.glob.matches(name) || $0.glob.matches(module) }
  }

  // MARK: parsing

  /// Parses a scheme: `keep`, or a `--to` name with optional `:group=N,bits=N` parameters.
  public static func parseScheme(_ text: String, defaults: SchemeDefaults) throws -> RecipeScheme {
    let pieces = text.split(separator: ":", maxSplits: 1).map { String($0).trimmingSpaces }
    let name = pieces.first ?? ""
    if name == "keep" {
      guard pieces.count == 1 else { throw ConversionError.invalidRecipe("'keep' takes no parameters, got '\(text)'") }
      return .keep
    }
    guard let entry = ConversionTarget.entry(named: name) else {
      throw ConversionError.invalidRecipe("unknown scheme '\(name)' (use keep or one of \(ConversionTarget.names.joined(separator: ", ")))")
    }
    // A name that fixes its group (`int4-g64`) does not take `--group-size` as a default; `:group=` must agree.
    var groupSize = entry.fixedGroupSize == nil ? defaults.groupSize : nil
    var bits = defaults.bits
    if pieces.count == 2 {
      for parameter in pieces[1].split(separator: ",") {
        let pair = parameter.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
        guard pair.count == 2, let value = Int(pair[1]) else {
          throw ConversionError.invalidRecipe("scheme parameter '\(parameter)' in '\(text)' should look like group=64 or bits=8")
        }
        switch pair[0] {
        case "group", "group_size", "group-size": groupSize = value
        case "bits": bits = value
        default: throw ConversionError.invalidRecipe("unknown scheme parameter '\(pair[0])' in '\(text)' (use group or bits)")
        }
      }
    }
    if let fixed = entry.fixedGroupSize, let group = groupSize, group != fixed {
      throw ConversionError.invalidRecipe(
        "scheme '\(text)': \(name) is group \(fixed) by name; write int4-g\(group) (or int4-asym:group=\(group))")
    }
    guard
      let target = ConversionTarget.parse(
        name, blockShape: defaults.blockShape, ue8m0: defaults.ue8m0, groupSize: groupSize, bits: bits)
    else {
      throw ConversionError.invalidRecipe(
        "scheme '\(text)': group size must be one of \(ConversionTarget.groupSizes) and MLX bits 4 or 8")
    }
    if case .unscaledFP8 = target {
      throw ConversionError.invalidRecipe("scheme '\(name)' (an unscaled cast) cannot be used in a recipe")
    }
    return .target(target)
  }

  /// Parses `GLOB=SCHEME` (the last `=` separates them, so globs may contain `=`... they rarely do).
  public static func parseRule(_ text: String, defaults: SchemeDefaults) throws -> Rule {
    guard let equals = text.lastIndex(of: "="), equals != text.startIndex else {
      throw ConversionError.invalidRecipe("--rule '\(text)' should look like 'GLOB=SCHEME', e.g. '*.mlp.experts.*=int4-g128'")
    }
    var globText = String(text[..<equals]).trimmingSpaces
    var schemeText = String(text[text.index(after: equals)...]).trimmingSpaces
    // `SCHEME:group=64` puts an `=` in the scheme: split at the first `=` that is followed by a scheme name.
    if let first = text.firstIndex(of: "="), first != equals {
      let candidate = String(text[text.index(after: first)...]).trimmingSpaces
      let name = candidate.split(separator: ":").first.map(String.init) ?? candidate
      if name == "keep" || ConversionTarget.entry(named: name) != nil {
        globText = String(text[..<first]).trimmingSpaces
        schemeText = candidate
      }
    }
    guard !globText.isEmpty else { throw ConversionError.invalidRecipe("--rule '\(text)' has an empty glob") }
    return Rule(glob: Glob(globText), scheme: try parseScheme(schemeText, defaults: defaults), schemeText: schemeText)
  }

  /// Parses a recipe file.
  public static func parse(json bytes: [UInt8], path: String, defaults: SchemeDefaults) throws -> ConversionRecipe {
    let value: JSONValue
    do { value = try bytes.withUnsafeBytes { try JSONParser.parse($0) } } catch {
      throw ConversionError.invalidRecipe("\(path): not valid JSON: \(error)")
    }
    guard let object = value.objectValue else { throw ConversionError.invalidRecipe("\(path): expected a JSON object with \"rules\"") }
    for key in object.keys where !["rules", "default"].contains(key) {
      throw ConversionError.invalidRecipe("\(path): unknown key '\(key)' (expected \"rules\" and \"default\")")
    }
    guard let items = object["rules"]?.arrayValue else {
      throw ConversionError.invalidRecipe("\(path): \"rules\" should be an array of {\"match\": GLOB, \"scheme\": SCHEME}")
    }
    var rules: [Rule] = []
    for (index, item) in items.enumerated() {
      guard let rule = item.objectValue, let match = rule["match"]?.stringValue, let scheme = rule["scheme"]?.stringValue else {
        throw ConversionError.invalidRecipe("\(path): rules[\(index)] should be {\"match\": GLOB, \"scheme\": SCHEME}")
      }
      for key in rule.keys where !["match", "scheme", "group_size", "bits"].contains(key) {
        throw ConversionError.invalidRecipe("\(path): rules[\(index)] has unknown key '\(key)'")
      }
      var parameters: [String] = []
      if let group = rule["group_size"]?.intValue { parameters.append("group=\(group)") }
      if let bits = rule["bits"]?.intValue { parameters.append("bits=\(bits)") }
      let text = parameters.isEmpty ? scheme : scheme + (scheme.contains(":") ? "," : ":") + parameters.joined(separator: ",")
      rules.append(Rule(glob: Glob(match), scheme: try parseScheme(text, defaults: defaults), schemeText: text))
    }
    var fallback = RecipeScheme.keep
    var fallbackText = "keep"
    if let text = object["default"] {
      guard let name = text.stringValue else { throw ConversionError.invalidRecipe("\(path): \"default\" should be a scheme name") }
      (fallback, fallbackText) = (try parseScheme(name, defaults: defaults), name)
    }
    return ConversionRecipe(rules: rules, fallback: fallback, fallbackText: fallbackText)
  }

  // MARK: families

  /// The one consumer family able to read every scheme of the recipe, or a usage error naming the clash.
  ///
  /// FP8 joins any compressed-tensors scheme (written with compressed-tensors naming) and is DeepSeek's own
  /// `fp8` block otherwise; casts and `keep` join anything.
  public func family() throws -> ConsumerFamily? {
    var families: [(ConsumerFamily, String)] = []
    var fp8Schemes: [(FP8Layout, String)] = []
    var fixedGroups: [String: Set<Int>] = [:]
    for (scheme, text) in rules.map({ ($0.scheme, $0.schemeText) }) + [(fallback, "default \(fallback)")] {
      guard case .target(let target) = scheme else { continue }
      switch target {
      case .group(let format):
        families.append((format.family, text))
        if !format.layout.mixesGroupSizes { fixedGroups[format.name, default: []].insert(format.groupSize) }
      case .fp8(let layout):
        fp8Schemes.append((layout, text))
      case .cast, .unscaledFP8, .mixed:
        continue
      }
    }
    let distinct = families.reduce(into: [(ConsumerFamily, String)]()) { list, item in
      if !list.contains(where: { $0.0 == item.0 }) { list.append(item) }
    }
    if distinct.count > 1 {
      throw ConversionError.invalidRecipe(
        "'\(distinct[0].1)' (\(distinct[0].0)) and '\(distinct[1].1)' (\(distinct[1].0)) cannot be mixed: no single consumer reads both config blocks; pick schemes of one family (compressed-tensors: int4-g128, int4-asym, mxfp4, nvfp4-ct, fp8-block)")
    }
    for (name, groups) in fixedGroups.sorted(by: { $0.key < $1.key }) where groups.count > 1 {
      throw ConversionError.invalidRecipe("\(name) with group sizes \(groups.sorted()) cannot be mixed: the \(name) config has one group_size")
    }
    if let family = distinct.first?.0 {
      if let fp8 = fp8Schemes.first, family != .compressedTensors {
        throw ConversionError.invalidRecipe(
          "'\(fp8.1)' cannot be mixed with '\(distinct[0].1)' (\(family)): its consumers do not read FP8 weights; use compressed-tensors schemes (int4-g128, mxfp4, nvfp4-ct) to mix with fp8-block")
      }
      return family
    }
    guard let first = fp8Schemes.first else { return nil }
    if fp8Schemes.contains(where: { $0.0 != first.0 }) {
      return .compressedTensors  // several FP8 granularities: compressed-tensors config groups
    }
    return first.0.consumer(compressedTensorsNaming: false)
  }
}

extension String {
  var trimmingSpaces: String {
    var text = Substring(self)
    while text.first == " " { text = text.dropFirst() }
    while text.last == " " { text = text.dropLast() }
    return String(text)
  }
}
