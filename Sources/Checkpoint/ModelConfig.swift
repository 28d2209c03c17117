import JSON

/// The typed view of a checkpoint's `config.json`: every field Smelt's commands read, under the Hugging
/// Face name in camelCase. Unknown architectures still parse (every field is optional); `raw` keeps the
/// whole document so converters can rewrite it without losing fields Smelt does not know.
///
/// Both config schemas in the wild are read (see `formats/families.md`):
/// - the release schema (`rope_theta`, `rope_scaling`, `n_routed_experts` / `num_experts`, `first_k_dense_replace`);
/// - the transformers ≥ 5 schema (`rope_parameters`, `num_local_experts`, `mlp_layer_types`, `layer_types`);
/// - a multimodal wrapper's nested `text_config` (Kimi K2.5, Qwen3.5-MoE): the language model's fields are read
///   from it, `architectures` and `model_type` stay the wrapper's, and `quantization_config` may sit at either level.
///
/// A field set in two schemas with different values (`rope_theta` 10000 and `rope_parameters.rope_theta` 50000)
/// is an error, never a silent pick.
public struct ModelConfig: Sendable {
  /// The parsed document, for round-tripping.
  public var raw: JSONObject

  public var architectures: [String]
  public var modelType: String?
  /// `text_config.model_type` of a multimodal wrapper (`deepseek_v3` inside `kimi_k25`).
  public var textModelType: String?
  /// True when the language model's fields come from a nested `text_config`.
  public var hasTextConfig: Bool
  public var vocabSize: Int?
  public var hiddenSize: Int?
  public var intermediateSize: Int?
  public var moeIntermediateSize: Int?
  public var numHiddenLayers: Int?
  public var numAttentionHeads: Int?
  public var numKeyValueHeads: Int?
  public var firstKDenseReplace: Int?
  public var moeLayerFreq: Int?
  /// Qwen-MoE: every `decoder_sparse_step`-th layer is MoE (`(layer + 1) % step == 0`) ...
  public var decoderSparseStep: Int?
  /// ... except the layers listed here, which are dense.
  public var mlpOnlyLayers: [Int]?
  /// transformers ≥ 5: the feed-forward kind per layer (`dense`, `sparse`, `moe`, `hash_moe`).
  public var mlpLayerTypes: [String]?
  /// transformers ≥ 5: the attention kind per layer (`full_attention`, `sliding_attention`, `linear_attention`,
  /// `indexed_attention`, ...).
  public var layerTypes: [String]?
  public var nRoutedExperts: Int?
  public var nSharedExperts: Int?
  public var numExpertsPerTok: Int?
  public var nGroup: Int?
  public var topkGroup: Int?
  public var routedScalingFactor: Double?
  public var scoringFunc: String?
  public var topkMethod: String?
  public var normTopkProb: Bool?
  public var qLoraRank: Int?
  public var kvLoraRank: Int?
  public var qkNopeHeadDim: Int?
  public var qkRopeHeadDim: Int?
  public var vHeadDim: Int?
  public var headDim: Int?
  public var rmsNormEps: Double?
  /// `rope_theta`, or `rope_parameters.rope_theta`.
  public var ropeTheta: Double?
  /// `rope_scaling`, or the scaling part of `rope_parameters` (`type` = its `rope_type`).
  public var ropeScaling: RopeScaling?
  /// True when RoPE came from `rope_parameters` (transformers ≥ 5).
  public var ropeFromParameters: Bool
  /// Per-attention-kind `rope_parameters` (DeepSeek-V4: `main`, `compress`), when the block is keyed by kind.
  public var ropeParametersByKind: [String: RopeScaling]?
  /// `partial_rotary_factor` (top level or in `rope_parameters`): the fraction of each head that rotates.
  public var partialRotaryFactor: Double?
  /// MiniMax-M2: `rotary_dim`, the rotated channels per head.
  public var rotaryDim: Int?
  /// Qwen3.5 / Qwen3-Next: `rope_parameters.mrope_section` (or `rope_scaling.mrope_section`), the rotary pairs of
  /// the temporal, height and width positions of multimodal RoPE.
  public var mropeSection: [Int]?
  /// Qwen3.5 / Qwen3-Next Gated DeltaNet (`linear_attention` layers): conv kernel, head counts and widths.
  public var linearAttention: LinearAttention?
  /// Qwen3.5 / Qwen3-Next: `full_attention_interval` (every n-th layer is full attention).
  public var fullAttentionInterval: Int?
  /// Qwen3.5: `mtp_num_hidden_layers`, the decoder layers of its MTP module.
  public var mtpNumHiddenLayers: Int?
  public var ropeInterleave: Bool?
  public var maxPositionEmbeddings: Int?
  public var numNextnPredictLayers: Int?
  /// MiniMax-M2: `num_mtp_modules` (with `use_mtp`).
  public var numMtpModules: Int?
  public var tieWordEmbeddings: Bool?
  public var hiddenAct: String?
  public var torchDtype: String?
  /// Qwen-MoE / Mixtral names for the expert count and routing.
  public var numExperts: Int?
  public var numLocalExperts: Int?
  public var sharedExpertIntermediateSize: Int?
  /// DeepSeek-V3.2 / V4 lightning indexer sizes.
  public var indexNHeads: Int?
  public var indexHeadDim: Int?
  public var indexTopk: Int?
  public var slidingWindow: Int?
  public var attentionBias: Bool?
  public var useQkNorm: Bool?
  /// MiniMax-M2: `qk_norm_type` (`per_layer`: one norm over all heads of a token).
  public var qkNormType: String?
  /// MiniMax-M2: `use_routing_bias` (the router's `e_score_correction_bias`).
  public var useRoutingBias: Bool?
  /// Qwen-MoE: `use_sliding_window` (sliding-window attention on the layers past `max_window_layers`).
  public var useSlidingWindow: Bool?
  /// gpt-oss: `swiglu_limit`, the clamp of its experts' gate and up activations.
  public var swigluLimit: Double?
  /// gpt-oss: `swiglu_alpha`, the slope in its experts' `gate · sigmoid(alpha · gate)`.
  public var swigluAlpha: Double?
  /// `quantization_config`, if present (top level, or inside `text_config`).
  public var quantizationConfig: QuantizationConfig?

