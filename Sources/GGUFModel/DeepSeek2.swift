import Checkpoint
import JSON
import GGUF

/// The DeepSeek-V3 family (V3/R1, V3.1, Kimi K2) as llama.cpp's `deepseek2` architecture, in the layout current
/// llama.cpp writes and loads (`conversion/deepseek.py` `DeepseekV2Model`, `src/models/deepseek2.cpp`): the
/// metadata llama.cpp reads, the Hugging Face → GGUF tensor names, the MLA split of `kv_b_proj`, the stacked routed
/// experts and the MTP (`nextn`) block (the parts several architectures share are in `GGUFMappingParts.swift`;
/// `DeepSeek32` extends this layout with V3.2's indexer), and the reverse map that reads such a GGUF back.
///
/// The traps it handles: `expert_gating_func` must be written (absent means softmax to llama.cpp; V3 scores
/// with a sigmoid); `rope.scaling.yarn_log_multiplier` is `0.1·mscale_all_dim` (llama.cpp divides by 0.1 on
/// load); MLA mode needs both `key_length_mla` and `value_length_mla`, and `head_count_kv` is 1; the MTP block
/// is counted in `block_count` and announced by `nextn_predict_layers` (the Python converter drops it;
/// `keepMTP: false` does the same for llama.cpp builds that cannot load it).
public enum DeepSeek2: GGUFArchitectureMapping {
  public static let architecture = "deepseek2"
  /// llama.cpp's pre-tokenizer for the DeepSeek-V3 BPE vocabulary.
  public static let preTokenizer = "deepseek-v3"
  /// Kimi K2 ships a tiktoken vocabulary; `DeepseekV2Model.set_vocab` writes it with the `kimi-k2` pre-tokenizer.
  public static let tiktokenPreTokenizer: String? = "kimi-k2"

  public typealias Options = GGUFMappingOptions
  public typealias Failure = GGUFMappingFailure

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

    /// `architecture`: `deepseek2`, or a sibling that shares its MLA layout (`DeepSeek32`).
    init(_ config: ModelConfig, options: Options, architecture: String = DeepSeek2.architecture) throws(Failure) {
      try DeepSeek2.requireFamily(config, architecture: architecture)
      func need(_ value: Int?, _ field: String) throws(Failure) -> Int { try DeepSeek2.positive(value, field) }
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
    try keys(config, options: options, fileType: fileType, architecture: architecture).metadata
  }

  /// `hyperparameters` under `architecture`'s prefix, for a sibling architecture to extend (`DeepseekV2Model`'s
  /// subclasses call it first).
  static func keys(_ config: ModelConfig, options: Options, fileType: LlamaFileType?, architecture: String) throws(Failure)
    -> ArchitectureKeys
  {
    let g = try Geometry(config, options: options, architecture: architecture)
    var m = ArchitectureKeys(architecture)
    // TextModel.set_gguf_parameters (MLA is written as MQA with one wide KV head). The converter reads config.json
    // through transformers, whose DeepSeek-V3/V3.2 configs fill `head_dim` = `qk_rope_head_dim`: so key_length and
    // value_length take their place here, their values set below.
    try m.textModel(
      config, blockCount: g.blockCount, hidden: g.hidden, feedForward: g.intermediate, heads: g.heads, kvHeads: 1,
      experts: g.experts, headDim: config.headDim ?? g.rope, rmsEpsilon: 1e-6, fileType: fileType)

    // DeepseekV2Model.set_gguf_parameters
    m.u32("leading_dense_block_count", g.denseLayers)
    m.u32("vocab_size", g.vocabulary)
    if let q = g.qLoraRank { m.u32("attention.q_lora_rank", q) }
    m.u32("attention.kv_lora_rank", g.kvLoraRank)
    m.u32("attention.key_length", g.kvLoraRank + g.rope)
    m.u32("attention.value_length", g.kvLoraRank)
    m.u32("attention.key_length_mla", g.nope + g.rope)
    m.u32("attention.value_length_mla", g.valueHead)
    m.u32("expert_feed_forward_length", g.expertIntermediate)
    if let experts = g.experts { m.u32("expert_count", experts) }
    m.u32("expert_shared_count", g.sharedExperts)
    if let scale = config.routedScalingFactor { m.f32("expert_weights_scale", scale) }
    if config.normTopkProb == true { m.bool("expert_weights_norm", true) }
    m.u32("rope.dimension_count", g.rope)
    if let mscale = config.ropeScaling?.mscaleAllDim { m.f32("rope.scaling.yarn_log_multiplier", 0.1 * mscale) }
    if g.mtpLayers > 0 { m.u32("nextn_predict_layers", g.mtpLayers) }
    return m
  }

