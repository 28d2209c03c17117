import Checkpoint
import GGUF
import JSON

/// OpenAI's gpt-oss as llama.cpp's `gpt-oss` architecture (`LLM_ARCH_OPENAI_MOE`), in the layout llama.cpp's
/// converter writes (`conversion/gpt_oss.py` `GptOssModel`) and its loader reads (`src/models/openai-moe.cpp`).
///
/// The fused experts are split: `gate_up_proj` interleaves gate and up rows (gate = rows 0, 2, 4, ...), so
/// `ffn_gate_exps` / `ffn_up_exps` take every other row of it, and `gate_up_proj_bias` every other entry; the
/// MXFP4 blocks move into ggml's MXFP4 unchanged where the chosen type is MXFP4 (the runner's repack; the
/// converter's `repack_mxfp4`). Attention has biases and per-head sinks (`attn_sinks.weight`); the router has
/// a bias. The traps: llama.cpp hard-codes the clamped SwiGLU (alpha 1.702, limit 7) and alternates sliding
/// and full attention from layer 0 (`load_swa_pattern(ml, 2)`), so a config asking for anything else is
/// refused rather than written as a GGUF that computes something else; its `output.weight` is required, so
/// tied embeddings are written twice.
///
/// Read back (`validate`, `forward`), the expert stacks become the fused tensors again in the layout of gpt-oss's
/// plain BF16 checkpoints (input-major `[E, H, 2I]`, `[E, I, H]`), rebuilt in F32 one expert at a time.
public enum GptOss: GGUFArchitectureMapping {
  public static let architecture = "gpt-oss"
  /// llama.cpp's pre-tokenizer for the o200k_harmony vocabulary gpt-oss ships.
  public static let preTokenizer = "gpt-4o"

  /// The SwiGLU constants llama.cpp's `LLM_FFN_SWIGLU_OAI_MOE` uses (llama-graph.cpp).
  static let swigluAlpha = 1.702
  static let swigluLimit = 7.0

  /// The dimensions config.json fixes, checked once.
  struct Geometry {
    var attention: AttentionGeometry
    var intermediate: Int
    var slidingWindow: Int

    init(_ config: ModelConfig) throws(GGUFMappingFailure) {
      // The experts' clamped SwiGLU is checked below, not as SiLU.
      attention = try AttentionGeometry(
        config, architecture: GptOss.architecture, experts: config.numLocalExperts ?? config.routedExpertCount,
        expertsField: "num_local_experts", siluExperts: false)
      intermediate = try positive(config.intermediateSize, "intermediate_size")
      slidingWindow = try positive(config.slidingWindow, "sliding_window")
      if let limit = config.swigluLimit, limit != GptOss.swigluLimit {
        throw .invalidField("swiglu_limit", reason: "is \(limit); llama.cpp's gpt-oss computes with \(GptOss.swigluLimit)")
      }
      if let alpha = config.swigluAlpha, alpha != GptOss.swigluAlpha {
        throw .invalidField("swiglu_alpha", reason: "is \(alpha); llama.cpp's gpt-oss computes with \(GptOss.swigluAlpha)")
      }
      if let types = config.layerTypes {
        let alternating = (0..<attention.layers).map { $0 % 2 == 0 ? "sliding_attention" : "full_attention" }
        guard types == alternating else {
          throw .invalidField(
            "layer_types", reason: "is \(types); llama.cpp's gpt-oss alternates sliding_attention and full_attention from layer 0")
        }
      }
    }
  }

  // MARK: metadata

  /// `general.architecture` and the `gpt-oss.*` pairs in convert_hf_to_gguf.py's order
  /// (`TextModel.set_gguf_parameters`, then `GptOssModel`'s sliding window and expert width).
  public static func hyperparameters(
    _ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions(), fileType: LlamaFileType? = nil
  ) throws(GGUFMappingFailure) -> GGUFMetadata {
    let g = try Geometry(config)
    var m = try g.attention.keys(config, architecture: architecture, feedForward: g.intermediate, rmsEpsilon: 1e-5, fileType: fileType)
    m.u32("attention.sliding_window", g.slidingWindow)
    m.u32("expert_feed_forward_length", g.intermediate)
    return m.metadata
  }

  public static func quantizeModel(_ config: ModelConfig, options: GGUFMappingOptions = GGUFMappingOptions())
    throws(GGUFMappingFailure) -> LlamaQuantize.Model
  {
    try Geometry(config).attention.quantizeModel(architecture: architecture)
  }

  // MARK: tensor names

