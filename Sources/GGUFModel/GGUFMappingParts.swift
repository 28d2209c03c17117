import Checkpoint
import GGUF
import JSON

// The parts the GGUF architecture mappings are built from: the tensor plan builder, the `{arch}.*` key writer,
// the geometry the grouped-query-attention architectures share, and the name tables several of them use.

/// Routed experts stacked into one tensor per projection (`ffn_*_exps`), in the order llama.cpp's converters
/// emit a layer's stacks.
let expertStackOrder: [(gguf: String, projection: String)] = [
  ("ffn_down_exps.weight", "down_proj"), ("ffn_gate_exps.weight", "gate_proj"), ("ffn_up_exps.weight", "up_proj"),
]

/// The embedding, final norm and head, as most architectures name them (GGUF → Hugging Face).
let standardGlobalTensors = [
  "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight",
]

/// The layer (as written) and the leaf of a `blk.N.leaf` GGUF name: `blk.N.` is read back as `model.layers.N.`.
func blockName(_ name: String) -> (layer: Substring, leaf: Substring)? {
  guard name.hasPrefix("blk."), let dot = name.dropFirst(4).firstIndex(of: "."), dot > name.index(name.startIndex, offsetBy: 4) else {
    return nil
  }
  return (name[name.index(name.startIndex, offsetBy: 4)..<dot], name[name.index(after: dot)...])
}

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

/// One Hugging Face tensor held in a GGUF: the reverse of a mapping's `tensors`.
public struct GGUFStoredTensor: Sendable, Equatable {
  public enum Layout: Sendable, Equatable {
    /// All of GGUF tensor `name`, same element order.
    case whole(String)
    /// Expert `index` of the `count` stacked on the outermost dimension of GGUF tensor `name` (a contiguous
    /// slab of whole rows).
    case expert(String, index: Int, count: Int)
    /// `kv_b_proj` `[heads·(nope + v), kvLoraRank]` rebuilt from the MLA halves: per head, rows `0..<nope`
    /// are `attn_k_b` transposed, rows `nope..<nope + v` are `attn_v_b`.
    case mlaKeyValue(key: String, value: String, heads: Int, nope: Int, valueHead: Int)
    /// A fused expert tensor held input-major in F32 — `[E, in, k·rows]` for matrices, `[E, k·rows]` for
    /// biases (gpt-oss's plain `gate_up_proj`, `down_proj` and their biases) — rebuilt expert by expert from the
    /// `k` stacked GGUF tensors `sources` (`ne = [in, rows, E]` / `[rows, E]`), their rows interleaved: output
    /// row `k·j + s` is row `j` of source `s`.
    case fusedExperts([String], count: Int)
  }
  /// The Hugging Face name.
  public var name: String
  /// The Hugging Face (PyTorch) shape.
  public var shape: [Int]
  public var layout: Layout
}

extension GGUFStoredTensor {
  /// Every expert of the stacked GGUF tensor `tensor` (`ne = [in, out, E]`) as `{hf}mlp.experts.E.{projection}.weight`,
  /// each a contiguous slab of whole rows.
  static func experts(
    of tensor: GGUFTensorInfo, hf: String, projection: String, container: String = "mlp.experts"
  ) throws(GGUFMappingFailure) -> [GGUFStoredTensor] {
    guard tensor.dimensions.count == 3 else {
      throw .inconsistentGGUFTensor(tensor.name, reason: "stacked experts need 3 dimensions, it has \(tensor.dimensions)")
    }
    let count = tensor.dimensions[2]
    return (0..<count).map { expert in
      GGUFStoredTensor(
        name: hf + "\(container).\(expert).\(projection).weight", shape: [tensor.dimensions[1], tensor.dimensions[0]],
        layout: .expert(tensor.name, index: expert, count: count))
    }
  }