  /// What llama-quantize's type rules read of this model.
  public static func quantizeModel(_ config: ModelConfig, options: Options = Options()) throws(Failure) -> LlamaQuantize.Model {
    try quantizeModel(config, options: options, architecture: architecture)
  }

  static func quantizeModel(_ config: ModelConfig, options: Options, architecture: String) throws(Failure) -> LlamaQuantize.Model {
    let g = try Geometry(config, options: options, architecture: architecture)
    return LlamaQuantize.Model(architecture: architecture, expertCount: g.experts ?? 0, headCount: g.heads, headCountKV: 1, blockCount: g.blockCount)
  }

  // MARK: tensor names

  /// One-to-one tensors of a decoder block: the GGUF name under `blk.N.` and the Hugging Face name under
  /// `model.layers.N.` (`attn_kv_b` is the legacy non-MLA layout, read but not written).
  static let blockNames: [(gguf: String, huggingFace: String)] = [
    ("attn_norm.weight", "input_layernorm.weight"),
    ("attn_q_a.weight", "self_attn.q_a_proj.weight"),
    ("attn_q_a_norm.weight", "self_attn.q_a_layernorm.weight"),
    ("attn_q_b.weight", "self_attn.q_b_proj.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_kv_a_mqa.weight", "self_attn.kv_a_proj_with_mqa.weight"),
    ("attn_kv_a_norm.weight", "self_attn.kv_a_layernorm.weight"),
    ("attn_kv_b.weight", "self_attn.kv_b_proj.weight"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
    ("ffn_gate_inp.weight", "mlp.gate.weight"),
    ("exp_probs_b.bias", "mlp.gate.e_score_correction_bias"),
    ("ffn_gate_shexp.weight", "mlp.shared_experts.gate_proj.weight"),
    ("ffn_up_shexp.weight", "mlp.shared_experts.up_proj.weight"),
    ("ffn_down_shexp.weight", "mlp.shared_experts.down_proj.weight"),
  ] + nextnBlockNames
  /// Tensors outside the blocks.
  static let globalNames: [(gguf: String, huggingFace: String)] = [
    ("token_embd.weight", "model.embed_tokens.weight"), ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
  ]
  static let keyHalf = "attn_k_b.weight"
  static let valueHalf = "attn_v_b.weight"
  static let kvB = "self_attn.kv_b_proj.weight"

  private static let huggingFaceByGGUF = Dictionary(uniqueKeysWithValues: blockNames.map { ($0.gguf, $0.huggingFace) })

  /// The Hugging Face name of block tensor `leaf` (`attn_norm.weight` → `input_layernorm.weight`).
  static func huggingFace(_ leaf: String) -> String {
    guard let name = huggingFaceByGGUF[leaf] else { preconditionFailure("no Hugging Face name for \(leaf)") }
    return name
  }

  // MARK: tensors

  /// Every GGUF tensor, from the checkpoint's tensor shapes (Hugging Face names and shapes). Layers come in
  /// order, each in the checkpoint's module order; FP8 `weight_scale_inv` companions are not listed (they
  /// belong to the weight they scale). `converterOrder` puts them in the order convert_hf_to_gguf.py writes.
  ///
  /// - Throws: `Failure` for a missing tensor, a shape config.json contradicts, or a tensor with no GGUF name.
  public static func tensors(_ config: ModelConfig, shapes: [String: [Int]], options: Options = Options()) throws(Failure)
    -> [GGUFTensorPlan]
  {
    try tensors(config, shapes: shapes, options: options, architecture: architecture) { _, _ throws(Failure) in }
  }

  /// `tensors` for `architecture`, with `attentionExtras` adding a sibling's own tensors to each block after its
  /// attention (`DeepSeek32`'s indexer).
  static func tensors(
    _ config: ModelConfig, shapes: [String: [Int]], options: Options, architecture: String,
    attentionExtras: (_ layer: Int, _ builder: inout TensorPlanBuilder) throws(Failure) -> Void
  ) throws(Failure) -> [GGUFTensorPlan] {
    let g = try Geometry(config, options: options, architecture: architecture)
    var b = TensorPlanBuilder(shapes: shapes)
    /// A block tensor by its GGUF leaf.
    func block(_ layer: Int, _ leaf: String, _ expected: [Int], optional: Bool = false) throws(Failure) {
      let hf = "model.layers.\(layer)." + huggingFace(leaf)
      if optional && !b.has(hf) { return }
      try b.copy("blk.\(layer)." + leaf, hf, expected)
    }

    try b.copy("token_embd.weight", "model.embed_tokens.weight", [g.vocabulary, g.hidden])
    for layer in 0..<g.blockCount {
      let hf = "model.layers.\(layer)."
      let blk = "blk.\(layer)."
      try block(layer, "attn_norm.weight", [g.hidden])
      if let q = g.qLoraRank {
        try block(layer, "attn_q_a.weight", [q, g.hidden])
        try block(layer, "attn_q_a_norm.weight", [q])
        try block(layer, "attn_q_b.weight", [g.heads * (g.nope + g.rope), q])
      } else {
        try block(layer, "attn_q.weight", [g.heads * (g.nope + g.rope), g.hidden])
      }
      try block(layer, "attn_kv_a_mqa.weight", [g.kvLoraRank + g.rope, g.hidden])
      try block(layer, "attn_kv_a_norm.weight", [g.kvLoraRank])
      let kvB = hf + Self.kvB
      try b.check(kvB, [g.heads * (g.nope + g.valueHead), g.kvLoraRank])
      b.append(GGUFTensorPlan(
        name: blk + keyHalf, dimensions: [g.nope, g.kvLoraRank, g.heads],
        source: .mlaKeyHalf(kvB, heads: g.heads, nope: g.nope, value: g.valueHead)))
      b.append(GGUFTensorPlan(
        name: blk + valueHalf, dimensions: [g.kvLoraRank, g.valueHead, g.heads],
        source: .mlaValueHalf(kvB, heads: g.heads, nope: g.nope, value: g.valueHead)))
      try block(layer, "attn_output.weight", [g.hidden, g.heads * g.valueHead])
      try attentionExtras(layer, &b)
      try block(layer, "ffn_norm.weight", [g.hidden])
      if layer < g.denseLayers {
        let ff = g.intermediate ?? 0
        try block(layer, "ffn_gate.weight", [ff, g.hidden])
        try block(layer, "ffn_up.weight", [ff, g.hidden])
        try block(layer, "ffn_down.weight", [g.hidden, ff])
      } else if let experts = g.experts {
        try block(layer, "ffn_gate_inp.weight", [experts, g.hidden])
        try block(layer, "exp_probs_b.bias", [experts], optional: true)
        let ff = g.expertIntermediate
        try b.stackExperts(hf: hf, blk: blk, experts: experts, hidden: g.hidden, intermediate: ff)
        if g.sharedExperts > 0 {
          let shared = ff * g.sharedExperts
          try block(layer, "ffn_gate_shexp.weight", [shared, g.hidden])
          try block(layer, "ffn_up_shexp.weight", [shared, g.hidden])
          try block(layer, "ffn_down_shexp.weight", [g.hidden, shared])
        }
      }
      if layer >= g.layers { try b.nextn(layer: layer, hidden: g.hidden, vocabulary: g.vocabulary) }
    }
    try b.copy("output_norm.weight", "model.norm.weight", [g.hidden])
    try b.outputHead(tied: g.tiedEmbeddings, vocabulary: g.vocabulary, hidden: g.hidden)
    // Everything else must be accounted for, but for the MTP block when it is dropped.
    return try b.finish { name in g.mtpLayers == 0 && (TensorPlanBuilder.layer(of: name).map { $0 >= g.layers } ?? false) }
  }

  /// `plan` in the order convert_hf_to_gguf.py writes its tensors: it walks the checkpoint's files in name
  /// order and each file's tensors in name order (`sourceOrder`, FP8 scales included or not), writes a tensor
  /// when it reads it, the two halves of `kv_b_proj` where `kv_b_proj` is, and a layer's three stacked expert
  /// tensors (down, gate, up) once the last of its routed experts has been read.
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    expertStackingOrder(plan, sourceOrder: sourceOrder)
  }