  /// The Gated DeltaNet fields (`linear_*`) of a Qwen3.5 / Qwen3-Next config; present when `linear_num_value_heads` is.
  public struct LinearAttention: Sendable, Equatable {
    public var convKernel: Int?
    public var keyHeads: Int?
    public var keyHeadDim: Int?
    public var valueHeads: Int
    public var valueHeadDim: Int?

    public init(convKernel: Int?, keyHeads: Int?, keyHeadDim: Int?, valueHeads: Int, valueHeadDim: Int?) {
      self.convKernel = convKernel
      self.keyHeads = keyHeads
      self.keyHeadDim = keyHeadDim
      self.valueHeads = valueHeads
      self.valueHeadDim = valueHeadDim
    }
  }

  /// YaRN (or other) RoPE scaling parameters.
  public struct RopeScaling: Sendable, Equatable {
    public var type: String
    public var factor: Double?
    public var originalMaxPositionEmbeddings: Int?
    public var betaFast: Double?
    public var betaSlow: Double?
    public var mscale: Double?
    public var mscaleAllDim: Double?
    /// `rope_theta` when it came inside `rope_parameters`.
    public var theta: Double?
    /// `truncate` (YaRN; transformers' default true).
    public var truncate: Bool?
    /// `attention_factor` (YaRN).
    public var attentionFactor: Double?
    public var partialRotaryFactor: Double?

    public init(
      type: String, factor: Double? = nil, originalMaxPositionEmbeddings: Int? = nil, betaFast: Double? = nil,
      betaSlow: Double? = nil, mscale: Double? = nil, mscaleAllDim: Double? = nil, theta: Double? = nil,
      truncate: Bool? = nil, attentionFactor: Double? = nil, partialRotaryFactor: Double? = nil
    ) {
      self.type = type
      self.factor = factor
      self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
      self.betaFast = betaFast
      self.betaSlow = betaSlow
      self.mscale = mscale
      self.mscaleAllDim = mscaleAllDim
      self.theta = theta
      self.truncate = truncate
      self.attentionFactor = attentionFactor
      self.partialRotaryFactor = partialRotaryFactor
    }
  }

  /// The `quantization_config` block: the common fields typed, the rest in `raw`.
  public struct QuantizationConfig: Sendable {
    public var raw: JSONObject
    public var quantMethod: String?
    public var fmt: String?
    public var activationScheme: String?
    public var weightBlockSize: [Int]?
    public var scaleFmt: String?
    public var format: String?
    public var bits: Int?
    public var groupSize: Int?
    /// DeepSeek-V4: `expert_dtype` (`fp4`: routed experts are E2M1 pairs in I8 with E8M0 1x32 scales).
    public var expertDtype: String?
    /// `modules_to_not_convert` (HF fp8 / mxfp4): module names or globs kept in high precision.
    public var modulesToNotConvert: [String]?
    /// True when the block came from `text_config.quantization_config`.
    public var nestedInTextConfig: Bool
  }