  /// The Hugging Face tensors of a GGUF whose map is one-to-one — `globals` by GGUF name, `block` under `blk.N.` ←
  /// `model.layers.N.` — plus routed-expert stacks (`stacks`, each expert under `{container}.E.`): the reverse of
  /// such a mapping's `tensors`.
  ///
  /// - Throws: `.unknownGGUFTensor` for a tensor the map does not name.
  static func reading(
    _ tensors: [GGUFTensorInfo], globals: [String: String], block: [BlockTensor],
    stacks: [(gguf: String, projection: String)] = expertStackOrder, container: String = "mlp.experts"
  ) throws(GGUFMappingFailure) -> [GGUFStoredTensor] {
    let leaves = Dictionary(uniqueKeysWithValues: block.map { ($0.gguf, $0.huggingFace) })
    var stored: [GGUFStoredTensor] = []
    for tensor in tensors {
      if let hf = globals[tensor.name] {
        stored.append(GGUFStoredTensor(name: hf, shape: tensor.shape, layout: .whole(tensor.name)))
        continue
      }
      guard let (layer, leafText) = blockName(tensor.name) else { throw .unknownGGUFTensor(tensor.name) }
      let leaf = String(leafText)
      let hf = "model.layers.\(layer)."
      if let name = leaves[leaf] {
        stored.append(GGUFStoredTensor(name: hf + name, shape: tensor.shape, layout: .whole(tensor.name)))
      } else if let stack = stacks.first(where: { $0.gguf == leaf }) {
        stored += try experts(of: tensor, hf: hf, projection: stack.projection, container: container)
      } else {
        throw .unknownGGUFTensor(tensor.name)
      }
    }
    return stored
  }
}

/// The `{arch}.*` metadata of a GGUF being read back, with the error a missing key gets.
struct ArchitectureMetadata {
  let architecture: String
  let metadata: GGUFMetadata

  /// - Throws: `.unreadableArchitecture` unless the GGUF's `general.architecture` is `architecture`.
  init(_ metadata: GGUFMetadata, architecture: String) throws(GGUFMappingFailure) {
    guard metadata["general.architecture"]?.stringValue == architecture else {
      throw .unreadableArchitecture(metadata["general.architecture"]?.stringValue ?? "(none)")
    }
    self.architecture = architecture
    self.metadata = metadata
  }

  func int(_ key: String) -> Int? { metadata["\(architecture).\(key)"]?.integerValue.map { Int($0) } }
  func float(_ key: String) -> Float? { metadata["\(architecture).\(key)"]?.doubleValue.map { Float($0) } }
  func bool(_ key: String) -> Bool? { metadata["\(architecture).\(key)"]?.boolValue }

  /// The positive integer `{arch}.key`.
  func need(_ key: String) throws(GGUFMappingFailure) -> Int {
    guard let value = int(key), value > 0 else { throw .missingKey("\(architecture).\(key)") }
    return value
  }

  /// The float `{arch}.key` (or `value` when absent) as a JSON number.
  func number(_ key: String, default value: Double? = nil) throws(GGUFMappingFailure) -> JSONValue {
    guard let found = float(key).map(Double.init) ?? value, let number = JSONNumber(found) else {
      throw .missingKey("\(architecture).\(key)")
    }
    return .number(number)
  }

  /// `rope_scaling` of a YaRN GGUF (`rope.scaling.type` yarn): factor, original context, the betas; nil without
  /// YaRN. `truncate` is the family's (transformers' gpt-oss does not round the correction range; no key says it).
  func yarnScaling(truncate: Bool? = nil) -> JSONObject? {
    guard metadata["\(architecture).rope.scaling.type"]?.stringValue == "yarn", let factor = float("rope.scaling.factor") else { return nil }
    func number(_ value: Float) -> JSONValue { JSONNumber(Double(value)).map { .number($0) } ?? .null }
    var scaling = JSONObject()
    scaling["type"] = "yarn"
    scaling["factor"] = number(factor)
    if let original = int("rope.scaling.original_context_length") {
      scaling["original_max_position_embeddings"] = .number(JSONNumber(original))
    }
    if let fast = float("rope.scaling.yarn_beta_fast") { scaling["beta_fast"] = number(fast) }
    if let slow = float("rope.scaling.yarn_beta_slow") { scaling["beta_slow"] = number(slow) }
    if let truncate { scaling["truncate"] = .bool(truncate) }
    return scaling
  }

