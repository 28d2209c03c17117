import Checkpoint
import JSON
import Quantization
import SafeTensors
import TensorCore
import WeightFormats

/// `config.json` blocks (and metadata files) for 4-bit outputs and mixed recipes, in each consumer's terms:
///
/// - compressed-tensors: `quantization_config` with one `config_groups` entry per scheme (exactly the keys
///   compressed-tensors 0.20 serializes), `targets` = anchored `re:` regexes (digit path components generalized
///   when every module matching the regex has that scheme, exact names otherwise) and `ignore` = every linear
///   weight left unquantized (vLLM requires each Linear to match a target or `ignore`). `format` is the
///   groups' format, or `mixed-precision`.
/// - GPTQ: `quant_method: gptq` with `bits`, `group_size`, `sym`, `desc_act: false`, `checkpoint_format: gptq`,
///   and `dynamic` negative (`-:`) rules for decoder linears left unquantized (vLLM/GPTQModel skip them); the same
///   dict is written as `quantize_config.json` (AutoGPTQ).
/// - MLX: `quantization` = `{group_size, bits, mode}` of the most common scheme, plus per-module
///   `{group_size, bits, mode}` for the others and `false` for linear/embedding modules left unquantized, keyed by
///   mlx-lm's module paths (routed experts under `mlp.switch_mlp.<proj>`); copied to `quantization_config` as
///   mlx-lm does.
/// - gpt-oss MXFP4: `{"quant_method": "mxfp4", "modules_to_not_convert": [...]}` (patterns with `*` for indices).
/// - ModelOpt NVFP4: `hf_quant_config.json` `{"producer", "quantization": {"quant_algo": "NVFP4", "group_size": 16,
///   "kv_cache_quant_algo": null, "exclude_modules"}}` and `quantization_config` as ModelOpt's
///   `convert_hf_quant_config_format` derives it (`quant_method: modelopt`, `quant_algo`, `config_groups`,
///   `ignore`, `producer`).
public enum QuantizationConfigWriter {
  /// How one linear module ends up.
  enum Scheme: Hashable {
    case group(GroupFormat)
    case fp8(FP8Layout)
  }

  /// Every linear-like module of the output (2-D weights) and its scheme (`nil` = unquantized), in job order.
  static func assignments(_ jobs: [ConversionJob]) -> [(module: String, scheme: Scheme?)] {
    var result: [(module: String, scheme: Scheme?)] = []
    // By index: each job's action and outputs are read in place, not a copy of the whole job made per job.
    for index in jobs.indices {
      let outputs = jobs[index].outputs
      let scheme: Scheme
      switch jobs[index].action {
      case .group(let groupJob): scheme = .group(groupJob.format)
      case .fp8(let fp8, let rule): scheme = .fp8(FP8Layout(granularity: fp8, ue8m0Scales: rule.format == .ue8m0))
      case .repack(.mxfp4(let format)): scheme = .group(format)
      case .repack(.fp8(let fp8, let rule)): scheme = .fp8(FP8Layout(granularity: fp8, ue8m0Scales: rule.format == .ue8m0))
      case .copy, .cast:
        let name: String
        let shape: [Int]
        if case .cast = jobs[index].action, let output = outputs.first {
          (name, shape) = (output.name, output.shape)
        } else if jobs[index].group.storage == .plain, let main = jobs[index].group.parts["weight"],
          let output = outputs.first(where: { $0.name == main })
        {
          (name, shape) = (main, output.shape)
        } else {
          continue
        }
        guard name.hasSuffix(".weight"), shape.count == 2 else { continue }
        result.append((String(name.dropLast(".weight".count)), nil))
        continue
      }
      guard let first = outputs.first else { continue }
      result.append((TensorName.modulePath(of: first.name), scheme))
    }
    return result
  }

  // MARK: module patterns