  // MARK: reading a GGUF

  public typealias StoredTensor = GGUFStoredTensor

  /// The Hugging Face tensors a deepseek2 GGUF holds, in the GGUF's order: every GGUF tensor mapped back by
  /// name, stacked experts split per expert, `attn_k_b` + `attn_v_b` joined into `kv_b_proj`.
  ///
  /// - Throws: `.unknownGGUFTensor` for a name outside the mapping, `.inconsistentGGUFTensor` for an MLA half
  ///   without its partner or with dimensions that do not pair.
  public static func storedTensors(_ tensors: [GGUFTensorInfo]) throws(Failure) -> [StoredTensor] {
    try storedTensors(tensors, extraBlockNames: [:])
  }

  /// `storedTensors`, with the block leaves of a deepseek2-based architecture (`extraBlockNames`: GGUF leaf →
  /// Hugging Face name under `model.layers.N.`; deepseek32's indexer).
  static func storedTensors(_ tensors: [GGUFTensorInfo], extraBlockNames: [String: String]) throws(Failure) -> [StoredTensor] {
    let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    let globals = Dictionary(uniqueKeysWithValues: globalNames.map { ($0.gguf, $0.huggingFace) })
    var stored: [StoredTensor] = []
    for tensor in tensors {
      let shape = tensor.shape
      if let hf = globals[tensor.name] {
        stored.append(StoredTensor(name: hf, shape: shape, layout: .whole(tensor.name)))
        continue
      }
      guard let (layer, leafText) = blockName(tensor.name) else { throw .unknownGGUFTensor(tensor.name) }
      let prefix = "blk.\(layer)"
      let leaf = String(leafText)
      let hf = "model.layers.\(layer)."
      if let name = huggingFaceByGGUF[leaf] ?? extraBlockNames[leaf] {
        stored.append(StoredTensor(name: hf + name, shape: shape, layout: .whole(tensor.name)))
      } else if let stack = expertStackOrder.first(where: { $0.gguf == leaf }) {
        stored += try GGUFStoredTensor.experts(of: tensor, hf: hf, projection: stack.projection)
      } else if leaf == keyHalf {
        let valueName = prefix + "." + valueHalf
        guard let value = byName[valueName] else {
          throw .inconsistentGGUFTensor(tensor.name, reason: "its partner '\(valueName)' is missing")
        }
        // k_b {nope, kv, heads}, v_b {kv, v, heads}.
        let (k, v) = (tensor.dimensions, value.dimensions)
        guard k.count == 3, v.count == 3, k[1] == v[0], k[2] == v[2] else {
          throw .inconsistentGGUFTensor(tensor.name, reason: "dimensions \(k) do not pair with '\(valueName)' \(v)")
        }
        stored.append(StoredTensor(
          name: hf + kvB, shape: [k[2] * (k[0] + v[1]), k[1]],
          layout: .mlaKeyValue(key: tensor.name, value: valueName, heads: k[2], nope: k[0], valueHead: v[1])))
      } else if leaf == valueHalf {
        guard byName[prefix + "." + keyHalf] != nil else {
          throw .inconsistentGGUFTensor(tensor.name, reason: "its partner '\(prefix).\(keyHalf)' is missing")
        }
      } else {
        throw .unknownGGUFTensor(tensor.name)
      }
    }
    return stored
  }