  /// The config.json fields a grouped-query architecture's GGUF gives back alike: `architectures`, `model_type`,
  /// the vocabulary, width, `layers` (default `block_count`), heads, key-value heads and head width, the RMS
  /// epsilon, RoPE base, context length, tied embeddings (no `output.weight`) and SiLU; each mapping adds its own.
  func groupedQueryConfig(
    architectures: [String], modelType: String, tensors: [GGUFTensorInfo], layers: Int? = nil
  ) throws(GGUFMappingFailure) -> JSONObject {
    func integer(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    let hidden = try need("embedding_length"), heads = try need("attention.head_count")
    var c = JSONObject()
    c["architectures"] = .array(architectures.map { .string($0) })
    c["model_type"] = .string(modelType)
    c["vocab_size"] = integer(try vocabulary(tensors))
    c["hidden_size"] = integer(hidden)
    let layerCount: Int
    if let layers { layerCount = layers } else { layerCount = try need("block_count") }
    c["num_hidden_layers"] = integer(layerCount)
    c["num_attention_heads"] = integer(heads)
    c["num_key_value_heads"] = integer(int("attention.head_count_kv") ?? heads)
    c["head_dim"] = integer(int("attention.key_length") ?? hidden / heads)
    c["rms_norm_eps"] = try number("attention.layer_norm_rms_epsilon")
    c["rope_theta"] = try number("rope.freq_base", default: 10_000)
    c["max_position_embeddings"] = integer(try need("context_length"))
    c["tie_word_embeddings"] = .bool(!tensors.contains { $0.name == "output.weight" })
    c["hidden_act"] = "silu"
    return c
  }

  /// `{arch}.vocab_size`, else the embedding's row count.
  func vocabulary(_ tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> Int {
    if let value = int("vocab_size") { return value }
    if let embedding = tensors.first(where: { $0.name == "token_embd.weight" }), embedding.dimensions.count == 2 {
      return embedding.dimensions[1]
    }
    throw .missingKey("\(architecture).vocab_size")
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

  /// GGUF tensor `gguf` = Hugging Face tensor `hf` of shape `expected`, same bytes (`ne` reversed, or `dimensions`
  /// where the converter squeezes a unit dimension), after `transform`.
  mutating func copy(
    _ gguf: String, _ hf: String, _ expected: [Int], dimensions: [Int]? = nil, transform: ElementTransform? = nil
  ) throws(GGUFMappingFailure) {
    try check(hf, expected)
    plan.append(GGUFTensorPlan(name: gguf, dimensions: dimensions ?? expected.reversed(), source: .tensor(hf), transform: transform))
  }

  /// Like `copy`, with the value heads along one axis moved by `reorder` (a plain copy when it moves nothing).
  mutating func copy(
    _ gguf: String, _ hf: String, _ expected: [Int], reorder: HeadReorder, dimensions: [Int]? = nil, transform: ElementTransform? = nil
  ) throws(GGUFMappingFailure) {
    try copy(gguf, hf, expected, dimensions: dimensions, transform: transform)
    if !reorder.isIdentity { plan[plan.count - 1].source = .tiledValueHeads(hf, reorder) }
  }

  /// The one-to-one tensors `names` of block `layer` (`blk.N.` ← `model.layers.N.`, or `hf`), each of its shape in
  /// `shapes` (by GGUF leaf); an optional one the checkpoint lacks is left out.
  mutating func copyBlock(
    _ layer: Int, _ names: [BlockTensor], shapes expected: [String: [Int]], from hf: String? = nil
  ) throws(GGUFMappingFailure) {
    let hf = hf ?? "model.layers.\(layer).", blk = "blk.\(layer)."
    for tensor in names where !tensor.optional || has(hf + tensor.huggingFace) {
      guard let shape = expected[tensor.gguf] else { preconditionFailure("no shape for \(tensor.gguf)") }
      try copy(blk + tensor.gguf, hf + tensor.huggingFace, shape, transform: tensor.transform)
    }
  }

  /// A layer's routed experts `{hf}{container}.E.{projection}.weight` stacked into `{blk}ffn_*_exps.weight`, in the
  /// order of `stacks` (`expertStackOrder`: `mlp.experts.E.{down,gate,up}_proj`): gate/up `[intermediate, hidden]`,
  /// down `[hidden, intermediate]` per expert.
  ///
  /// A layer stored fused, as transformers ≥ 5 saves it (`{hf}mlp.experts.gate_up_proj [E, 2·intermediate, hidden]`,
  /// gate rows first, and `down_proj [E, hidden, intermediate]`), is read from those two tensors instead.
  mutating func stackExperts(
    hf: String, blk: String, experts: Int, hidden: Int, intermediate: Int, container: String = "mlp.experts",
    stacks: [(gguf: String, projection: String)] = expertStackOrder
  ) throws(GGUFMappingFailure) {
    let fusedGateUp = hf + "\(container).gate_up_proj", fusedDown = hf + "\(container).down_proj"
    if has(fusedGateUp) {
      try check(fusedGateUp, [experts, 2 * intermediate, hidden])
      try check(fusedDown, [experts, hidden, intermediate])
      for (gguf, _) in stacks {
        let (name, offset, dimensions) =
          switch gguf {
          case "ffn_down_exps.weight": (fusedDown, 0, [intermediate, hidden, experts])
          case "ffn_gate_exps.weight": (fusedGateUp, 0, [hidden, intermediate, experts])
          default: (fusedGateUp, intermediate, [hidden, intermediate, experts])
          }
        plan.append(GGUFTensorPlan(name: blk + gguf, dimensions: dimensions, source: .fusedExperts(name, stride: 1, offset: offset, inputMajor: false)))
      }
      return
    }
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

  /// The NextN tensors of MTP block `layer`: `names` (GGUF leaf, Hugging Face name under `hf`; DeepSeek's and GLM's
  /// `nextnBlockNames` under `model.layers.N.` by default). The projection and the two input norms are required,
  /// and `alsoRequired`; the rest (its own embedding and shared head) are written when present, as llama.cpp loads
  /// them as optional. `normTransform` applies to the norms (Qwen3.5's `1 + w`).
  mutating func nextn(
    layer: Int, hidden: Int, vocabulary: Int, names: [(gguf: String, huggingFace: String)] = nextnBlockNames,
    from hf: String? = nil, alsoRequired: Set<String> = [], normTransform: ElementTransform? = nil
  ) throws(GGUFMappingFailure) {
    let expected: [String: [Int]] = [
      "nextn.eh_proj.weight": [hidden, 2 * hidden], "nextn.enorm.weight": [hidden], "nextn.hnorm.weight": [hidden],
      "nextn.embed_tokens.weight": [vocabulary, hidden], "nextn.shared_head_head.weight": [vocabulary, hidden],
      "nextn.shared_head_norm.weight": [hidden],
    ]
    let required = alsoRequired.union(["nextn.eh_proj.weight", "nextn.enorm.weight", "nextn.hnorm.weight"])
    let prefix = hf ?? "model.layers.\(layer)."
    for (gguf, name) in names where required.contains(gguf) || has(prefix + name) {
      guard let shape = expected[gguf] else { preconditionFailure("no shape for \(gguf)") }
      try copy("blk.\(layer)." + gguf, prefix + name, shape, transform: gguf.hasSuffix("norm.weight") ? normTransform : nil)
    }
  }

  /// `output.weight` from `lm_head.weight`, or, with tied embeddings, nothing: llama.cpp's loaders fall back to
  /// `token_embd.weight` when `output.weight` is absent, and the converters write none (the tied `lm_head`, if
  /// stored, is accounted for).
  mutating func outputHead(tied: Bool, vocabulary: Int, hidden: Int) throws(GGUFMappingFailure) {
    if tied {
      skip("lm_head.weight")
    } else {
      try copy("output.weight", "lm_head.weight", [vocabulary, hidden])
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
  mutating func array(_ key: String, _ value: GGUFArray) { metadata.replaceOrAppend("\(architecture).\(key)", .array(value)) }

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
    if let sections = config.mropeSection {
      // [time, height, width, extra], zero-padded to four.
      array("rope.dimension_sections", .int32((sections + [0, 0, 0, 0]).prefix(4).map { Int32(truncatingIfNeeded: $0) }))
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

/// What config.json fixes for the grouped-query-attention MoE architectures (gpt-oss, qwen3moe, glm4moe,
/// minimax-m2), checked once; each mapping's `Geometry` adds its own fields to it.
struct AttentionGeometry {
  var hidden: Int
  var layers: Int
  var heads: Int
  var kvHeads: Int
  var headDim: Int
  var vocabulary: Int
  var experts: Int
  var tiedEmbeddings: Bool

  /// - Parameters:
  ///   - experts, expertsField: the routed-expert count and the config field it comes from.
  ///   - architecture: the mapping's; the config's family must be it, and its experts must be SiLU (llama.cpp's
  ///     `LLM_FFN_SILU`) when `siluExperts`.
  init(_ config: ModelConfig, architecture: String, experts: Int?, expertsField: String, siluExperts: Bool = true)
    throws(GGUFMappingFailure)
  {
    try requireFamily(config, architecture: architecture)
    hidden = try positive(config.hiddenSize, "hidden_size")
    layers = try positive(config.numHiddenLayers, "num_hidden_layers")
    heads = try positive(config.numAttentionHeads, "num_attention_heads")
    kvHeads = try positive(config.numKeyValueHeads ?? config.numAttentionHeads, "num_key_value_heads")
    headDim = try positive(config.headDim ?? hidden / heads, "head_dim")
    vocabulary = try positive(config.vocabSize, "vocab_size")
    self.experts = try positive(experts, expertsField)
    _ = try positive(config.numExpertsPerTok, "num_experts_per_tok")
    tiedEmbeddings = config.tieWordEmbeddings ?? false
    if siluExperts, let act = config.hiddenAct, act != "silu" {
      throw .invalidField("hidden_act", reason: "is '\(act)'; llama.cpp's \(architecture) computes SiLU experts")
    }
  }

  /// Query and key/value widths.
  var queryWidth: Int { heads * headDim }
  var keyValueWidth: Int { kvHeads * headDim }

  /// The Hugging Face shapes of the attention, norm and router tensors by GGUF leaf (biases and QK-norms for
  /// the architectures that have them; a mapping overrides what differs).
  var blockShapes: [String: [Int]] {
    let q = queryWidth, kv = keyValueWidth
    return [
      "attn_norm.weight": [hidden], "attn_q.weight": [q, hidden], "attn_q.bias": [q], "attn_k.weight": [kv, hidden],
      "attn_k.bias": [kv], "attn_v.weight": [kv, hidden], "attn_v.bias": [kv], "attn_output.weight": [hidden, q],
      "attn_output.bias": [hidden], "attn_q_norm.weight": [headDim], "attn_k_norm.weight": [headDim],
      "attn_sinks.weight": [heads], "ffn_norm.weight": [hidden], "post_attention_norm.weight": [hidden],
      "ffn_gate_inp.weight": [experts, hidden], "ffn_gate_inp.bias": [experts], "exp_probs_b.bias": [experts],
    ]
  }

  /// `TextModel.set_gguf_parameters`'s keys for this geometry (`blockCount` defaults to the trunk's layers;
  /// `headDim` is the config's own `head_dim`, written only when present, as the converter does).
  func keys(
    _ config: ModelConfig, architecture: String, blockCount: Int? = nil, feedForward: Int?, rmsEpsilon: Double,
    fileType: LlamaFileType?
  ) throws(GGUFMappingFailure) -> ArchitectureKeys {
    var m = ArchitectureKeys(architecture)
    try m.textModel(
      config, blockCount: blockCount ?? layers, hidden: hidden, feedForward: feedForward, heads: heads, kvHeads: kvHeads,
      experts: experts, headDim: config.headDim, rmsEpsilon: rmsEpsilon, fileType: fileType)
    return m
  }

  /// What llama-quantize's type rules read of it.
  func quantizeModel(architecture: String, blockCount: Int? = nil) -> LlamaQuantize.Model {
    LlamaQuantize.Model(architecture: architecture, expertCount: experts, headCount: heads, headCountKV: kvHeads, blockCount: blockCount ?? layers)
  }
}

/// One one-to-one tensor of a decoder block: its GGUF leaf under `blk.N.`, its Hugging Face name under
/// `model.layers.N.`, and whether it is written only when the checkpoint has it (llama.cpp loads it as optional).
struct BlockTensor: Sendable {
  let gguf: String
  let huggingFace: String
  let optional: Bool
  /// The converter's arithmetic on its values (Qwen3.5's norms: `+ 1`).
  var transform: ElementTransform?

  init(_ gguf: String, _ huggingFace: String, optional: Bool = false, transform: ElementTransform? = nil) {
    self.gguf = gguf
    self.huggingFace = huggingFace
    self.optional = optional
    self.transform = transform
  }
}

extension BlockTensor {
  /// Whether a block's q/k/v projections carry biases.
  enum Biases { case none, whenPresent, always }

  /// `input_layernorm` and the q/k/v/o projections, named alike by every grouped-query architecture, with
  /// `biases` on q/k/v.
  static func attention(biases: Biases) -> [BlockTensor] {
    var tensors = [BlockTensor("attn_norm.weight", "input_layernorm.weight")]
    for (gguf, hf) in [("attn_q", "q_proj"), ("attn_k", "k_proj"), ("attn_v", "v_proj")] {
      tensors.append(BlockTensor("\(gguf).weight", "self_attn.\(hf).weight"))
      if biases != .none { tensors.append(BlockTensor("\(gguf).bias", "self_attn.\(hf).bias", optional: biases == .whenPresent)) }
    }
    tensors.append(BlockTensor("attn_output.weight", "self_attn.o_proj.weight"))
    return tensors
  }

  /// The per-head (or, for minimax-m2, all-head) QK-norms.
  static func queryKeyNorms(optional: Bool = false) -> [BlockTensor] {
    [
      BlockTensor("attn_q_norm.weight", "self_attn.q_norm.weight", optional: optional),
      BlockTensor("attn_k_norm.weight", "self_attn.k_norm.weight", optional: optional),
    ]
  }
}

/// Throws `.unsupportedArchitecture` unless `config`'s family is llama.cpp's `architecture`.
func requireFamily(_ config: ModelConfig, architecture: String) throws(GGUFMappingFailure) {
  guard ModelFamily.detect(config).ggufArchitecture == architecture else {
    throw .unsupportedArchitecture(found: config.architectures)
  }
}

/// The positive integer `field` of config.json.
func positive(_ value: Int?, _ field: String) throws(GGUFMappingFailure) -> Int {
  guard let value else { throw .missingField(field) }
  guard value > 0 else { throw .invalidField(field, reason: "is \(value), must be positive") }
  return value
}
