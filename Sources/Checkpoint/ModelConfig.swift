import JSON

/// The typed view of a checkpoint's `config.json`: every field Smelt's commands read, under the Hugging
/// Face name in camelCase. Unknown architectures still parse (every field is optional); `raw` keeps the
/// whole document so converters can rewrite it without losing fields Smelt does not know.
public struct ModelConfig: Sendable {
  /// The parsed document, for round-tripping.
  public var raw: JSONObject

  public var architectures: [String]
  public var modelType: String?
  public var vocabSize: Int?
  public var hiddenSize: Int?
  public var intermediateSize: Int?
  public var moeIntermediateSize: Int?
  public var numHiddenLayers: Int?
  public var numAttentionHeads: Int?
  public var numKeyValueHeads: Int?
  public var firstKDenseReplace: Int?
  public var moeLayerFreq: Int?
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
  public var ropeTheta: Double?
  public var ropeScaling: RopeScaling?
  public var ropeInterleave: Bool?
  public var maxPositionEmbeddings: Int?
  public var numNextnPredictLayers: Int?
  public var tieWordEmbeddings: Bool?
  public var hiddenAct: String?
  public var torchDtype: String?
  /// Qwen-MoE / Mixtral names for the expert count and routing.
  public var numExperts: Int?
  public var numLocalExperts: Int?
  public var sharedExpertIntermediateSize: Int?
  /// `quantization_config`, if present.
  public var quantizationConfig: QuantizationConfig?

  /// YaRN (or other) RoPE scaling parameters.
  public struct RopeScaling: Sendable, Equatable {
    public var type: String
    public var factor: Double?
    public var originalMaxPositionEmbeddings: Int?
    public var betaFast: Double?
    public var betaSlow: Double?
    public var mscale: Double?
    public var mscaleAllDim: Double?
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
  public init(object: JSONObject, path: String) throws {
    let reader = FieldReader(object: object, path: path)
    raw = object
    architectures = try reader.strings("architectures") ?? []
    modelType = try reader.string("model_type")
    vocabSize = try reader.int("vocab_size")
    hiddenSize = try reader.int("hidden_size")
    intermediateSize = try reader.int("intermediate_size")
    moeIntermediateSize = try reader.int("moe_intermediate_size")
    numHiddenLayers = try reader.int("num_hidden_layers")
    numAttentionHeads = try reader.int("num_attention_heads")
    numKeyValueHeads = try reader.int("num_key_value_heads")
    firstKDenseReplace = try reader.int("first_k_dense_replace")
    moeLayerFreq = try reader.int("moe_layer_freq")
    nRoutedExperts = try reader.int("n_routed_experts")
    nSharedExperts = try reader.int("n_shared_experts")
    numExpertsPerTok = try reader.int("num_experts_per_tok")
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
    ropeTheta = try reader.double("rope_theta")
    ropeInterleave = try reader.bool("rope_interleave")
    maxPositionEmbeddings = try reader.int("max_position_embeddings")
    numNextnPredictLayers = try reader.int("num_nextn_predict_layers")
    tieWordEmbeddings = try reader.bool("tie_word_embeddings")
    hiddenAct = try reader.string("hidden_act")
    torchDtype = try reader.string("torch_dtype") ?? reader.string("dtype")
    numExperts = try reader.int("num_experts")
    numLocalExperts = try reader.int("num_local_experts")
    sharedExpertIntermediateSize = try reader.int("shared_expert_intermediate_size")
    if let scaling = try reader.object("rope_scaling") {
      let inner = FieldReader(object: scaling, path: path, prefix: "rope_scaling.")
      ropeScaling = RopeScaling(
        type: try inner.string("type") ?? inner.string("rope_type") ?? "default",
        factor: try inner.double("factor"),
        originalMaxPositionEmbeddings: try inner.int("original_max_position_embeddings"),
        betaFast: try inner.double("beta_fast"), betaSlow: try inner.double("beta_slow"),
        mscale: try inner.double("mscale"), mscaleAllDim: try inner.double("mscale_all_dim"))
    }
    if let quantization = try reader.object("quantization_config") {
      let inner = FieldReader(object: quantization, path: path, prefix: "quantization_config.")
      quantizationConfig = QuantizationConfig(
        raw: quantization, quantMethod: try inner.string("quant_method"), fmt: try inner.string("fmt"),
        activationScheme: try inner.string("activation_scheme"), weightBlockSize: try inner.ints("weight_block_size"),
        scaleFmt: try inner.string("scale_fmt"), format: try inner.string("format"), bits: try inner.int("bits"),
        groupSize: try inner.int("group_size"))
    }
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