  /// Total routed experts per MoE layer, whichever name the architecture uses.
  public var routedExpertCount: Int? { nRoutedExperts ?? numExperts ?? numLocalExperts }

  /// True when the config describes DeepSeek-V2/V3-style MLA attention.
  public var usesMLA: Bool { kvLoraRank != nil }

  /// Parses `config.json` bytes.
  ///
  /// - Throws: `CheckpointError.invalidConfig` naming the field when a known field has the wrong type
  ///   (e.g. `"hidden_size": "7168"`), or when the document is not a JSON object.
  public init(json bytes: [UInt8], path: String) throws {
    let value: JSONValue
    do { value = try bytes.withUnsafeBytes { try JSONParser.parse($0) } } catch {
      throw CheckpointError.invalidConfig(path: path, field: nil, reason: "\(error)")
    }
    guard let object = value.objectValue else {
      throw CheckpointError.invalidConfig(path: path, field: nil, reason: "expected a JSON object, found \(value.kindDescription)")
    }
    try self.init(object: object, path: path)
  }

  /// Builds the typed view of a parsed `config.json` object.
  ///
  /// - Throws: `CheckpointError.invalidConfig` for a field of the wrong type, for `text_config` that is not an
  ///   object, and for a RoPE field that two schemas set to different values.
  public init(object: JSONObject, path: String) throws {
    raw = object
    let top = FieldReader(object: object, path: path)
    architectures = try top.strings("architectures") ?? []
    modelType = try top.string("model_type")
    let textObject = try top.object("text_config")
    hasTextConfig = textObject != nil
    let reader = textObject.map { FieldReader(object: $0, path: path, prefix: "text_config.") } ?? top
    textModelType = textObject == nil ? nil : try reader.string("model_type")
    vocabSize = try reader.int("vocab_size")
    hiddenSize = try reader.int("hidden_size")
    intermediateSize = try reader.int("intermediate_size")
    moeIntermediateSize = try reader.int("moe_intermediate_size")
    numHiddenLayers = try reader.int("num_hidden_layers")
    numAttentionHeads = try reader.int("num_attention_heads")
    numKeyValueHeads = try reader.int("num_key_value_heads")
    firstKDenseReplace = try reader.int("first_k_dense_replace")
    moeLayerFreq = try reader.int("moe_layer_freq")
    decoderSparseStep = try reader.int("decoder_sparse_step")
    mlpOnlyLayers = try reader.ints("mlp_only_layers")
    mlpLayerTypes = try reader.strings("mlp_layer_types")
    layerTypes = try reader.strings("layer_types")
    nRoutedExperts = try reader.int("n_routed_experts")
    nSharedExperts = try reader.int("n_shared_experts")
    numExpertsPerTok = try reader.int("num_experts_per_tok") ?? reader.int("experts_per_token")
    nGroup = try reader.int("n_group")
    topkGroup = try reader.int("topk_group")
    routedScalingFactor = try reader.double("routed_scaling_factor")
    scoringFunc = try reader.string("scoring_func")
    topkMethod = try reader.string("topk_method")
    normTopkProb = try reader.bool("norm_topk_prob")
    qLoraRank = try reader.int("q_lora_rank")
    kvLoraRank = try reader.int("kv_lora_rank")
    qkNopeHeadDim = try reader.int("qk_nope_head_dim")
    qkRopeHeadDim = try reader.int("qk_rope_head_dim")
    vHeadDim = try reader.int("v_head_dim")
    headDim = try reader.int("head_dim")
    rmsNormEps = try reader.double("rms_norm_eps")
    ropeInterleave = try reader.bool("rope_interleave")
    maxPositionEmbeddings = try reader.int("max_position_embeddings")
    numNextnPredictLayers = try reader.int("num_nextn_predict_layers")
    numMtpModules = try reader.int("num_mtp_modules")
    tieWordEmbeddings = try reader.bool("tie_word_embeddings") ?? top.bool("tie_word_embeddings")
    hiddenAct = try reader.string("hidden_act")
    torchDtype = try reader.string("torch_dtype") ?? reader.string("dtype") ?? top.string("torch_dtype") ?? top.string("dtype")
    numExperts = try reader.int("num_experts")
    numLocalExperts = try reader.int("num_local_experts")
    sharedExpertIntermediateSize = try reader.int("shared_expert_intermediate_size") ?? reader.int("shared_intermediate_size")
    indexNHeads = try reader.int("index_n_heads")
    indexHeadDim = try reader.int("index_head_dim")
    indexTopk = try reader.int("index_topk")
    slidingWindow = try reader.int("sliding_window")
    attentionBias = try reader.bool("attention_bias")
    useQkNorm = try reader.bool("use_qk_norm")
    qkNormType = try reader.string("qk_norm_type")
    useRoutingBias = try reader.bool("use_routing_bias")
    useSlidingWindow = try reader.bool("use_sliding_window")
    swigluLimit = try reader.double("swiglu_limit")
    swigluAlpha = try reader.double("swiglu_alpha")
    rotaryDim = try reader.int("rotary_dim")
    fullAttentionInterval = try reader.int("full_attention_interval")
    mtpNumHiddenLayers = try reader.int("mtp_num_hidden_layers")
    if let valueHeads = try reader.int("linear_num_value_heads") {
      linearAttention = LinearAttention(
        convKernel: try reader.int("linear_conv_kernel_dim"), keyHeads: try reader.int("linear_num_key_heads"),
        keyHeadDim: try reader.int("linear_key_head_dim"), valueHeads: valueHeads,
        valueHeadDim: try reader.int("linear_value_head_dim"))
    }

    // RoPE: the release keys, then transformers ≥ 5's `rope_parameters`; both present must agree.
    let releaseTheta = try reader.double("rope_theta")
    var scaling: RopeScaling?
    if let block = try reader.object("rope_scaling") {
      scaling = try ModelConfig.ropeBlock(FieldReader(object: block, path: path, prefix: reader.prefix + "rope_scaling."))
    }
    // transformers (and llama.cpp's converter, which reads the config through it) take a `rope_theta` inside
    // `rope_scaling` over the top-level one: two different values are refused like any other schema clash.
    try ModelConfig.agree(releaseTheta, scaling?.theta, "rope_theta", reader.prefix + "rope_scaling.rope_theta", path, reader.prefix)
    var theta = releaseTheta ?? scaling?.theta
    var partial = try reader.double("partial_rotary_factor")
    ropeFromParameters = false
    ropeParametersByKind = nil
    if let parameters = try reader.object("rope_parameters") {
      let inner = FieldReader(object: parameters, path: path, prefix: reader.prefix + "rope_parameters.")
      let nested = !parameters.isEmpty && parameters.allSatisfy { $0.value.objectValue != nil }
      if nested {
        // Keyed by attention kind (DeepSeek-V4 `main` / `compress`): kept per kind; the top-level keys stay.
        var byKind: [String: RopeScaling] = [:]
        for (kind, _) in parameters {
          guard let block = try inner.object(kind) else { continue }
          byKind[kind] = try ModelConfig.ropeBlock(FieldReader(object: block, path: path, prefix: inner.prefix + kind + "."))
        }
        ropeParametersByKind = byKind
      } else {
        let block = try ModelConfig.ropeBlock(inner)
        ropeFromParameters = true
        try ModelConfig.agree(releaseTheta, block.theta, "rope_theta", inner.prefix + "rope_theta", path, reader.prefix)
        try ModelConfig.agree(partial, block.partialRotaryFactor, "partial_rotary_factor", inner.prefix + "partial_rotary_factor", path, reader.prefix)
        theta = block.theta ?? releaseTheta
        partial = block.partialRotaryFactor ?? partial
        if let scaling, scaling.type != "default", block.type != scaling.type {
          throw CheckpointError.invalidConfig(
            path: path, field: inner.prefix + "rope_type",
            reason: "rope_scaling says '\(scaling.type)' but rope_parameters says '\(block.type)'; remove one of them")
        }
        if block.type != "default" || scaling == nil { scaling = block }
      }
    }
    ropeTheta = theta
    ropeScaling = scaling
    mropeSection = nil
    for field in ["rope_parameters", "rope_scaling"] where mropeSection == nil {
      if let block = try reader.object(field), ropeParametersByKind == nil || field == "rope_scaling" {
        mropeSection = try FieldReader(object: block, path: path, prefix: reader.prefix + field + ".").ints("mrope_section")
      }
    }
    partialRotaryFactor = partial

    // quantization_config at the top level, or (Kimi K2.5) inside text_config.
    var quantization: (JSONObject, FieldReader, Bool)?
    if let block = try top.object("quantization_config") {
      quantization = (block, FieldReader(object: block, path: path, prefix: "quantization_config."), false)
    } else if textObject != nil, let block = try reader.object("quantization_config") {
      quantization = (block, FieldReader(object: block, path: path, prefix: reader.prefix + "quantization_config."), true)
    }
    if let (block, inner, nested) = quantization {
      quantizationConfig = QuantizationConfig(
        raw: block, quantMethod: try inner.string("quant_method"), fmt: try inner.string("fmt"),
        activationScheme: try inner.string("activation_scheme"), weightBlockSize: try inner.ints("weight_block_size"),
        scaleFmt: try inner.string("scale_fmt"), format: try inner.string("format"), bits: try inner.int("bits"),
        groupSize: try inner.int("group_size"),
        expertDtype: try inner.string("expert_dtype") ?? top.string("expert_dtype"),
        modulesToNotConvert: try inner.strings("modules_to_not_convert"), nestedInTextConfig: nested)
    }
  }

