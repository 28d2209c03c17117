import Checkpoint
import JSON
import GGUF

/// The DeepSeek-V2/V3 family as llama.cpp's `deepseek2` architecture, in the layout current llama.cpp writes
/// and loads (`conversion/deepseek.py` `DeepseekV2Model`, `src/models/deepseek2.cpp`). Everything about
/// this family lives in this one file: the metadata llama.cpp reads, the Hugging Face → GGUF tensor names,
/// the MLA split of `kv_b_proj`, the stacked routed experts and the MTP (`nextn`) block.
///
/// The traps it handles: `expert_gating_func` must be written (absent means softmax to llama.cpp; V3 scores
/// with a sigmoid); `rope.scaling.yarn_log_multiplier` is `0.1·mscale_all_dim` (llama.cpp divides by 0.1 on
/// load); MLA mode needs both `key_length_mla` and `value_length_mla`, and `head_count_kv` is 1; the MTP block
/// is counted in `block_count` and announced by `nextn_predict_layers` (the Python converter drops it;
/// `keepMTP: false` does the same for llama.cpp builds that cannot load it).
public enum DeepSeek2 {
  public static let architecture = "deepseek2"
  /// `config.json` `architectures` entries this mapping accepts.
  public static let sourceArchitectures: Set<String> = ["DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM"]
  /// llama.cpp's pre-tokenizer for the DeepSeek-V3 BPE vocabulary.
  public static let preTokenizer = "deepseek-v3"

  public struct Options: Sendable, Equatable {
    /// Write the multi-token-prediction block(s) as `blk.N.nextn.*` (N = num_hidden_layers ...).
    public var keepMTP: Bool

    public init(keepMTP: Bool = true) { self.keepMTP = keepMTP }
  }

  public enum Failure: Error, Equatable, CustomStringConvertible {
    case unsupportedArchitecture(found: [String])
    case missingField(String)
    case invalidField(String, reason: String)
    case missingTensor(String)
    case unexpectedShape(tensor: String, shape: [Int], expected: [Int])
    case unmappedTensor(String)

    public var description: String {
      switch self {
      case .unsupportedArchitecture(let found):
        let shown = found.isEmpty ? "no architectures entry" : found.joined(separator: ", ")
        return "config.json has \(shown); the GGUF deepseek2 mapping supports \(DeepSeek2.sourceArchitectures.sorted().joined(separator: ", "))"
      case .missingField(let field):
        return "config.json lacks '\(field)', which llama.cpp's deepseek2 needs"
      case .invalidField(let field, let reason):
        return "config.json '\(field)' \(reason)"
      case .missingTensor(let name):
        return "the checkpoint has no tensor '\(name)', which deepseek2 needs"
      case .unexpectedShape(let tensor, let shape, let expected):
        return "tensor '\(tensor)' has shape \(shape), expected \(expected) from config.json"
      case .unmappedTensor(let name):
        return "tensor '\(name)' has no deepseek2 GGUF name (an architecture variant Smelt does not know?)"
      }
    }
  }

  /// The dimensions config.json fixes, checked once.
  struct Geometry {
    var hidden: Int
    var layers: Int
    var mtpLayers: Int
    var heads: Int
    var vocabulary: Int
    var qLoraRank: Int?
    var kvLoraRank: Int
    var nope: Int
    var rope: Int
    var valueHead: Int
    var denseLayers: Int
    var intermediate: Int?
    var expertIntermediate: Int
    var experts: Int?
    var sharedExperts: Int
    var tiedEmbeddings: Bool

