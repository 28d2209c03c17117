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
        guard types == GptOss.layerTypes(attention.layers) else {
          throw .invalidField(
            "layer_types", reason: "is \(types); llama.cpp's gpt-oss alternates sliding_attention and full_attention from layer 0")
        }
      }
    }
  }

  /// The `layer_types` llama.cpp's gpt-oss computes: sliding and full attention alternating from layer 0.
  static func layerTypes(_ layers: Int) -> [String] {
    (0..<layers).map { $0 % 2 == 0 ? "sliding_attention" : "full_attention" }
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

  /// A block's fused expert tensor (under `model.layers.N.`) and the GGUF stacks (under `blk.N.`) it is split
  /// into: stack `s` of `k` takes every `k`-th row from row `s` (gate = even rows, up = odd rows).
  struct FusedExperts: Sendable {
    var huggingFace: String
    var gguf: [String]
    /// `gate_up_proj` (`2I` rows of `H`), else `down_proj` (`H` rows of `I`).
    var isGateUp: Bool
    var isBias: Bool

    /// One expert's rows and columns (the columns of a bias are its one row's entries: none).
    func geometry(hidden: Int, intermediate: Int) -> (rows: Int, columns: Int?) {
      let (rows, columns) = isGateUp ? (2 * intermediate, hidden) : (hidden, intermediate)
      return (rows, isBias ? nil : columns)
    }
  }

  /// The converter's split (`GptOssModel.generate_extra_tensors` / `modify_tensors`), in the order it writes them.
  static let fusedExperts = [
    FusedExperts(huggingFace: gateUp, gguf: ["ffn_gate_exps.weight", "ffn_up_exps.weight"], isGateUp: true, isBias: false),
    FusedExperts(huggingFace: down, gguf: ["ffn_down_exps.weight"], isGateUp: false, isBias: false),
    FusedExperts(huggingFace: gateUp + "_bias", gguf: ["ffn_gate_exps.bias", "ffn_up_exps.bias"], isGateUp: true, isBias: true),
    FusedExperts(huggingFace: down + "_bias", gguf: ["ffn_down_exps.bias"], isGateUp: false, isBias: true),
  ]

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
      for fused in fusedExperts {
        let (rows, columns) = fused.geometry(hidden: a.hidden, intermediate: ff)
        try b.check(hf + fused.huggingFace, [a.experts, rows] + (columns.map { [$0] } ?? []))
        for (offset, leaf) in fused.gguf.enumerated() {
          experts(blk + leaf, hf + fused.huggingFace, rows: rows, columns: columns, stride: fused.gguf.count, offset: offset)
        }
      }
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

  /// The Hugging Face tensors of a gpt-oss GGUF: the one-to-one ones by name, and per block the four fused expert
  /// tensors, each rebuilt from its stacks (`fusedExperts`), whose dimensions must agree with one another.
  ///
  /// - Throws: `.unknownGGUFTensor` for a name the map does not know, `.inconsistentGGUFTensor` for a missing stack
  ///   or stacks whose dimensions disagree (or are empty).
  public static func storedTensors(_ tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> [GGUFStoredTensor] {
    let stackLeaves = Set(fusedExperts.flatMap(\.gguf))
    var stacksByLayer: [Substring: [Substring: GGUFTensorInfo]] = [:]
    var layerOrder: [Substring] = []
    var others: [GGUFTensorInfo] = []
    for tensor in tensors {
      guard let (layer, leaf) = blockName(tensor.name), stackLeaves.contains(String(leaf)) else {
        others.append(tensor)
        continue
      }
      if stacksByLayer[layer] == nil { layerOrder.append(layer) }
      stacksByLayer[layer, default: [:]][leaf] = tensor
    }
    var stored = try GGUFStoredTensor.reading(others, globals: standardGlobalTensors, block: blockTensors, stacks: [])
    for layer in layerOrder {
      let stacks = stacksByLayer[layer]!
      // The gate stack fixes the block's widths (ne = [H, I, E]); every stack must match them.
      let gateName = "blk.\(layer).\(fusedExperts[0].gguf[0])"
      guard let gate = stacks[Substring(fusedExperts[0].gguf[0])] else {
        throw .inconsistentGGUFTensor(stacks.values.first!.name, reason: "its block has no '\(gateName)'")
      }
      guard gate.dimensions.count == 3, gate.dimensions.allSatisfy({ $0 > 0 }) else {
        throw .inconsistentGGUFTensor(gate.name, reason: "expert stacks need dimensions [H, I, E], it has \(gate.dimensions)")
      }
      let (hidden, intermediate, experts) = (gate.dimensions[0], gate.dimensions[1], gate.dimensions[2])
      guard intermediate < Int.max / 4 else { throw .inconsistentGGUFTensor(gate.name, reason: "has dimensions \(gate.dimensions)") }
      for fused in fusedExperts {
        let (rows, columns) = fused.geometry(hidden: hidden, intermediate: intermediate)
        let k = fused.gguf.count
        let expected = (columns.map { [$0] } ?? []) + [rows / k, experts]
        var sources: [String] = []
        for leaf in fused.gguf {
          let name = "blk.\(layer).\(leaf)"
          guard let stack = stacks[Substring(leaf)] else { throw .inconsistentGGUFTensor(gateName, reason: "its partner '\(name)' is missing") }
          guard stack.dimensions == expected else {
            throw .inconsistentGGUFTensor(name, reason: "has dimensions \(stack.dimensions); \(gateName) \(gate.dimensions) implies \(expected)")
          }
          sources.append(name)
        }
        // Input-major, as gpt-oss's plain checkpoints: [E, in, out] for weights, [E, out] for biases.
        let shape = [experts] + (columns.map { [$0] } ?? []) + [rows]
        var byteCount = 4
        for extent in shape {
          let (product, overflow) = byteCount.multipliedReportingOverflow(by: extent)
          guard !overflow else { throw .inconsistentGGUFTensor(sources[0], reason: "the F32 tensor \(shape) rebuilt from it is too large") }
          byteCount = product
        }
        stored.append(GGUFStoredTensor(name: "model.layers.\(layer).\(fused.huggingFace)", shape: shape, layout: .fusedExperts(sources, count: experts)))
      }
    }
    return stored
  }

  /// The `config.json` of the model a gpt-oss GGUF holds (the release schema): the inverse of `hyperparameters`,
  /// with the SwiGLU clamp and the alternating sliding-window layers llama.cpp's gpt-oss computes with, and YaRN
  /// as gpt-oss's own config gives it (`truncate: false`, which no GGUF key records).
  public static func huggingFaceConfig(_ metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) throws(GGUFMappingFailure) -> JSONObject {
    let m = try ArchitectureMetadata(metadata, architecture: architecture)
    func integer(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    var c = try m.groupedQueryConfig(architectures: ["GptOssForCausalLM"], modelType: "gpt_oss", tensors: tensors)
    // Each block has tensors: a block count past the tensor count is a malformed file, not a list to allocate.
    let layers = try m.need("block_count")
    guard layers <= tensors.count else { throw .missingKey("\(architecture).block_count (\(layers) blocks for \(tensors.count) tensors)") }
    c["intermediate_size"] = integer(try m.need("expert_feed_forward_length"))
    c["num_local_experts"] = integer(try m.need("expert_count"))
    c["num_experts_per_tok"] = integer(try m.need("expert_used_count"))
    c["sliding_window"] = integer(try m.need("attention.sliding_window"))
    c["layer_types"] = .array(layerTypes(layers).map { .string($0) })
    c["attention_bias"] = .bool(tensors.contains { $0.name == "blk.0.attn_q.bias" })
    c["swiglu_limit"] = .number(JSONNumber(swigluLimit)!)
    if let scaling = m.yarnScaling(truncate: false) { c["rope_scaling"] = .object(scaling) }
    return c
  }
}