  /// One-to-one tensors of a decoder block.
  static let blockTensors: [BlockTensor] =
    BlockTensor.attention(biases: .always) + [
      BlockTensor("attn_output.bias", "self_attn.o_proj.bias"), BlockTensor("attn_sinks.weight", "self_attn.sinks"),
      BlockTensor("post_attention_norm.weight", "post_attention_layernorm.weight"),
      BlockTensor("ffn_gate_inp.weight", "mlp.router.weight"), BlockTensor("ffn_gate_inp.bias", "mlp.router.bias"),
    ]
  static let gateUp = "mlp.experts.gate_up_proj"
  static let down = "mlp.experts.down_proj"

  /// Every GGUF tensor, from the checkpoint's logical weight shapes. Fused experts are read `[E, out, in]`
  /// (`gate_up_proj [E, 2I, H]`, `down_proj [E, H, I]`; the caller flags a source decoded input-major).
  ///
  /// - Throws: `GGUFMappingFailure` for a missing tensor, a shape config.json contradicts, or a tensor with no
  ///   GGUF name.
  public static func tensors(
    _ config: ModelConfig, shapes: [String: [Int]], options: GGUFMappingOptions = GGUFMappingOptions()
  ) throws(GGUFMappingFailure) -> [GGUFTensorPlan] {
    let g = try Geometry(config)
    let a = g.attention
    var b = TensorPlanBuilder(shapes: shapes)
    /// `ne = [C, M / stride, E]` from every `stride`-th row (or bias entry) of each expert.
    func experts(_ gguf: String, _ hf: String, rows: Int, columns: Int?, stride: Int, offset: Int) {
      let dimensions = (columns.map { [$0] } ?? []) + [rows / stride, a.experts]
      b.append(GGUFTensorPlan(name: gguf, dimensions: dimensions, source: .fusedExperts(hf, stride: stride, offset: offset, inputMajor: false)))
    }

    let ff = g.intermediate
    try b.copy("token_embd.weight", "model.embed_tokens.weight", [a.vocabulary, a.hidden])
    for layer in 0..<a.layers {
      let hf = "model.layers.\(layer)."
      let blk = "blk.\(layer)."
      try b.copyBlock(layer, blockTensors, shapes: a.blockShapes)
      // GptOssModel.generate_extra_tensors / modify_tensors: gate = even rows, up = odd rows.
      try b.check(hf + gateUp, [a.experts, 2 * ff, a.hidden])
      try b.check(hf + gateUp + "_bias", [a.experts, 2 * ff])
      try b.check(hf + down, [a.experts, a.hidden, ff])
      try b.check(hf + down + "_bias", [a.experts, a.hidden])
      experts(blk + "ffn_gate_exps.weight", hf + gateUp, rows: 2 * ff, columns: a.hidden, stride: 2, offset: 0)
      experts(blk + "ffn_up_exps.weight", hf + gateUp, rows: 2 * ff, columns: a.hidden, stride: 2, offset: 1)
      experts(blk + "ffn_down_exps.weight", hf + down, rows: a.hidden, columns: ff, stride: 1, offset: 0)
      experts(blk + "ffn_gate_exps.bias", hf + gateUp + "_bias", rows: 2 * ff, columns: nil, stride: 2, offset: 0)
      experts(blk + "ffn_up_exps.bias", hf + gateUp + "_bias", rows: 2 * ff, columns: nil, stride: 2, offset: 1)
      experts(blk + "ffn_down_exps.bias", hf + down + "_bias", rows: a.hidden, columns: nil, stride: 1, offset: 0)
    }
    try b.copy("output_norm.weight", "model.norm.weight", [a.hidden])
    if a.tiedEmbeddings, !b.has("lm_head.weight") {
      // openai-moe.cpp requires output.weight: the tied head is the embedding.
      b.append(GGUFTensorPlan(name: "output.weight", dimensions: [a.hidden, a.vocabulary], source: .tensor("model.embed_tokens.weight")))
    } else {
      try b.copy("output.weight", "lm_head.weight", [a.vocabulary, a.hidden])
    }
    return try b.finish()
  }

  /// The checkpoint's order: the converter writes each tensor when it reads it, the halves of a fused expert
  /// tensor where it is (its MXFP4 experts are written first, from `generate_extra_tensors`; the order of a
  /// GGUF's tensors does not change what llama.cpp loads).
  public static func converterOrder(_ plan: [GGUFTensorPlan], sourceOrder: [String]) -> [GGUFTensorPlan] {
    sourceOrdered(plan, sourceOrder: sourceOrder)
  }

  // MARK: reading back