    init(_ config: ModelConfig, options: Options) throws(Failure) {
      guard !config.architectures.isEmpty, config.architectures.contains(where: DeepSeek2.sourceArchitectures.contains) else {
        throw .unsupportedArchitecture(found: config.architectures)
      }
      func need(_ value: Int?, _ field: String) throws(Failure) -> Int {
        guard let value else { throw .missingField(field) }
        guard value > 0 else { throw .invalidField(field, reason: "is \(value), must be positive") }
        return value
      }
      hidden = try need(config.hiddenSize, "hidden_size")
      layers = try need(config.numHiddenLayers, "num_hidden_layers")
      mtpLayers = options.keepMTP ? max(0, config.numNextnPredictLayers ?? 0) : 0
      heads = try need(config.numAttentionHeads, "num_attention_heads")
      vocabulary = try need(config.vocabSize, "vocab_size")
      qLoraRank = config.qLoraRank
      kvLoraRank = config.kvLoraRank ?? 512
      nope = try need(config.qkNopeHeadDim, "qk_nope_head_dim")
      rope = try need(config.qkRopeHeadDim, "qk_rope_head_dim")
      valueHead = try need(config.vHeadDim, "v_head_dim")
      experts = config.routedExpertCount
      denseLayers = config.firstKDenseReplace ?? (experts == nil ? layers : 0)
      intermediate = config.intermediateSize
      guard let expertFF = config.moeIntermediateSize ?? config.intermediateSize else { throw .missingField("moe_intermediate_size") }
      expertIntermediate = expertFF
      sharedExperts = config.nSharedExperts ?? 0
      tiedEmbeddings = config.tieWordEmbeddings ?? false
      if experts != nil, config.numExpertsPerTok == nil { throw .missingField("num_experts_per_tok") }
      if denseLayers > 0, intermediate == nil { throw .missingField("intermediate_size") }
    }

    var blockCount: Int { layers + mtpLayers }
  }

  // MARK: metadata

  /// The `general.architecture` and `deepseek2.*` key-value pairs, in convert_hf_to_gguf.py's order (a
  /// repeated key keeps its first position, as gguf-py's dict does). `general.file_type` is included when
  /// `fileType` is given.
  public static func hyperparameters(_ config: ModelConfig, options: Options = Options(), fileType: LlamaFileType? = nil)
    throws(Failure) -> GGUFMetadata
  {
    let g = try Geometry(config, options: options)
    let arch = architecture
    var m = GGUFMetadata([GGUFKeyValue("general.architecture", .string(arch))])
    func u32(_ key: String, _ value: Int) { m.replaceOrAppend("\(arch).\(key)", .uint32(UInt32(truncatingIfNeeded: value))) }
    func f32(_ key: String, _ value: Double) { m.replaceOrAppend("\(arch).\(key)", .float32(Float(value))) }

    // TextModel.set_gguf_parameters
    u32("block_count", g.blockCount)
    guard let context = config.maxPositionEmbeddings else { throw .missingField("max_position_embeddings") }
    u32("context_length", context)
    u32("embedding_length", g.hidden)
    if let ff = g.intermediate { u32("feed_forward_length", ff) }
    u32("attention.head_count", g.heads)
    u32("attention.head_count_kv", 1)  // MLA is written as MQA with one wide KV head
    if let scaling = config.ropeScaling, let factor = scaling.factor {
      if scaling.type == "linear" {
        m.replaceOrAppend("\(arch).rope.scaling.type", .string("linear"))
        f32("rope.scaling.factor", factor)
      } else if scaling.type == "yarn" {
        m.replaceOrAppend("\(arch).rope.scaling.type", .string("yarn"))
        f32("rope.scaling.factor", factor)
        guard let original = scaling.originalMaxPositionEmbeddings else {
          throw .missingField("rope_scaling.original_max_position_embeddings")
        }
        u32("rope.scaling.original_context_length", original)
        let raw = config.raw["rope_scaling"]
        if let ext = raw?["extrapolation_factor"]?.doubleValue { f32("rope.scaling.yarn_ext_factor", ext) }
        if let attn = raw?["attention_factor"]?.doubleValue ?? raw?["attn_factor"]?.doubleValue { f32("rope.scaling.yarn_attn_factor", attn) }
        if let fast = scaling.betaFast { f32("rope.scaling.yarn_beta_fast", fast) }
        if let slow = scaling.betaSlow { f32("rope.scaling.yarn_beta_slow", slow) }
      }
    }
    if let theta = config.ropeTheta { f32("rope.freq_base", theta) }
    f32("attention.layer_norm_rms_epsilon", config.rmsNormEps ?? 1e-6)
    if let experts = g.experts { u32("expert_count", experts) }
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
    if let fileType { m.replaceOrAppend("general.file_type", .uint32(fileType.rawValue)) }

    // DeepseekV2Model.set_gguf_parameters
    u32("leading_dense_block_count", g.denseLayers)
    u32("vocab_size", g.vocabulary)
    if let q = g.qLoraRank { u32("attention.q_lora_rank", q) }
    u32("attention.kv_lora_rank", g.kvLoraRank)
    u32("attention.key_length", g.kvLoraRank + g.rope)
    u32("attention.value_length", g.kvLoraRank)
    u32("attention.key_length_mla", g.nope + g.rope)
    u32("attention.value_length_mla", g.valueHead)
    u32("expert_feed_forward_length", g.expertIntermediate)
    if let experts = g.experts { u32("expert_count", experts) }
    u32("expert_shared_count", g.sharedExperts)
    if let scale = config.routedScalingFactor { f32("expert_weights_scale", scale) }
    if config.normTopkProb == true { m.replaceOrAppend("\(arch).expert_weights_norm", .bool(true)) }
    u32("rope.dimension_count", g.rope)
    if let mscale = config.ropeScaling?.mscaleAllDim { f32("rope.scaling.yarn_log_multiplier", 0.1 * mscale) }
    if g.mtpLayers > 0 { u32("nextn_predict_layers", g.mtpLayers) }
    return m
  }