  /// A `rope_scaling` / `rope_parameters` block.
  private static func ropeBlock(_ inner: FieldReader) throws -> RopeScaling {
    RopeScaling(
      type: try inner.string("rope_type") ?? inner.string("type") ?? "default",
      factor: try inner.double("factor"),
      originalMaxPositionEmbeddings: try inner.int("original_max_position_embeddings"),
      betaFast: try inner.double("beta_fast"), betaSlow: try inner.double("beta_slow"),
      mscale: try inner.double("mscale"), mscaleAllDim: try inner.double("mscale_all_dim"),
      theta: try inner.double("rope_theta"), truncate: try inner.bool("truncate"),
      attentionFactor: try inner.double("attention_factor"),
      partialRotaryFactor: try inner.double("partial_rotary_factor"))
  }

  /// Two schemas' values for one setting: equal, or only one present.
  private static func agree(
    _ first: Double?, _ second: Double?, _ firstField: String, _ secondField: String, _ path: String, _ prefix: String
  ) throws {
    guard let first, let second, first != second else { return }
    throw CheckpointError.invalidConfig(
      path: path, field: secondField,
      reason: "\(prefix + firstField) is \(first) but \(secondField) is \(second); the two schemas disagree, remove one of them")
  }
}

/// Reads typed fields from a JSON object, turning a wrong type into an error that names the field.
/// A missing field or an explicit `null` is `nil`.
struct FieldReader {
  let object: JSONObject
  let path: String
  var prefix = ""

