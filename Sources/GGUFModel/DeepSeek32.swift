import Checkpoint
import GGUF
import JSON

/// DeepSeek-V3.2 (V3.2-Exp, V3.2, V3.2-Speciale) as llama.cpp's `deepseek32` architecture, as `conversion/deepseek.py`
/// `DeepseekV32Model` (a `DeepseekV2Model`) writes it and `src/models/deepseek32.cpp` loads it: deepseek2's MLA
/// layout and keys (`DeepSeek2`, under the `deepseek32.` prefix) plus the lightning indexer of DeepSeek Sparse
/// Attention in every block — `indexer.attn_q_b` (`wq_b`), `indexer.attn_k` (`wk`), `indexer.k_norm` (LayerNorm
/// weight and bias), `indexer.proj` (`weights_proj`) — and its three keys (head count, key length, top-k).
public enum DeepSeek32: GGUFArchitectureMapping {
  public static let architecture = "deepseek32"
  /// V3.2 ships DeepSeek-V3's tokenizer.
  public static let preTokenizer = DeepSeek2.preTokenizer

  /// The indexer's dimensions (`index_n_heads`, `index_head_dim`, `index_topk`).
  struct Indexer {
    var heads: Int
    var headDim: Int
    var topK: Int

    init(_ config: ModelConfig) throws(GGUFMappingFailure) {
      heads = try DeepSeek32.positive(config.indexNHeads, "index_n_heads")
      headDim = try DeepSeek32.positive(config.indexHeadDim, "index_head_dim")
      topK = try DeepSeek32.positive(config.indexTopk, "index_topk")
      let rope = try DeepSeek32.positive(config.qkRopeHeadDim, "qk_rope_head_dim")
      // deepseek32.cpp: the indexer head is [rope | nope], so the rotary part must fit.
      guard rope <= headDim else {
        throw .invalidField("index_head_dim", reason: "is \(headDim), less than qk_rope_head_dim \(rope); llama.cpp's indexer head holds the rotary part")
      }
    }
  }

  /// `DeepseekV2Model.set_gguf_parameters`, then `DeepseekV32Model`'s NextN count and indexer keys.
  public static func hyperparameters(
    _ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions(), fileType: LlamaFileType? = nil
  ) throws(GGUFMappingFailure) -> GGUFMetadata {
    var m = try DeepSeek2.keys(config, options: options, fileType: fileType, architecture: architecture)
    // DeepseekV32Model writes the config's count whenever it has one, 0 included (deepseek2's keys only a positive one).
    if options.keepMTP, let layers = config.numNextnPredictLayers { m.u32("nextn_predict_layers", max(0, layers)) }
    let indexer = try Indexer(config)
    m.u32("attention.indexer.head_count", indexer.heads)
    m.u32("attention.indexer.key_length", indexer.headDim)
    m.u32("attention.indexer.top_k", indexer.topK)
    return m.metadata
  }

  public static func quantizeModel(_ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions())
    throws(GGUFMappingFailure) -> LlamaQuantize.Model
  {
    try DeepSeek2.quantizeModel(config, options: options, architecture: architecture)
  }

  /// deepseek2's tensors, and in each block the indexer's (it needs `q_lora_rank`: `wq_b` reads the query latent).
  public static func tensors(
    _ config: ModelConfig, shapes: [String: [Int]], options: GGUFMappingOptions = GGUFMappingOptions()
  ) throws(GGUFMappingFailure) -> [GGUFTensorPlan] {
    let indexer = try Indexer(config)
    let hidden = try positive(config.hiddenSize, "hidden_size")
    let qLoraRank = try positive(config.qLoraRank, "q_lora_rank")
    let expected: [String: [Int]] = [
      "indexer.attn_q_b.weight": [indexer.heads * indexer.headDim, qLoraRank], "indexer.attn_k.weight": [indexer.headDim, hidden],
      "indexer.k_norm.weight": [indexer.headDim], "indexer.k_norm.bias": [indexer.headDim],
      "indexer.proj.weight": [indexer.heads, hidden],
    ]
    return try DeepSeek2.tensors(config, shapes: shapes, options: options, architecture: architecture) {
      layer, b throws(GGUFMappingFailure) in
      for (gguf, hf) in indexerNames {
        try b.copy("blk.\(layer)." + gguf, "model.layers.\(layer)." + hf, expected[gguf]!)
      }
    }
  }

  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    DeepSeek2.converterOrder(plan, sourceOrder: sourceOrder)
  }

  // MARK: reading a GGUF

  /// The indexer's tensors: GGUF leaf under `blk.N.` → Hugging Face name under `model.layers.N.` (as `tensors` maps them).
  static let indexerNames: [(gguf: String, huggingFace: String)] = [
    ("indexer.attn_q_b.weight", "self_attn.indexer.wq_b.weight"), ("indexer.attn_k.weight", "self_attn.indexer.wk.weight"),
    ("indexer.k_norm.weight", "self_attn.indexer.k_norm.weight"), ("indexer.k_norm.bias", "self_attn.indexer.k_norm.bias"),
    ("indexer.proj.weight", "self_attn.indexer.weights_proj.weight"),
  ]

  /// deepseek2's reverse map, and each block's indexer.
  public static func storedTensors(_ tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> [GGUFStoredTensor] {
    try DeepSeek2.storedTensors(tensors, extraBlockNames: Dictionary(uniqueKeysWithValues: indexerNames.map { ($0.gguf, $0.huggingFace) }))
  }

  /// deepseek2's rebuilt config.json as `DeepseekV32ForCausalLM`, with the indexer's sizes.
  public static func huggingFaceConfig(_ metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> JSONObject {
    var c = try DeepSeek2.huggingFaceConfig(metadata, tensors: tensors, architecture: architecture)
    let m = try ArchitectureMetadata(metadata, architecture: architecture)
    c["architectures"] = ["DeepseekV32ForCausalLM"]
    c["model_type"] = "deepseek_v32"
    c["index_n_heads"] = .number(JSONNumber(try m.need("attention.indexer.head_count")))
    c["index_head_dim"] = .number(JSONNumber(try m.need("attention.indexer.key_length")))
    c["index_topk"] = .number(JSONNumber(try m.need("attention.indexer.top_k")))
    return c
  }
}