  /// `model.layers.12.mlp.experts.3.up_proj` → `model\.layers\.\d+\.mlp\.experts\.\d+\.up_proj`.
  ///
  /// Byte by byte for ASCII names (every checkpoint's; a plan calls this for each of a 671B release's 92k
  /// modules, several times): the same result as the Character-level definition, which other names take.
  static func regexPattern(_ module: String) -> String {
    guard module.utf8.allSatisfy({ $0 < 0x80 }) else { return characterRegexPattern(module) }
    return module.utf8.withContiguousStorageIfAvailable { bytes -> String in
      var out: [UInt8] = []
      out.reserveCapacity(bytes.count + 16)
      var start = 0
      while true {
        var end = start
        while end < bytes.count && bytes[end] != UInt8(ascii: ".") { end += 1 }
        let part = bytes[start..<end]
        if !part.isEmpty && part.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
          out.append(contentsOf: "\\d+".utf8)
        } else {
          for byte in part {
            if isRegexSpecial(byte) { out.append(UInt8(ascii: "\\")) }
            out.append(byte)
          }
        }
        if end == bytes.count { break }
        out.append(contentsOf: "\\.".utf8)
        start = end + 1
      }
      return String(decoding: out, as: UTF8.self)
    } ?? characterRegexPattern(module)
  }

  static func characterRegexPattern(_ module: String) -> String {
    module.split(separator: ".", omittingEmptySubsequences: false).map { part -> String in
      if !part.isEmpty, part.allSatisfy(\.isNumber) { return "\\d+" }
      return escapeRegex(String(part))
    }.joined(separator: "\\.")
  }

  /// The regex metacharacters, as a bit mask over ASCII (bit b of word b / 64).
  private static let regexSpecialMask: (UInt64, UInt64) = "\\^$.|?*+()[]{}".utf8.reduce((0, 0)) { mask, byte in
    byte < 64 ? (mask.0 | 1 << UInt64(byte), mask.1) : (mask.0, mask.1 | 1 << UInt64(byte - 64))
  }

  private static func isRegexSpecial(_ byte: UInt8) -> Bool {
    let mask = regexSpecialMask
    return byte < 64 ? mask.0 & (1 << UInt64(byte)) != 0 : byte < 128 && mask.1 & (1 << UInt64(byte - 64)) != 0
  }

  /// `text` with every regex metacharacter backslash-escaped. Byte by byte for ASCII text (module names,
  /// whose dots always need escaping: a plan escapes each of a 671B release's 92k modules); the same result
  /// as the Character-level definition, which other text takes.
  static func escapeRegex(_ text: String) -> String {
    // Nothing to escape: the text itself.
    if text.utf8.allSatisfy({ $0 < 0x80 && !isRegexSpecial($0) }) { return text }
    guard text.utf8.allSatisfy({ $0 < 0x80 }) else { return characterEscapeRegex(text) }
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count + 16)
    for byte in text.utf8 {
      if isRegexSpecial(byte) { out.append(UInt8(ascii: "\\")) }
      out.append(byte)
    }
    return String(decoding: out, as: UTF8.self)
  }

  static func characterEscapeRegex(_ text: String) -> String {
    var out = ""
    for c in text {
      if "\\^$.|?*+()[]{}".contains(c) { out.append("\\") }
      out.append(c)
    }
    return out
  }

  /// `model.layers.12.self_attn` → `model.layers.*.self_attn` (transformers' `modules_to_not_convert` style).
  static func wildcardPattern(_ module: String) -> String {
    module.split(separator: ".", omittingEmptySubsequences: false).map { part -> String in
      !part.isEmpty && part.allSatisfy(\.isNumber) ? "*" : String(part)
    }.joined(separator: ".")
  }

  /// Compact match list for `modules` (which share one scheme in `all`): per digit-generalized pattern, the
  /// generalized entry when every module of `all` with that pattern has the same scheme, else the exact names.
  static func compact<Key: Hashable>(
    _ modules: [String], all: [(module: String, scheme: Key)], literal: (String) -> String = { $0 },
    generalized: (String) -> String
  ) -> [String] {
    ModulePatterns(all).compact(modules.map { ($0, regexPattern($0)) }, literal: literal, generalized: generalized)
  }

  /// compressed-tensors entry: `re:^...$` for a pattern with indices, the plain name otherwise.
  /// compressed-tensors entry: `re:^...$` for a pattern with indices, the plain name otherwise.
  static func compressedTensorsEntry(_ module: String) -> String {
    let pattern = regexPattern(module)
    return pattern == escapeRegex(module) ? module : "re:^" + pattern + "$"
  }

  /// `compact` of the modules whose scheme is `key`.
  static func compactTargets<Key: Hashable>(
    _ all: [(module: String, scheme: Key)], selecting key: Key, literal: (String) -> String = { $0 },
    generalized: (String) -> String
  ) -> [String] {
    ModulePatterns(all).compactTargets(selecting: key, literal: literal, generalized: generalized)
  }

  /// A conversion's modules with their digit-generalized patterns, each computed once (a 671B release has
  /// 92k modules and a config lists several schemes), and per pattern whether all its modules share a scheme.
  struct ModulePatterns<Key: Hashable> {
    private var entries: [(module: String, scheme: Key, pattern: String)] = []
    private var uniform: [String: Bool] = [:]

    init(_ all: [(module: String, scheme: Key)]) {
      var firstScheme: [String: Key] = [:]
      entries.reserveCapacity(all.count)
      for item in all {
        let pattern = QuantizationConfigWriter.regexPattern(item.module)
        if let scheme = firstScheme[pattern] {
          if scheme != item.scheme { uniform[pattern] = false }
        } else {
          firstScheme[pattern] = item.scheme
          uniform[pattern] = true
        }
        entries.append((item.module, item.scheme, pattern))
      }
    }

    /// `compact` of the modules whose scheme is `key`, in their order.
    func compactTargets(selecting key: Key, literal: (String) -> String, generalized: (String) -> String) -> [String] {
      compact(entries.lazy.filter { $0.scheme == key }.map { ($0.module, $0.pattern) }, literal: literal, generalized: generalized)
    }

    /// The compact list of `modules` (each with its pattern): `generalized` for a pattern whose modules all
    /// share one scheme, `literal` otherwise, each entry once. `generalized` depends on the module's pattern
    /// only (as every caller's does), so it is asked once per pattern.
    func compact(
      _ modules: some Sequence<(module: String, pattern: String)>, literal: (String) -> String,
      generalized: (String) -> String
    ) -> [String] {
      var out: [String] = []
      var seen = Set<String>()
      var generalizedPatterns = Set<String>()
      for (module, pattern) in modules {
        let entry: String
        if uniform[pattern] == true {
          guard generalizedPatterns.insert(pattern).inserted else { continue }
          entry = generalized(module)
        } else {
          entry = literal(module)
        }
        if seen.insert(entry).inserted { out.append(entry) }
      }
      return out
    }
  }

  // MARK: config

  /// A conversion's quantization metadata in its consumer family's terms, derived once from the jobs (a 671B
  /// release has 92k modules, and the config block and the metadata files say the same thing): what `rewrite(_:)`
  /// puts into `config.json` and the `files` written next to it.
  struct Metadata {
    /// The consumer family whose terms the metadata is in (`nil` for casts).
    let family: ConsumerFamily?
    /// The family's quantization block (ModelOpt: the `hf_quant_config.json` its config block derives from);
    /// `nil` for casts and DeepSeek FP8, whose config lists no modules (the config drops `quantization_config`, or
    /// `ConfigRewriter` writes the release's own block).
    private let block: JSONObject?

    init(family: ConsumerFamily?, jobs: [ConversionJob]) {
      self.family = family
      switch family {
      case .compressedTensors: block = compressedTensors(assignments(jobs))
      case .gptq: block = gptq(assignments(jobs))
      case .mlx: block = mlx(assignments(jobs))
      case .gptOss:
        let kept = compactTargets(
          assignments(jobs).map { ($0.module, $0.scheme != nil) }, selecting: false, generalized: wildcardPattern)
        block = JSONObject(uniqueMembers: [("modules_to_not_convert", .array(kept.map { .string($0) })), ("quant_method", "mxfp4")])
      case .modelOpt: block = modelOptHFQuantConfig(assignments(jobs))
      case .deepSeekFP8, nil: block = nil
      }
    }

    /// The output config for a 4-bit or mixed conversion (and compressed-tensors FP8) of `family`.
    func rewrite(_ config: JSONObject) -> JSONObject {
      guard let block else { return config.removing("quantization_config") }
      switch family {
      case .mlx:
        return config.removing("quantization_config").setting("quantization", to: .object(block))
          .setting("quantization_config", to: .object(block))
      case .modelOpt:
        return config.setting("quantization_config", to: .object(modelOptConfig(block)))
      default:
        return config.setting("quantization_config", to: .object(block))
      }
    }

    /// Metadata files next to `config.json`: ModelOpt's `hf_quant_config.json`, GPTQ's `quantize_config.json`.
    var files: [(name: String, bytes: [UInt8])] {
      func bytes(_ object: JSONObject) -> [UInt8] { JSONWriter(pretty: true).bytes(.object(object)) + [0x0A] }
      switch (family, block) {
      case (.modelOpt, let block?): return [("hf_quant_config.json", bytes(block))]
      case (.gptq, let block?): return [("quantize_config.json", bytes(block))]
      default: return []
      }
    }
  }

  private static func int(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }

  // compressed-tensors

  static func compressedTensors(_ items: [(module: String, scheme: Scheme?)]) -> JSONObject {
    var schemes: [Scheme] = []
    for item in items { if let s = item.scheme, !schemes.contains(s) { schemes.append(s) } }
    let patterns = ModulePatterns(items)
    var groups: [(String, JSONValue)] = []
    var formats: [String] = []
    for (index, scheme) in schemes.enumerated() {
      let targets = patterns.compactTargets(selecting: scheme, literal: { $0 }, generalized: compressedTensorsEntry)
      let (format, weights, activations) = compressedTensorsScheme(scheme)
      if !formats.contains(format) { formats.append(format) }
      groups.append((
        "group_\(index)",
        .object(members: [
          ("format", .string(format)), ("input_activations", activations), ("output_activations", .null),
          ("targets", .array(targets.map { .string($0) })), ("weights", weights),
        ])
      ))
    }
    let ignore = patterns.compactTargets(selecting: nil, literal: { $0 }, generalized: compressedTensorsEntry)
    return JSONObject(uniqueMembers: [
      ("config_groups", .object(members: groups)),
      ("format", .string(formats.count == 1 ? formats[0] : "mixed-precision")),
      ("global_compression_ratio", .null),
      ("ignore", .array(ignore.map { .string($0) })),
      ("kv_cache_scheme", .null),
      ("quant_method", "compressed-tensors"),
      ("quantization_status", "compressed"),
      ("sparsity_config", .object(members: [])),
      ("transform_config", .object(members: [])),
    ])
  }

  /// Format, `weights` and `input_activations` of one scheme, as compressed-tensors 0.20 serializes its presets
  /// (W4A16, W4A16_ASYM, MXFP4A16, NVFP4A16, FP8_BLOCK; channel/tensor FP8 like FP8_DYNAMIC's weights).
  static func compressedTensorsScheme(_ scheme: Scheme) -> (String, JSONValue, JSONValue) {
    switch scheme {
    case .group(let format):
      // Only compressed-tensors layouts get here (the family checks prevent any other).
      guard let (format, weights) = format.layout.compressedTensorsScheme else { return ("dense", .null, .null) }
      return (format, weights, .null)
    case .fp8(let layout):
      return layout.compressedTensorsScheme
    }
  }

  // GPTQ

  static func gptq(_ items: [(module: String, scheme: Scheme?)]) -> JSONObject {
    var groupSize = 128
    for item in items {
      if case .group(let format) = item.scheme, format.storage == .gptq { groupSize = format.groupSize; break }
    }
    // Decoder linears left unquantized (lm_head, MTP eh_proj and the router are not GPTQ layers in vLLM).
    let skipped = items.filter { item in
      guard item.scheme == nil else { return false }
      let parsed = TensorName(item.module + ".weight")
      return parsed.layer != nil && !parsed.isRouter && !item.module.hasSuffix("embed_tokens")
    }
    var dynamic: [(String, JSONValue)] = []
    let keyed = items.map { ($0.module, $0.scheme == nil) }
    for entry in compact(skipped.map(\.module), all: keyed, literal: { escapeRegex($0) }, generalized: regexPattern) {
      // `...mlp\.gate_proj` must also match vLLM's fused `...mlp.gate_up_proj`.
      var pattern = entry
      for (leaf, fused) in FusedLinears.fusedName where entry.hasSuffix("\\." + escapeRegex(leaf)) {
        pattern = String(entry.dropLast(escapeRegex(leaf).count)) + "(" + escapeRegex(leaf) + "|" + fused + ")"
      }
      let key = "-:^" + pattern + "$"
      if !dynamic.contains(where: { $0.0 == key }) { dynamic.append((key, .object(members: []))) }
    }
    var members: [(String, JSONValue)] = [
      ("bits", 4), ("checkpoint_format", "gptq"), ("damp_percent", 0.01), ("desc_act", false),
    ]
    if !dynamic.isEmpty { members.append(("dynamic", .object(members: dynamic))) }
    members += [
      ("group_size", int(groupSize)), ("lm_head", false), ("model_file_base_name", .null),
      ("model_name_or_path", .null), ("pack_dtype", "int32"), ("quant_method", "gptq"), ("static_groups", false),
      ("sym", true), ("true_sequential", true),
    ]
    return JSONObject(uniqueMembers: members)
  }

  // MLX

  static func mlx(_ items: [(module: String, scheme: Scheme?)]) -> JSONObject {
    var counts: [Scheme: Int] = [:]
    var order: [Scheme] = []
    for item in items {
      guard let scheme = item.scheme else { continue }
      if counts[scheme] == nil { order.append(scheme) }
      counts[scheme, default: 0] += 1
    }
    let main = order.max { (counts[$0] ?? 0) < (counts[$1] ?? 0) }
    func parameters(_ scheme: Scheme) -> (Int, Int) {
      if case .group(let format) = scheme, format.storage == .mlxAffine { return (format.bits, format.groupSize) }
      return (4, 64)
    }
    let (bits, groupSize) = main.map(parameters) ?? (4, 64)
    var members: [(String, JSONValue)] = [("group_size", int(groupSize)), ("bits", int(bits)), ("mode", "affine")]
    var seen = Set<String>()
    for item in items {
      let key = MLXAffineFormat.stackedAlias(item.module)
      guard seen.insert(key).inserted else { continue }
      if let scheme = item.scheme {
        guard scheme != main else { continue }
        let (b, g) = parameters(scheme)
        members.append((key, .object(members: [("group_size", int(g)), ("bits", int(b)), ("mode", "affine")])))
      } else if !TensorName(item.module + ".weight").isRouter {
        members.append((key, false))
      }
    }
    return JSONObject(uniqueMembers: members)
  }

  // ModelOpt

  static func modelOptHFQuantConfig(_ items: [(module: String, scheme: Scheme?)]) -> JSONObject {
    let excluded = compactTargets(
      items.map { ($0.module, $0.scheme != nil) }, selecting: false, generalized: wildcardPattern)
    return JSONObject(uniqueMembers: [
      ("producer", .object(members: [("name", "modelopt"), ("version", "0.47.0")])),
      ("quantization", .object(members: [
        ("quant_algo", "NVFP4"), ("kv_cache_quant_algo", .null), ("group_size", 16),
        ("exclude_modules", .array(excluded.map { .string($0) })),
      ])),
    ])
  }

  /// What ModelOpt's `convert_hf_quant_config_format` makes of `hfQuantConfig` for NVFP4.
  static func modelOptConfig(_ hfQuantConfig: JSONObject) -> JSONObject {
    let details = hfQuantConfig["quantization"]?.objectValue ?? JSONObject()
    let groupSize = details["group_size"] ?? 16
    let group = JSONValue.object(members: [
      ("input_activations", .object(members: [("dynamic", false), ("num_bits", 4), ("type", "float"), ("group_size", groupSize)])),
      ("weights", .object(members: [("dynamic", false), ("num_bits", 4), ("type", "float"), ("group_size", groupSize)])),
      ("targets", .array(["Linear"])),
    ])
    return JSONObject(uniqueMembers: [
      ("config_groups", .object(members: [("group_0", group)])),
      ("ignore", details["exclude_modules"] ?? .array([])),
      ("quant_algo", "NVFP4"),
      ("producer", hfQuantConfig["producer"] ?? .null),
      ("quant_method", "modelopt"),
    ])
  }
}
