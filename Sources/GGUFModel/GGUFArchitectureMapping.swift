import Checkpoint
import GGUF
import JSON

/// A Hugging Face model family written as one llama.cpp GGUF architecture: the metadata llama.cpp reads, the
/// Hugging Face → GGUF tensor map and the type rules' view of the model. One conforming type per architecture,
/// one file each (`DeepSeek2`, `GptOss`, `Qwen3Moe`, `Glm4Moe`, `MiniMaxM2`), listed in `GGUFArchitectures.writable`; the GGUF writer knows
/// nothing else about a family. Which families a mapping writes is the families' own fact
/// (`ModelFamily.ggufArchitecture`), not repeated here.
public protocol GGUFArchitectureMapping: Sendable {
  /// `general.architecture` (llama.cpp's `LLM_ARCH_*` name), as the families it writes name it in
  /// `ModelFamily.ggufArchitecture`.
  static var architecture: String { get }
  /// `tokenizer.ggml.pre` for the family's released BPE vocabulary.
  static var preTokenizer: String { get }
  /// Special tokens the architecture's converter sets by content after the tokenizer's own (`(kind, content)`,
  /// e.g. GLM's `eot` = `<|user|>`); empty for most.
  static var specialTokens: [(kind: String, content: String)] { get }

  /// `general.architecture` and the `{arch}.*` key-value pairs (with `general.file_type` when given).
  static func hyperparameters(_ config: ModelConfig, options: GGUFMappingOptions, fileType: LlamaFileType?) throws(GGUFMappingFailure)
    -> GGUFMetadata
  /// What llama-quantize's type rules read of this model.
  static func quantizeModel(_ config: ModelConfig, options: GGUFMappingOptions) throws(GGUFMappingFailure) -> LlamaQuantize.Model
  /// Every GGUF tensor, from the checkpoint's logical weight shapes (Hugging Face names).
  static func tensors(_ config: ModelConfig, shapes: [String: [Int]], options: GGUFMappingOptions) throws(GGUFMappingFailure)
    -> [GGUFTensorPlan]
  /// `plan` in the order llama.cpp's converter writes it, given the order it reads the checkpoint's tensors in.
  static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan]
}

/// Choices that change which GGUF tensors an architecture writes.
public struct GGUFMappingOptions: Sendable, Equatable {
  /// Write the multi-token-prediction block(s) as `blk.N.nextn.*` (architectures that have them).
  public var keepMTP: Bool

  public init(keepMTP: Bool = true) { self.keepMTP = keepMTP }
}

/// Why a checkpoint or a GGUF does not fit an architecture mapping.
public enum GGUFMappingFailure: Error, Equatable, CustomStringConvertible {
  /// The checkpoint's family (from `architectures` / `model_type`) has no llama.cpp architecture.
  case unsupportedArchitecture(found: [String])
  /// The family is llama.cpp's `architecture`, which Smelt has no mapping for.
  case unwrittenArchitecture(family: String, architecture: String)
  case missingField(String)
  case invalidField(String, reason: String)
  case missingTensor(String)
  case unexpectedShape(tensor: String, shape: [Int], expected: [Int])
  case unmappedTensor(String)
  /// Reading a GGUF back as a checkpoint: its `general.architecture` has no reverse map.
  case unreadableArchitecture(String)
  /// Reading a GGUF: a key the architecture requires is missing or has the wrong type.
  case missingKey(String)
  /// Reading a GGUF: a tensor name the mapping does not know.
  case unknownGGUFTensor(String)
  /// Reading a GGUF: a tensor whose dimensions contradict the metadata or its partner tensor.
  case inconsistentGGUFTensor(String, reason: String)