  /// What llama-quantize's type rules read of this model.
  public static func quantizeModel(_ config: ModelConfig, options: Options = Options()) throws(Failure) -> LlamaQuantize.Model {
    let g = try Geometry(config, options: options)
    return LlamaQuantize.Model(architecture: architecture, expertCount: g.experts ?? 0, headCount: g.heads, headCountKV: 1, blockCount: g.blockCount)
  }

  // MARK: tensors

  /// Every GGUF tensor, from the checkpoint's tensor shapes (Hugging Face names and shapes). Layers come in
  /// order, each in the checkpoint's module order; FP8 `weight_scale_inv` companions are not listed (they
  /// belong to the weight they scale).
  ///
  /// - Throws: `Failure` for a missing tensor, a shape config.json contradicts, or a tensor with no GGUF name.
  public static func tensors(_ config: ModelConfig, shapes: [String: [Int]], options: Options = Options()) throws(Failure)
    -> [GGUFTensorPlan]
  {
    let g = try Geometry(config, options: options)
    var plan: [GGUFTensorPlan] = []
    var used = Set<String>()

    func shape(_ name: String, _ expected: [Int]) throws(Failure) -> [Int] {
      guard let actual = shapes[name] else { throw .missingTensor(name) }
      guard actual == expected else { throw .unexpectedShape(tensor: name, shape: actual, expected: expected) }
      used.insert(name)
      return actual
    }
    func copy(_ gguf: String, _ hf: String, _ expected: [Int]) throws(Failure) {
      let dims = try shape(hf, expected)
      plan.append(GGUFTensorPlan(name: gguf, dimensions: dims.reversed(), source: .tensor(hf)))
    }
    func copyIfPresent(_ gguf: String, _ hf: String, _ expected: [Int]) throws(Failure) {
      if shapes[hf] != nil { try copy(gguf, hf, expected) }
    }

    try copy("token_embd.weight", "model.embed_tokens.weight", [g.vocabulary, g.hidden])
    for layer in 0..<g.blockCount {
      let hf = "model.layers.\(layer)."
      let blk = "blk.\(layer)."
      try copy(blk + "attn_norm.weight", hf + "input_layernorm.weight", [g.hidden])
      if let q = g.qLoraRank {
        try copy(blk + "attn_q_a.weight", hf + "self_attn.q_a_proj.weight", [q, g.hidden])
        try copy(blk + "attn_q_a_norm.weight", hf + "self_attn.q_a_layernorm.weight", [q])
        try copy(blk + "attn_q_b.weight", hf + "self_attn.q_b_proj.weight", [g.heads * (g.nope + g.rope), q])
      } else {
        try copy(blk + "attn_q.weight", hf + "self_attn.q_proj.weight", [g.heads * (g.nope + g.rope), g.hidden])
      }
      try copy(blk + "attn_kv_a_mqa.weight", hf + "self_attn.kv_a_proj_with_mqa.weight", [g.kvLoraRank + g.rope, g.hidden])
      try copy(blk + "attn_kv_a_norm.weight", hf + "self_attn.kv_a_layernorm.weight", [g.kvLoraRank])
      let kvB = hf + "self_attn.kv_b_proj.weight"
      _ = try shape(kvB, [g.heads * (g.nope + g.valueHead), g.kvLoraRank])
      plan.append(GGUFTensorPlan(
        name: blk + "attn_k_b.weight", dimensions: [g.nope, g.kvLoraRank, g.heads],
        source: .mlaKeyHalf(kvB, heads: g.heads, nope: g.nope, value: g.valueHead)))
      plan.append(GGUFTensorPlan(
        name: blk + "attn_v_b.weight", dimensions: [g.kvLoraRank, g.valueHead, g.heads],
        source: .mlaValueHalf(kvB, heads: g.heads, nope: g.nope, value: g.valueHead)))
      try copy(blk + "attn_output.weight", hf + "self_attn.o_proj.weight", [g.hidden, g.heads * g.valueHead])
      try copy(blk + "ffn_norm.weight", hf + "post_attention_layernorm.weight", [g.hidden])
      if layer < g.denseLayers {
        let ff = g.intermediate ?? 0
        try copy(blk + "ffn_gate.weight", hf + "mlp.gate_proj.weight", [ff, g.hidden])
        try copy(blk + "ffn_up.weight", hf + "mlp.up_proj.weight", [ff, g.hidden])
        try copy(blk + "ffn_down.weight", hf + "mlp.down_proj.weight", [g.hidden, ff])
      } else if let experts = g.experts {
        try copy(blk + "ffn_gate_inp.weight", hf + "mlp.gate.weight", [experts, g.hidden])
        try copyIfPresent(blk + "exp_probs_b.bias", hf + "mlp.gate.e_score_correction_bias", [experts])
        let ff = g.expertIntermediate
        for (projection, gguf, rows, columns) in [
          ("down_proj", "ffn_down_exps.weight", g.hidden, ff), ("gate_proj", "ffn_gate_exps.weight", ff, g.hidden),
          ("up_proj", "ffn_up_exps.weight", ff, g.hidden),
        ] {
          var names: [String] = []
          for expert in 0..<experts {
            let name = hf + "mlp.experts.\(expert).\(projection).weight"
            _ = try shape(name, [rows, columns])
            names.append(name)
          }
          plan.append(GGUFTensorPlan(name: blk + gguf, dimensions: [columns, rows, experts], source: .stacked(names)))
        }
        if g.sharedExperts > 0 {
          let shared = ff * g.sharedExperts
          try copy(blk + "ffn_gate_shexp.weight", hf + "mlp.shared_experts.gate_proj.weight", [shared, g.hidden])
          try copy(blk + "ffn_up_shexp.weight", hf + "mlp.shared_experts.up_proj.weight", [shared, g.hidden])
          try copy(blk + "ffn_down_shexp.weight", hf + "mlp.shared_experts.down_proj.weight", [g.hidden, shared])
        }
      }
      if layer >= g.layers {
        try copy(blk + "nextn.eh_proj.weight", hf + "eh_proj.weight", [g.hidden, 2 * g.hidden])
        try copy(blk + "nextn.enorm.weight", hf + "enorm.weight", [g.hidden])
        try copy(blk + "nextn.hnorm.weight", hf + "hnorm.weight", [g.hidden])
        try copyIfPresent(blk + "nextn.embed_tokens.weight", hf + "embed_tokens.weight", [g.vocabulary, g.hidden])
        try copyIfPresent(blk + "nextn.shared_head_head.weight", hf + "shared_head.head.weight", [g.vocabulary, g.hidden])
        try copyIfPresent(blk + "nextn.shared_head_norm.weight", hf + "shared_head.norm.weight", [g.hidden])
      }
    }
    try copy("output_norm.weight", "model.norm.weight", [g.hidden])
    if g.tiedEmbeddings {
      if shapes["lm_head.weight"] != nil { used.insert("lm_head.weight") }
    } else {
      try copy("output.weight", "lm_head.weight", [g.vocabulary, g.hidden])
    }

    // Everything else must be accounted for: FP8 scales, and the MTP block when it is dropped.
    let unmapped = shapes.keys.filter { name in
      guard !used.contains(name), !name.hasSuffix(".weight_scale_inv") else { return false }
      if g.mtpLayers == 0, let layer = mtpLayer(of: name), layer >= g.layers { return false }
      return true
    }
    if let first = unmapped.min() { throw .unmappedTensor(first) }
    return plan
  }

  /// N of `model.layers.N.`.
  static func mtpLayer(of name: String) -> Int? {
    guard name.hasPrefix("model.layers.") else { return nil }
    return Int(name.dropFirst("model.layers.".count).prefix { $0.isASCII && $0.isNumber })
  }
}