  /// The `config.json` of the model a deepseek2 GGUF holds, from its metadata and tensor list: what Smelt's
  /// reference forward pass and validator read (`architectures`, the dimensions, the router, YaRN). The
  /// inverse of `hyperparameters`, with llama.cpp's defaults for what the GGUF leaves out (no
  /// `expert_gating_func` means softmax; the YaRN multiplier is divided by 0.1 as llama.cpp does).
  public static func huggingFaceConfig(_ metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) throws(Failure) -> JSONObject {
    try huggingFaceConfig(metadata, tensors: tensors, architecture: architecture)
  }

  /// `huggingFaceConfig` of a deepseek2-based architecture's GGUF (its keys under `architecture.`).
  static func huggingFaceConfig(_ metadata: GGUFMetadata, tensors: [GGUFTensorInfo], architecture arch: String) throws(Failure)
    -> JSONObject
  {
    let m = try ArchitectureMetadata(metadata, architecture: arch)
    func int(_ key: String) -> Int? { m.int(key) }
    func float(_ key: String) -> Float? { m.float(key) }
    func need(_ key: String) throws(Failure) -> Int { try m.need(key) }
    let names = Set(tensors.map(\.name))
    let blocks = try need("block_count")
    let nextn = int("nextn_predict_layers") ?? 0
    // Layers whose nextn tensors are present (a trunk-only GGUF announces MTP without carrying it).
    let mtpPresent = (0..<blocks).filter { names.contains("blk.\($0).nextn.eh_proj.weight") }.count
    let layers = blocks - nextn
    guard layers > 0 else { throw .missingKey("\(arch).nextn_predict_layers") }
    let heads = try need("attention.head_count")
    let rope = try need("rope.dimension_count")
    let kvLora = try need("attention.kv_lora_rank")
    let (nope, valueHead): (Int, Int)
    if let keyMLA = int("attention.key_length_mla"), let valueMLA = int("attention.value_length_mla") {
      (nope, valueHead) = (keyMLA - rope, valueMLA)
    } else {
      (nope, valueHead) = (try need("attention.key_length") - rope, try need("attention.value_length"))
    }
    guard nope > 0 else { throw .missingKey("\(arch).attention.key_length_mla") }
    let vocabulary = try m.vocabulary(tensors)

    func number(_ value: Float) -> JSONValue { JSONNumber(Double(value)).map { .number($0) } ?? .null }
    var c = JSONObject()
    c["architectures"] = ["DeepseekV3ForCausalLM"]
    c["model_type"] = "deepseek_v3"
    c["vocab_size"] = .number(JSONNumber(vocabulary))
    c["hidden_size"] = .number(JSONNumber(try need("embedding_length")))
    if let ff = int("feed_forward_length") { c["intermediate_size"] = .number(JSONNumber(ff)) }
    if let ff = int("expert_feed_forward_length") { c["moe_intermediate_size"] = .number(JSONNumber(ff)) }
    c["num_hidden_layers"] = .number(JSONNumber(layers))
    c["num_nextn_predict_layers"] = .number(JSONNumber(min(nextn, mtpPresent)))
    c["num_attention_heads"] = .number(JSONNumber(heads))
    c["num_key_value_heads"] = .number(JSONNumber(heads))
    c["first_k_dense_replace"] = .number(JSONNumber(int("leading_dense_block_count") ?? 0))
    if let experts = int("expert_count"), experts > 0 {
      c["n_routed_experts"] = .number(JSONNumber(experts))
      c["n_shared_experts"] = .number(JSONNumber(int("expert_shared_count") ?? 0))
      c["num_experts_per_tok"] = .number(JSONNumber(try need("expert_used_count")))
      c["n_group"] = .number(JSONNumber(int("expert_group_count") ?? 1))
      c["topk_group"] = .number(JSONNumber(int("expert_group_used_count") ?? 1))
      c["routed_scaling_factor"] = number(float("expert_weights_scale") ?? 1)
      let gating = [1: "softmax", 2: "sigmoid", 4: "sqrtsoftplus"]
      c["scoring_func"] = .string(gating[int("expert_gating_func") ?? 1] ?? "unknown gating function \(int("expert_gating_func") ?? 0)")
      c["topk_method"] = names.contains { $0.hasSuffix(".exp_probs_b.bias") } ? "noaux_tc" : "greedy"
      c["norm_topk_prob"] = .bool(metadata["\(arch).expert_weights_norm"]?.boolValue ?? false)
    }
    if let q = int("attention.q_lora_rank") { c["q_lora_rank"] = .number(JSONNumber(q)) }
    c["kv_lora_rank"] = .number(JSONNumber(kvLora))
    c["qk_nope_head_dim"] = .number(JSONNumber(nope))
    c["qk_rope_head_dim"] = .number(JSONNumber(rope))
    c["v_head_dim"] = .number(JSONNumber(valueHead))
    guard let epsilon = float("attention.layer_norm_rms_epsilon") else { throw .missingKey("\(arch).attention.layer_norm_rms_epsilon") }
    c["rms_norm_eps"] = number(epsilon)
    c["rope_theta"] = number(float("rope.freq_base") ?? 10000)
    c["max_position_embeddings"] = .number(JSONNumber(try need("context_length")))
    if var scaling = m.yarnScaling() {
      // [TAG_DEEPSEEK2_YARN_LOG_MUL_FIX]: llama.cpp divides by 0.1 in float and uses it for both scales.
      if let multiplier = float("rope.scaling.yarn_log_multiplier") {
        let mscale = multiplier / Float(0.1)
        scaling["mscale"] = number(mscale)
        scaling["mscale_all_dim"] = number(mscale)
      }
      c["rope_scaling"] = .object(scaling)
    }
    c["tie_word_embeddings"] = .bool(!names.contains("output.weight"))
    c["hidden_act"] = "silu"
    let dtypes: [UInt32: String] = [0: "float32", 1: "float16", 32: "bfloat16"]
    c["torch_dtype"] = .string(metadata["general.file_type"]?.integerValue.flatMap { dtypes[UInt32(truncatingIfNeeded: $0)] } ?? "bfloat16")
    return c
  }

}
