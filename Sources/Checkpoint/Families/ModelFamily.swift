/// One line of released models, described as data: how its `config.json` is recognised, what its tensors are
/// called, which of them the release quantizes (and how), what an expert is, what tensor parallelism may split,
/// and whether Smelt's reference forward pass implements it.
///
/// Each family lives in its own file next to this one (`DeepSeekV3.swift`, `Qwen3MoE.swift`, ...); `inspect`,
/// `convert`, `shard` and `validate` read the description through `Checkpoint.family` and never match family
/// names themselves. An unknown architecture gets `ModelFamily.generic`, which recognises the union of every
/// family's names. Adding a family is one file plus its entry in `ModelFamily.known` (and its sample, skeleton
/// and `formats/families.md` section).
public struct ModelFamily: Sendable, CustomStringConvertible {
  /// A stable identifier (`deepseek-v3`, `qwen3-moe`, ...), used in `inspect --json` and tests.
  public let id: String
  /// The display name.
  public let name: String
  /// The releases it covers, for help text and reports.
  public let releases: String
  /// How its `config.json` is recognised.
  public let detection: FamilyDetection
  /// Its tensor names.
  public let naming: FamilyNaming
  /// What its releases quantize and keep.
  public let quantization: ReleaseQuantization
  /// What tensor parallelism may split.
  public let tensorParallel: TensorParallelPlan
  /// Whether `smelt forward` / `validate` implement its architecture.
  public let forwardPass: ForwardPassSupport
  /// The `general.architecture` a GGUF file of this family carries (llama.cpp's arch name), when llama.cpp has one.
  public let ggufArchitecture: String?
  /// Checks of config values that change how its weights are read or laid out (an unknown value is an error).
  public let checks: [ConfigCheck]
  /// How the vendor counts "active parameters per token", so `inspect` reports the figure it publishes.
  public let activeParameters: ActiveParameterConvention

  public init(
    id: String, name: String, releases: String, detection: FamilyDetection, naming: FamilyNaming,
    quantization: ReleaseQuantization, tensorParallel: TensorParallelPlan, forwardPass: ForwardPassSupport,
    ggufArchitecture: String?, checks: [ConfigCheck] = [], activeParameters: ActiveParameterConvention = .deepSeek
  ) {
    self.id = id
    self.name = name
    self.releases = releases
    self.detection = detection
    self.naming = naming
    self.quantization = quantization
    self.tensorParallel = tensorParallel
    self.forwardPass = forwardPass
    self.ggufArchitecture = ggufArchitecture
    self.checks = checks
    self.activeParameters = activeParameters
  }

  public var description: String { name }

  /// True for the fallback description of an architecture no family claims.
  public var isGeneric: Bool { id == ModelFamily.generic.id }

  /// Every family Smelt knows, most specific first (V3.1 before V3: same architecture, ue8m0 scales).
  public static let known: [ModelFamily] = [
    .deepSeekV31, .deepSeekV3, .deepSeekV32, .deepSeekV4, .kimiK2, .qwen3MoE, .qwen35MoE, .glm4MoE, .miniMaxM2, .gptOss,
  ]

  /// The family `config` belongs to: the first whose `model_type` matches (the wrapper's or its `text_config`'s),
  /// else the first whose `architectures` match; `generic` when none does or there is no config.
  public static func detect(_ config: ModelConfig?) -> ModelFamily {
    guard let config else { return .generic }
    let types = [config.modelType, config.textModelType].compactMap { $0 }
    if let family = known.first(where: { family in
      types.contains { family.detection.modelTypes.contains($0) } && family.detection.accepts(config)
    }) {
      return family
    }
    if let family = known.first(where: { family in
      config.architectures.contains { family.detection.architectures.contains($0) } && family.detection.accepts(config)
    }) {
      return family
    }
    return .generic
  }

  /// Runs the family's checks (and the schema checks every family shares) on `config`.
  ///
  /// - Throws: `CheckpointError.invalidConfig` naming the field, the value and the values that are understood.
  public func check(_ config: ModelConfig, path: String) throws {
    for check in ConfigCheck.common + checks { try check.run(config, path) }
    _ = try FeedForwardLayout(config: config, path: path)
  }
}

/// How a family's `config.json` is recognised.
public struct FamilyDetection: Sendable {
  /// `architectures` entries (`DeepseekV3ForCausalLM`).
  public var architectures: Set<String>
  /// `model_type` values (`deepseek_v3`), matched before architectures.
  public var modelTypes: Set<String>
  /// A further condition (DeepSeek-V3.1: `quantization_config.scale_fmt` is `ue8m0`).
  public var condition: (@Sendable (ModelConfig) -> Bool)?