  public var description: String {
    switch self {
    case .unsupportedArchitecture(let found):
      let shown = found.isEmpty ? "no architectures entry" : found.joined(separator: ", ")
      return "config.json has \(shown), which no Smelt model family maps to a llama.cpp architecture; \(GGUFArchitectures.writtenSummary)"
    case .unwrittenArchitecture(let family, let architecture):
      return "\(family) is llama.cpp's '\(architecture)' architecture, which Smelt has no GGUF mapping for yet; \(GGUFArchitectures.writtenSummary)"
    case .missingField(let field):
      return "config.json lacks '\(field)', which the GGUF architecture needs"
    case .invalidField(let field, let reason):
      return "config.json '\(field)' \(reason)"
    case .missingTensor(let name):
      return "the checkpoint has no tensor '\(name)', which the GGUF architecture needs"
    case .unexpectedShape(let tensor, let shape, let expected):
      return "tensor '\(tensor)' has shape \(shape), expected \(expected) from config.json"
    case .unmappedTensor(let name):
      return "tensor '\(name)' has no GGUF name in the architecture's map (an architecture variant Smelt does not know?)"
    case .unreadableArchitecture(let found):
      return "the GGUF's general.architecture is '\(found)'; Smelt reads \(DeepSeek2.architecture) GGUFs back as checkpoints (validate, forward) and inspects any GGUF"
    case .missingKey(let key):
      return "the GGUF has no usable '\(key)', which its architecture needs"
    case .unknownGGUFTensor(let name):
      return "GGUF tensor '\(name)' has no Hugging Face name in its architecture's map"
    case .inconsistentGGUFTensor(let name, let reason):
      return "GGUF tensor '\(name)': \(reason)"
    }
  }
}

/// Routed experts stacked into one tensor per projection (`ffn_*_exps`), in the order llama.cpp's converters
/// emit a layer's stacks.
let expertStackOrder: [(gguf: String, projection: String)] = [
  ("ffn_down_exps.weight", "down_proj"), ("ffn_gate_exps.weight", "gate_proj"), ("ffn_up_exps.weight", "up_proj"),
]

/// The multi-token-prediction (NextN) tensors of an MTP block beyond the block's own attention and MoE: GGUF
/// name under `blk.N.`, Hugging Face name under `model.layers.N.` (DeepSeek-V3's and GLM-4.5's layout).
let nextnBlockNames: [(gguf: String, huggingFace: String)] = [
  ("nextn.eh_proj.weight", "eh_proj.weight"),
  ("nextn.enorm.weight", "enorm.weight"),
  ("nextn.hnorm.weight", "hnorm.weight"),
  ("nextn.embed_tokens.weight", "embed_tokens.weight"),
  ("nextn.shared_head_head.weight", "shared_head.head.weight"),
  ("nextn.shared_head_norm.weight", "shared_head.norm.weight"),
]

/// The GGUF architectures Smelt writes.
public enum GGUFArchitectures {
  public static let writable: [any GGUFArchitectureMapping.Type] = [
    DeepSeek2.self, DeepSeek32.self, GptOss.self, Qwen3Moe.self, Glm4Moe.self, MiniMaxM2.self,
  ]

  /// The mapping for the llama.cpp architecture `config`'s family names (`ModelFamily.ggufArchitecture`).
  ///
  /// - Throws: `.unsupportedArchitecture` when the family has none (or no family claims the config),
  ///   `.unwrittenArchitecture` when Smelt has no mapping for it.
  public static func mapping(for config: ModelConfig) throws(GGUFMappingFailure) -> any GGUFArchitectureMapping.Type {
    try mapping(for: config, among: writable)
  }

  static func mapping(for config: ModelConfig, among mappings: [any GGUFArchitectureMapping.Type]) throws(GGUFMappingFailure)
    -> any GGUFArchitectureMapping.Type
  {
    let family = ModelFamily.detect(config)
    guard let architecture = family.ggufArchitecture else { throw .unsupportedArchitecture(found: config.architectures) }
    guard let found = mappings.first(where: { $0.architecture == architecture }) else {
      throw .unwrittenArchitecture(family: family.name, architecture: architecture)
    }
    return found
  }

  /// "Smelt writes the GGUF architectures deepseek2 (DeepSeek-V3.1, ...); ...": each writable architecture with
  /// the families that are it.
  static var writtenSummary: String {
    let known = writable.map { mapping in
      let families = ModelFamily.known.filter { $0.ggufArchitecture == mapping.architecture }.map(\.name)
      return "\(mapping.architecture) (\(families.joined(separator: ", ")))"
    }
    return "Smelt writes the GGUF architectures \(known.joined(separator: "; "))"
  }
}

