import Checkpoint
import GGUF
import GGML
import JSON

/// A Hugging Face model family written as one llama.cpp GGUF architecture: the metadata llama.cpp reads, the
/// Hugging Face → GGUF tensor map and the type rules' view of the model. One conforming type per architecture,
/// one file each (`DeepSeek2`, `DeepSeek32`, `DeepSeek4`, `GptOss`, `Qwen3Moe`, `Qwen35Moe`, `Glm4Moe`, `MiniMaxM2`), listed in `GGUFArchitectures.writable`; the GGUF writer knows
/// nothing else about a family. Which families a mapping writes is the families' own fact
/// (`ModelFamily.ggufArchitecture`), not repeated here.
public protocol GGUFArchitectureMapping: Sendable {
  /// `general.architecture` (llama.cpp's `LLM_ARCH_*` name), as the families it writes name it in
  /// `ModelFamily.ggufArchitecture`.
  static var architecture: String { get }
  /// `tokenizer.ggml.pre` for the family's released BPE vocabulary.
  static var preTokenizer: String { get }
  /// `tokenizer.ggml.pre` for a tiktoken vocabulary (`tiktoken.model`, no `tokenizer.json`) where the
  /// architecture's converter reads one (deepseek2: Kimi K2's `kimi-k2`); nil (the default): it reads none.
  static var tiktokenPreTokenizer: String? { get }
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
  /// The type llama.cpp's converter writes `tensor` as when that is not its `--outtype` (DeepSeek-V4's keeps
  /// F32 and BF16 sources, writes FP8 ones Q8_0 and the experts MXFP4), given how each of its sources is stored;
  /// nil (the default): the outtype. llama-quantize keeps this type for the tensors its rules never quantize.
  static func converterType(of tensor: GGUFTensorPlan, sources: [GGUFSourcePrecision]) -> GGMLType?

  /// Reading a GGUF of this architecture back as a checkpoint (`validate`, `forward`): the `config.json` its
  /// metadata describes, and the Hugging Face tensors it holds. Architectures without a reverse map throw
  /// `.unreadableArchitecture` (the default).
  static func huggingFaceConfig(_ metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> JSONObject
  static func storedTensors(_ tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> [GGUFStoredTensor]
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
      let readable = GGUFArchitectures.readable.map { $0.architecture }.joined(separator: ", ")
      return "the GGUF's general.architecture is '\(found)'; Smelt reads \(readable) GGUFs back as checkpoints (validate, forward) and inspects any GGUF"
    case .missingKey(let key):
      return "the GGUF has no usable '\(key)', which its architecture needs"
    case .unknownGGUFTensor(let name):
      return "GGUF tensor '\(name)' has no Hugging Face name in its architecture's map"
    case .inconsistentGGUFTensor(let name, let reason):
      return "GGUF tensor '\(name)': \(reason)"
    }
  }
}

/// The GGUF architectures Smelt writes.
public enum GGUFArchitectures {
  public static let writable: [any GGUFArchitectureMapping.Type] = [
    DeepSeek2.self, DeepSeek32.self, DeepSeek4.self, GptOss.self, Qwen3Moe.self, Qwen35Moe.self, Glm4Moe.self, MiniMaxM2.self,
  ]

  /// The architectures whose GGUFs Smelt reads back as checkpoints.
  public static let readable: [any GGUFArchitectureMapping.Type] = [
    DeepSeek2.self, DeepSeek32.self, Qwen3Moe.self, Glm4Moe.self, MiniMaxM2.self, GptOss.self,
  ]

  /// The mapping that reads a GGUF whose `general.architecture` is `architecture`.
  public static func reader(for architecture: String?) throws(GGUFMappingFailure) -> any GGUFArchitectureMapping.Type {
    guard let found = readable.first(where: { $0.architecture == architecture }) else {
      throw .unreadableArchitecture(architecture ?? "(none)")
    }
    return found
  }

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

/// How a source weight is stored, as a converter that keeps source precision sees it.
public enum GGUFSourcePrecision: Sendable, Equatable {
  case f32, f16, bf16
  /// Integers (DeepSeek-V4's I64 hash-routing table).
  case integer
  /// Any quantized storage (FP8 with its scales, int4, MXFP4, ...).
  case quantized
}

extension GGUFArchitectureMapping {
  public static var specialTokens: [(kind: String, content: String)] { [] }

  public static var tiktokenPreTokenizer: String? { nil }

  public static func converterType(of tensor: GGUFTensorPlan, sources: [GGUFSourcePrecision]) -> GGMLType? { nil }

  public static func huggingFaceConfig(_ metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> JSONObject {
    throw .unreadableArchitecture(architecture)
  }
  public static func storedTensors(_ tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> [GGUFStoredTensor] {
    throw .unreadableArchitecture(architecture)
  }

  /// Throws `.unsupportedArchitecture` unless `config`'s family is `architecture` (this mapping's by default).
  static func requireFamily(_ config: ModelConfig, architecture: String? = nil) throws(GGUFMappingFailure) {
    try GGUFModel.requireFamily(config, architecture: architecture ?? Self.architecture)
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
      case .tensor(let name), .fusedExperts(let name, _, _, _), .tiledValueHeads(let name, _): return (position[name] ?? Int.max, 0)
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
    try GGUFModel.positive(value, field)
  }
}