  public init(architectures: Set<String>, modelTypes: Set<String>, condition: (@Sendable (ModelConfig) -> Bool)? = nil) {
    self.architectures = architectures
    self.modelTypes = modelTypes
    self.condition = condition
  }

  func accepts(_ config: ModelConfig) -> Bool { condition?(config) ?? true }
}

/// What a vendor counts in "active parameters per token" besides the attention, dense MLPs, shared experts and
/// `num_experts_per_tok` routed experts (MTP modules never count).
public struct ActiveParameterConvention: Sendable, Equatable {
  /// The token embedding (a lookup, one row per token).
  public var countsEmbedding: Bool
  /// The output head.
  public var countsOutputHead: Bool

  public init(countsEmbedding: Bool, countsOutputHead: Bool) {
    self.countsEmbedding = countsEmbedding
    self.countsOutputHead = countsOutputHead
  }

  /// DeepSeek's `README_WEIGHTS.md` ("36.6B activated, including 0.9B for the output head") and OpenAI's gpt-oss
  /// model card (5.13B / 3.61B active): the head counts, the embedding does not.
  public static let deepSeek = ActiveParameterConvention(countsEmbedding: false, countsOutputHead: true)
  /// Qwen's model cards (Qwen3-30B-A3B: 3.3B activated of 30.5B, 29.9B "non-embedding"): everything counts.
  public static let everything = ActiveParameterConvention(countsEmbedding: true, countsOutputHead: true)
  /// zai-org's GLM-4.5 cards (32B / 12B active): neither the embedding nor the head.
  public static let transformerBlocksOnly = ActiveParameterConvention(countsEmbedding: false, countsOutputHead: false)
}

/// Whether Smelt's F32 reference forward pass implements a family.
public enum ForwardPassSupport: Sendable, Equatable {
  /// DeepSeek-V3's MLA + MoE (`ReferenceModel`): V3/R1, V3.1, Kimi K2.
  case deepSeekV3
  /// DeepSeek-V3.2: V3 plus the lightning indexer and top-k sparse attention.
  case deepSeekV32
  /// Qwen3-MoE: grouped-query attention with QK-norm, softmax top-k routing.
  case qwen3MoE
  /// GLM-4.5: grouped-query attention with QKV bias and partial rotary, sigmoid group routing, shared expert.
  case glm4MoE
  /// MiniMax-M2: grouped-query attention with QK-norm over all heads, partial rotary, sigmoid routing with bias.
  case miniMaxM2
  /// gpt-oss: grouped-query attention with biases, sinks and alternating sliding-window layers; clamped SwiGLU
  /// experts with biases, softmax over the top-k router logits.
  case gptOss
  /// Not implemented; the reason says what is missing. `forward` and `validate --level layer/model` refuse.
  case missing(String)
}

/// A config field whose value changes how weights are read or laid out, with the values Smelt understands.
public struct ConfigCheck: Sendable {
  /// The field, as the error names it.
  public var field: String
  /// The values understood (for the error message).
  public var understood: [String]
  /// The value in `config`, when set.
  public var value: @Sendable (ModelConfig) -> String?

  public init(field: String, understood: [String], value: @escaping @Sendable (ModelConfig) -> String?) {
    self.field = field
    self.understood = understood
    self.value = value
  }

  func run(_ config: ModelConfig, _ path: String) throws {
    guard let value = value(config), !understood.contains(value) else { return }
    throw CheckpointError.invalidConfig(
      path: path, field: field,
      reason: "'\(value)' is not a value Smelt understands (\(understood.map { "'\($0)'" }.joined(separator: ", "))); refusing rather than guessing")
  }

  /// Checks every family shares: the element format of FP8 releases and how their scales are stored.
  static let common: [ConfigCheck] = [
    ConfigCheck(field: "quantization_config.fmt", understood: ["e4m3", "float8_e4m3fn"]) { config in
      config.quantizationConfig?.quantMethod == "fp8" ? config.quantizationConfig?.fmt : nil
    },
    ConfigCheck(field: "quantization_config.scale_fmt", understood: ["ue8m0", "float"]) { $0.quantizationConfig?.scaleFmt },
    ConfigCheck(field: "quantization_config.expert_dtype", understood: ["fp4", "fp8"]) { $0.quantizationConfig?.expertDtype },
  ]
}