  /// The fused expert tensors of a block (under `model.layers.N.`) and the GGUF stacks (under `blk.N.`) each is
  /// rebuilt from: gate and up interleaved again.
  static let fusedExpertSources: [(huggingFace: String, gguf: [String])] = [
    (gateUp, ["ffn_gate_exps.weight", "ffn_up_exps.weight"]),
    (gateUp + "_bias", ["ffn_gate_exps.bias", "ffn_up_exps.bias"]),
    (down, ["ffn_down_exps.weight"]),
    (down + "_bias", ["ffn_down_exps.bias"]),
  ]

  /// The Hugging Face tensors of a gpt-oss GGUF: the one-to-one ones by name, and per block the four fused expert
  /// tensors, each rebuilt from its stacks (which must agree in shape).
  ///
  /// - Throws: `.unknownGGUFTensor` for a name the map does not know, `.inconsistentGGUFTensor` for stacks of
  ///   different shapes or a missing partner.
  public static func storedTensors(_ tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> [GGUFStoredTensor] {
    let stackLeaves = Set(fusedExpertSources.flatMap(\.gguf))
    var stacksByLayer: [Int: [String: GGUFTensorInfo]] = [:]
    var others: [GGUFTensorInfo] = []
    for tensor in tensors {
      if let (layer, leaf) = blockLeaf(of: tensor.name), stackLeaves.contains(leaf) {
        stacksByLayer[layer, default: [:]][leaf] = tensor
      } else {
        others.append(tensor)
      }
    }
    var stored = try GGUFStoredTensor.reading(others, globals: standardGlobalTensors, block: blockTensors, stacks: [])
    for layer in stacksByLayer.keys.sorted() {
      let stacks = stacksByLayer[layer]!
      for (huggingFace, sources) in fusedExpertSources {
        let infos = sources.compactMap { stacks[$0] }
        guard infos.count == sources.count, let first = infos.first else {
          let present = infos.first?.name ?? "blk.\(layer).\(stacks.keys.sorted()[0])"
          throw .inconsistentGGUFTensor(present, reason: "its partner stacks \(sources.map { "blk.\(layer).\($0)" }) are not all present")
        }
        guard infos.allSatisfy({ $0.dimensions == first.dimensions }), (2...3).contains(first.dimensions.count) else {
          throw .inconsistentGGUFTensor(first.name, reason: "the stacks \(infos.map(\.name)) have dimensions \(infos.map(\.dimensions))")
        }
        let d = first.dimensions
        let k = sources.count
        // [E, in, k·rows] for weights (ne = [in, rows, E]), [E, k·rows] for biases (ne = [rows, E]).
        let shape = d.count == 3 ? [d[2], d[0], k * d[1]] : [d[1], k * d[0]]
        stored.append(
          GGUFStoredTensor(name: "model.layers.\(layer).\(huggingFace)", shape: shape, layout: .fusedExperts(infos.map(\.name), count: shape[0])))
      }
    }
    return stored
  }

  /// `(N, leaf)` of a `blk.N.leaf` name.
  private static func blockLeaf(of name: String) -> (Int, String)? {
    guard name.hasPrefix("blk."), let dot = name.dropFirst(4).firstIndex(of: "."), let layer = Int(name[name.index(name.startIndex, offsetBy: 4)..<dot])
    else { return nil }
    return (layer, String(name[name.index(after: dot)...]))
  }

  /// The `config.json` of the model a gpt-oss GGUF holds (the release schema): the inverse of `hyperparameters`,
  /// with the SwiGLU clamp and the alternating sliding-window layers llama.cpp's gpt-oss computes with, and YaRN
  /// as gpt-oss's own config gives it (`truncate: false`, which no GGUF key records).
  public static func huggingFaceConfig(_ metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> JSONObject {
    let m = try ArchitectureMetadata(metadata, architecture: architecture)
    func integer(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    var c = try m.groupedQueryConfig(architectures: ["GptOssForCausalLM"], modelType: "gpt_oss", tensors: tensors)
    let layers = try m.need("block_count")
    c["intermediate_size"] = integer(try m.need("expert_feed_forward_length"))
    c["num_local_experts"] = integer(try m.need("expert_count"))
    c["num_experts_per_tok"] = integer(try m.need("expert_used_count"))
    c["sliding_window"] = integer(try m.need("attention.sliding_window"))
    c["layer_types"] = .array((0..<layers).map { .string($0 % 2 == 0 ? "sliding_attention" : "full_attention") })
    c["attention_bias"] = .bool(tensors.contains { $0.name == "blk.0.attn_q.bias" })
    c["swiglu_limit"] = .number(JSONNumber(swigluLimit)!)
    if let scaling = m.yarnScaling(truncate: false) { c["rope_scaling"] = .object(scaling) }
    return c
  }
}