  private func fail(_ key: String, _ expected: String, _ value: JSONValue) -> CheckpointError {
    .invalidConfig(path: path, field: prefix + key, reason: "expected \(expected), found \(value.kindDescription)")
  }

  private func present(_ key: String) -> JSONValue? {
    guard let value = object[key], !value.isNull else { return nil }
    return value
  }

  func string(_ key: String) throws -> String? {
    guard let value = present(key) else { return nil }
    guard let text = value.stringValue else { throw fail(key, "a string", value) }
    return text
  }

  func int(_ key: String) throws -> Int? {
    guard let value = present(key) else { return nil }
    guard let number = value.intValue else {
      if let written = value.numberValue, written.isInteger {
        throw CheckpointError.invalidConfig(
          path: path, field: prefix + key, reason: "expected an integer between -2^63 and 2^63-1, found \(written.text)")
      }
      throw fail(key, "an integer", value)
    }
    return number
  }

  func double(_ key: String) throws -> Double? {
    guard let value = present(key) else { return nil }
    guard let number = value.numberValue?.double else { throw fail(key, "a number", value) }
    return number
  }

  func bool(_ key: String) throws -> Bool? {
    guard let value = present(key) else { return nil }
    guard let flag = value.boolValue else { throw fail(key, "true or false", value) }
    return flag
  }

  func object(_ key: String) throws -> JSONObject? {
    guard let value = present(key) else { return nil }
    guard let inner = value.objectValue else { throw fail(key, "an object", value) }
    return inner
  }

  func strings(_ key: String) throws -> [String]? {
    guard let value = present(key) else { return nil }
    guard let items = value.arrayValue else { throw fail(key, "an array of strings", value) }
    return try items.map { item in
      guard let text = item.stringValue else { throw fail(key, "an array of strings", value) }
      return text
    }
  }

  func ints(_ key: String) throws -> [Int]? {
    guard let value = present(key) else { return nil }
    guard let items = value.arrayValue else { throw fail(key, "an array of integers", value) }
    return try items.map { item in
      guard let number = item.intValue else { throw fail(key, "an array of integers", value) }
      return number
    }
  }
}