extension GGUFArchitectureMapping {
  public static var specialTokens: [(kind: String, content: String)] { [] }

  /// Throws `.unsupportedArchitecture` unless `config`'s family is `architecture` (this mapping's by default).
  static func requireFamily(_ config: ModelConfig, architecture: String? = nil) throws(GGUFMappingFailure) {
    guard ModelFamily.detect(config).ggufArchitecture == (architecture ?? Self.architecture) else {
      throw .unsupportedArchitecture(found: config.architectures)
    }
  }

  /// `plan` ordered by where each tensor's first source tensor is read (ties: plan order).
  static func sourceOrdered(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    let position = Dictionary(sourceOrder.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    let keys = plan.map { $0.source.tensorNames.compactMap { position[$0] }.min() ?? Int.max }
    return plan.indices.sorted { a, b in keys[a] != keys[b] ? keys[a] < keys[b] : a < b }.map { plan[$0] }
  }

  /// `plan` in the order of a converter that writes each tensor when it reads it (`sourceOrder`), the second
  /// half of an MLA split right after the first, and a layer's routed experts as three stacks in the order of
  /// `stacks` (down, gate, up: `expertStackOrder`) once the last of its experts has been read (`Qwen2MoeModel` /
  /// `DeepseekV2Model` `modify_tensors`).
  static func expertStackingOrder(
    _ plan: [GGUFTensorPlan], sourceOrder: [String], stacks: [(gguf: String, projection: String)] = expertStackOrder
  ) -> [GGUFTensorPlan] {
    let position = Dictionary(sourceOrder.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    // The expert stacks of a layer are written together, at the position of the last expert tensor read.
    var stackTrigger: [String: Int] = [:]
    for tensor in plan {
      guard case .stacked(let names) = tensor.source, let layer = blockPrefix(of: tensor.name) else { continue }
      let last = names.compactMap { position[$0] }.max() ?? Int.max
      stackTrigger[layer] = max(stackTrigger[layer] ?? 0, last)
    }
    func key(_ tensor: GGUFTensorPlan) -> (Int, Int) {
      switch tensor.source {
      case .tensor(let name), .fusedExperts(let name, _, _, _): return (position[name] ?? Int.max, 0)
      case .mlaKeyHalf(let name, _, _, _): return (position[name] ?? Int.max, 0)
      case .mlaValueHalf(let name, _, _, _): return (position[name] ?? Int.max, 1)
      case .stacked:
        let leaf = tensor.name.split(separator: ".").dropFirst(2).joined(separator: ".")
        let rank = stacks.firstIndex { $0.gguf == leaf } ?? 0
        return (blockPrefix(of: tensor.name).flatMap { stackTrigger[$0] } ?? Int.max, rank)
      }
    }
    // Each tensor's key computed once, not twice per comparison.
    let keys = plan.map(key)
    return plan.indices.sorted { a, b in keys[a] != keys[b] ? keys[a] < keys[b] : a < b }.map { plan[$0] }
  }

  /// `blk.N.` of a GGUF name.
  static func blockPrefix(of name: String) -> String? {
    guard name.hasPrefix("blk."), let dot = name.dropFirst(4).firstIndex(of: ".") else { return nil }
    return String(name[..<dot])
  }

  /// The positive integer `field` of config.json.
  static func positive(_ value: Int?, _ field: String) throws(GGUFMappingFailure) -> Int {
    guard let value else { throw .missingField(field) }
    guard value > 0 else { throw .invalidField(field, reason: "is \(value), must be positive") }
    return value
  }
}

/// A tensor plan under construction: each Hugging Face tensor checked against the shape config.json implies
/// and marked as used, so that `finish` can name the first checkpoint tensor no GGUF tensor took.
struct TensorPlanBuilder {
  let shapes: [String: [Int]]
  private(set) var plan: [GGUFTensorPlan] = []
  private var used = Set<String>()

  init(shapes: [String: [Int]]) { self.shapes = shapes }

  func has(_ name: String) -> Bool { shapes[name] != nil }

  /// Marks `name` used after checking it has shape `expected`.
  mutating func check(_ name: String, _ expected: [Int]) throws(GGUFMappingFailure) {
    guard let actual = shapes[name] else { throw .missingTensor(name) }
    guard actual == expected else { throw .unexpectedShape(tensor: name, shape: actual, expected: expected) }
    used.insert(name)
  }

  /// Marks `name` used without writing it (a tied head the GGUF leaves out).
  mutating func skip(_ name: String) { if shapes[name] != nil { used.insert(name) } }

  mutating func append(_ tensor: GGUFTensorPlan) { plan.append(tensor) }

  /// GGUF tensor `gguf` = Hugging Face tensor `hf` of shape `expected`, same bytes (`ne` reversed).
  mutating func copy(_ gguf: String, _ hf: String, _ expected: [Int]) throws(GGUFMappingFailure) {
    try check(hf, expected)
    plan.append(GGUFTensorPlan(name: gguf, dimensions: expected.reversed(), source: .tensor(hf)))
  }

  /// A layer's routed experts `{hf}{container}.E.{projection}.weight` stacked into `{blk}ffn_*_exps.weight`, in the
  /// order of `stacks` (`expertStackOrder`: `mlp.experts.E.{down,gate,up}_proj`): gate/up `[intermediate, hidden]`,
  /// down `[hidden, intermediate]` per expert.
  mutating func stackExperts(
    hf: String, blk: String, experts: Int, hidden: Int, intermediate: Int, container: String = "mlp.experts",
    stacks: [(gguf: String, projection: String)] = expertStackOrder
  ) throws(GGUFMappingFailure) {
    for (gguf, projection) in stacks {
      let (rows, columns) = gguf == "ffn_down_exps.weight" ? (hidden, intermediate) : (intermediate, hidden)
      var names: [String] = []
      for expert in 0..<experts {
        let name = hf + "\(container).\(expert).\(projection).weight"
        try check(name, [rows, columns])
        names.append(name)
      }
      plan.append(GGUFTensorPlan(name: blk + gguf, dimensions: [columns, rows, experts], source: .stacked(names)))
    }
  }

  /// The NextN tensors of MTP block `layer` (`nextnBlockNames`); its own embedding and shared head are optional,
  /// as llama.cpp loads them.
  mutating func nextn(layer: Int, hidden: Int, vocabulary: Int) throws(GGUFMappingFailure) {
    let expected: [String: [Int]] = [
      "nextn.eh_proj.weight": [hidden, 2 * hidden], "nextn.enorm.weight": [hidden], "nextn.hnorm.weight": [hidden],
      "nextn.embed_tokens.weight": [vocabulary, hidden], "nextn.shared_head_head.weight": [vocabulary, hidden],
      "nextn.shared_head_norm.weight": [hidden],
    ]
    let required: Set = ["nextn.eh_proj.weight", "nextn.enorm.weight", "nextn.hnorm.weight"]
    for (gguf, name) in nextnBlockNames {
      let hf = "model.layers.\(layer)." + name
      if required.contains(gguf) || has(hf) { try copy("blk.\(layer)." + gguf, hf, expected[gguf]!) }
    }
  }

  /// The layer index of a `model.layers.N.` tensor name.
  static func layer(of name: String) -> Int? {
    guard name.hasPrefix("model.layers.") else { return nil }
    return Int(name.dropFirst("model.layers.".count).prefix { $0.isASCII && $0.isNumber })
  }

  /// The plan, once every checkpoint tensor is accounted for (FP8 `weight_scale_inv` companions belong to their
  /// weight; `ignoring` names what the mapping leaves out on purpose).
  func finish(ignoring: (String) -> Bool = { _ in false }) throws(GGUFMappingFailure) -> [GGUFTensorPlan] {
    let unmapped = shapes.keys.filter { !used.contains($0) && !$0.hasSuffix(".weight_scale_inv") && !ignoring($0) }
    if let first = unmapped.min() { throw .unmappedTensor(first) }
    return plan
  }
}

/// The `general.architecture` and `{arch}.*` pairs of one architecture, in the order they are set (a repeated key
/// keeps its first position, as gguf-py's dict does).
struct ArchitectureKeys {
  let architecture: String
  private(set) var metadata: GGUFMetadata

  init(_ architecture: String) {
    self.architecture = architecture
    metadata = GGUFMetadata([GGUFKeyValue("general.architecture", .string(architecture))])
  }

  mutating func u32(_ key: String, _ value: Int) {
    metadata.replaceOrAppend("\(architecture).\(key)", .uint32(UInt32(truncatingIfNeeded: value)))
  }
  mutating func f32(_ key: String, _ value: Double) { metadata.replaceOrAppend("\(architecture).\(key)", .float32(Float(value))) }
  mutating func bool(_ key: String, _ value: Bool) { metadata.replaceOrAppend("\(architecture).\(key)", .bool(value)) }
  mutating func string(_ key: String, _ value: String) { metadata.replaceOrAppend("\(architecture).\(key)", .string(value)) }

  /// What the architecture-independent part of the converter (`TextModel.set_gguf_parameters`) writes, in its
  /// order: the dimensions, RoPE (linear or YaRN scaling, base), the RMS epsilon, the router's counts and gating
  /// function, `key_length`/`value_length` from `head_dim`, and `general.file_type`.
  mutating func textModel(
    _ config: ModelConfig, blockCount: Int, hidden: Int, feedForward: Int?, heads: Int, kvHeads: Int, experts: Int?,
    headDim: Int?, rmsEpsilon: Double, fileType: LlamaFileType?
  ) throws(GGUFMappingFailure) {
    u32("block_count", blockCount)
    guard let context = config.maxPositionEmbeddings else { throw .missingField("max_position_embeddings") }
    u32("context_length", context)
    u32("embedding_length", hidden)
    if let feedForward { u32("feed_forward_length", feedForward) }
    u32("attention.head_count", heads)
    u32("attention.head_count_kv", kvHeads)
    if let scaling = config.ropeScaling, let factor = scaling.factor {
      if scaling.type == "linear" {
        string("rope.scaling.type", "linear")
        f32("rope.scaling.factor", factor)
      } else if scaling.type == "yarn" {
        string("rope.scaling.type", "yarn")
        f32("rope.scaling.factor", factor)
        guard let original = scaling.originalMaxPositionEmbeddings else {
          throw .missingField("rope_scaling.original_max_position_embeddings")
        }
        u32("rope.scaling.original_context_length", original)
        let raw = config.raw["rope_scaling"] ?? config.raw["rope_parameters"]
        if let ext = raw?["extrapolation_factor"]?.doubleValue { f32("rope.scaling.yarn_ext_factor", ext) }
        if let attn = raw?["attention_factor"]?.doubleValue ?? raw?["attn_factor"]?.doubleValue { f32("rope.scaling.yarn_attn_factor", attn) }
        if let fast = scaling.betaFast { f32("rope.scaling.yarn_beta_fast", fast) }
        if let slow = scaling.betaSlow { f32("rope.scaling.yarn_beta_slow", slow) }
      }
    }
    if let theta = config.ropeTheta { f32("rope.freq_base", theta) }
    f32("attention.layer_norm_rms_epsilon", config.rmsNormEps ?? rmsEpsilon)
    if let experts { u32("expert_count", experts) }
    if let used = config.numExpertsPerTok { u32("expert_used_count", used) }
    if let groups = config.nGroup { u32("expert_group_count", groups) }
    if let used = config.topkGroup { u32("expert_group_used_count", used) }
    if let scoring = config.scoringFunc {
      let gating: [String: Int] = ["sigmoid": 2, "softmax": 1, "sqrtsoftplus": 4]
      guard let value = gating[scoring] else {
        throw .invalidField("scoring_func", reason: "is '\(scoring)'; llama.cpp knows sigmoid, softmax, sqrtsoftplus")
      }
      u32("expert_gating_func", value)
    }
    if let headDim {
      u32("attention.key_length", headDim)
      u32("attention.value_length", headDim)
    }
    if let fileType { metadata.replaceOrAppend("general.file_type", .uint32(fileType.rawValue)) }
  }
}
