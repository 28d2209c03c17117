import Checkpoint

// OpenAI gpt-oss (20b, 120b), as transformers' `gpt_oss` computes it:
//
//   x = input_layernorm(h)
//   q, k, v = q_proj(x) + b_q, k_proj(x) + b_k, v_proj(x) + b_v
//   q, k = rope(q), rope(k)                   rotate-half over the whole head; YaRN (truncate: false) in the release
//   p = softmax([q·kᵀ / sqrt(head_dim), sink_h])   the sink logit of each head joins the softmax, its
//                                                   probability is dropped; sliding_attention layers see only the
//                                                   last sliding_window keys
//   h += o_proj(p · v) + b_o
//   x = post_attention_layernorm(h)
//   l = router(x) + b_router;  pick the top num_experts_per_tok of l;  w = softmax over those k logits
//   h += Σ_k w_k · expert_k(x)
//        expert: gate_up = x · W_gu + b_gu (gate = even rows, up = odd rows), gate = min(gate, limit),
//                up = clamp(up, −limit, limit), down((up + 1) · gate · sigmoid(alpha · gate)) + b_down
//
// The experts are fused: `mlp.experts.gate_up_proj` `[E, 2I, H]` and `down_proj` `[E, H, I]` as the MXFP4 release
// stores them (output-major), `[E, H, 2I]` / `[E, I, H]` in plain BF16 (input-major, transformers' layout).

extension ReferenceModel {
  /// One gpt-oss decoder layer on `hidden`, in place; returns the MoE routing.
  func applyGptOssLayer(
    _ layer: Int, attention: GroupedQueryAttentionConfiguration, to hidden: inout HiddenStates
  ) throws -> LayerRouting? {
    try applyGroupedQueryAttention(layer, attention: attention, to: &hidden)

    let c = configuration
    guard let moe = c.mixtureOfExperts else { return nil }
    let D = c.hiddenSize, N = hidden.batchSize * hidden.sequenceLength, E = moe.routedExpertCount
    let names = FeedForwardNames.gptOss
    let norm = try vector(WeightNames.layer(layer, "post_attention_layernorm.weight"), D)
    let normed = rmsNorm(hidden.values, weight: norm, rowCount: N, width: D, epsilon: c.rmsNormEpsilon)
    let routerName = WeightNames.layer(layer, names.router)
    linearInputObserver?(routerName, normed, N)
    let (output, decisions) = try mixtureOfExperts(
      normed, routerWeight: try matrix(routerName, E, D),
      bias: [Float](repeating: 0, count: E), configuration: moe, rowCount: N, hiddenSize: D,
      logitBias: try vector(WeightNames.layer(layer, names.routerBias), E),
      expert: { e in try loadFusedExpert(layer, e) }, shared: nil)
    hidden.values = add(hidden.values, output)
    return LayerRouting(layer: layer, decisions: decisions)
  }

  /// Routed expert `e` of `layer` from the fused tensors, as gate `[I, H]`, up `[I, H]`, down `[H, I]` with biases.
  private func loadFusedExpert(_ layer: Int, _ e: Int) throws -> SwiGLUWeights {
    guard let moe = configuration.mixtureOfExperts else { throw ReferenceModelError.missingWeight(name: "mlp.experts") }
    let D = configuration.hiddenSize, I = moe.expertIntermediateSize, E = moe.routedExpertCount
    let gateUp = try fusedExpertMatrix(WeightNames.layer(layer, "mlp.experts.gate_up_proj"), e, E, rows: 2 * I, columns: D)
    let down = try fusedExpertMatrix(WeightNames.layer(layer, "mlp.experts.down_proj"), e, E, rows: D, columns: I)
    let gateUpBias = try expertRow(WeightNames.layer(layer, "mlp.experts.gate_up_proj_bias"), e, E, 2 * I)
    // Interleaved: gate rows 0, 2, 4, ...; up rows 1, 3, 5, ...
    var gate = [Float](repeating: 0, count: I * D), up = [Float](repeating: 0, count: I * D)
    for j in 0..<I {
      for d in 0..<D {
        gate[j * D + d] = gateUp[(2 * j) * D + d]
        up[j * D + d] = gateUp[(2 * j + 1) * D + d]
      }
    }
    return SwiGLUWeights(
      gate: LinearWeight(float32: gate, outputCount: I, inputCount: D),
      up: LinearWeight(float32: up, outputCount: I, inputCount: D),
      down: LinearWeight(float32: down, outputCount: D, inputCount: I), intermediateSize: I,
      gateBias: stride(from: 0, to: 2 * I, by: 2).map { gateUpBias[$0] },
      upBias: stride(from: 1, to: 2 * I, by: 2).map { gateUpBias[$0] },
      downBias: try expertRow(WeightNames.layer(layer, "mlp.experts.down_proj_bias"), e, E, D),
      activation: moe.expertActivation)
  }

  /// Expert `e`'s `[rows, columns]` (output-major) matrix of the fused 3-D tensor `name`: read as stored when
  /// quantized (`[E, rows, columns]`), transposed from the plain `[E, columns, rows]`.
  private func fusedExpertMatrix(_ name: String, _ e: Int, _ E: Int, rows: Int, columns: Int) throws -> [Float] {
    let outputMajor = weights.isQuantized(name)
    let expected = outputMajor ? [E, rows, columns] : [E, columns, rows]
    let shape = try weights.shape(of: name)
    guard shape == expected else {
      throw ReferenceModelError.weightShapeMismatch(name: name, expected: expected, actual: shape)
    }
    let slice = try weights.weightRows(name, rows: e..<(e + 1)).values  // [rows·columns]
    guard !outputMajor else { return slice }
    var transposed = [Float](repeating: 0, count: rows * columns)
    for i in 0..<columns {
      for o in 0..<rows { transposed[o * columns + i] = slice[i * rows + o] }
    }
    return transposed
  }

  /// Row `e` of the 2-D per-expert bias `name` `[E, width]`.
  private func expertRow(_ name: String, _ e: Int, _ E: Int, _ width: Int) throws -> [Float] {
    let shape = try weights.shape(of: name)
    guard shape == [E, width] else {
      throw ReferenceModelError.weightShapeMismatch(name: name, expected: [E, width], actual: shape)
    }
    return try weights.weightRows(name, rows: e..<(e + 1)).values
  }
}

extension GroupedQueryAttentionConfiguration {
  /// gpt-oss's attention: biases on q/k/v/o (`attention_bias`), sinks, full rotary, `sliding_window` on the
  /// `layer_types` entries `sliding_attention` (every other layer in the releases).
  init(gptOss config: ModelConfig) throws(ReferenceModelError) {
    try refusePartialRotary(config)
    let headDimension = try checkedHeadDimension(config)
    let types = try required(config.layerTypes, "layer_types")
    if let layers = config.numHiddenLayers, types.count != layers {
      throw .invalidConfiguration(
        field: "layer_types", value: "\(types.count) entries", reason: "needs one per layer (num_hidden_layers \(layers))")
    }
    var sliding: Set<Int> = []
    for (layer, type) in types.enumerated() {
      switch type {
      case "full_attention": break
      case "sliding_attention": sliding.insert(layer)
      default:
        throw .invalidConfiguration(
          field: "layer_types", value: "\"\(type)\"", reason: "only full_attention and sliding_attention are implemented")
      }
    }
    let bias = config.attentionBias ?? true
    self.init(
      keyValueHeadCount: try required(config.numKeyValueHeads, "num_key_value_heads"), headDimension: headDimension,
      rotaryDimension: headDimension, queryKeyNorm: .none, hasQueryKeyValueBias: bias, rotaryDimensionField: "head_dim")
    hasOutputBias = bias
    hasSinks = true
    if !sliding.isEmpty {
      let window = try required(config.slidingWindow, "sliding_window")
      guard window > 0 else {
        throw .invalidConfiguration(field: "sliding_window", value: "\(window)", reason: "must be positive")
      }
      slidingWindow = window
      slidingWindowLayers = sliding
    }
  }
}

extension MixtureOfExpertsConfiguration {
  /// gpt-oss's experts: every layer MoE, softmax over the top-k router logits, the clamped SwiGLU with
  /// `swiglu_limit` and `swiglu_alpha` (1.702 when absent, as transformers' `GptOssConfig`).
  init?(gptOss config: ModelConfig) throws(ReferenceModelError) {
    guard let experts = config.routedExpertCount else { return nil }
    let limit = try required(config.swigluLimit, "swiglu_limit"), alpha = config.swigluAlpha ?? 1.702
    for (value, field) in [(limit, "swiglu_limit"), (alpha, "swiglu_alpha")] where !(value.isFinite && value > 0) {
      throw .invalidConfiguration(field: field, value: "\(value)", reason: "must be a finite number greater than 0")
    }
    self.init(
      routedExpertCount: experts, sharedExpertCount: 0,
      expertsPerToken: try required(config.numExpertsPerTok, "num_experts_per_tok"),
      expertIntermediateSize: try required(config.intermediateSize, "intermediate_size"), firstDenseLayerCount: 0,
      normalizeTopK: false, routedScalingFactor: 1, router: .softmaxOverTopK)
    expertActivation = .clampedSwish(alpha: Float(alpha), limit: Float(limit))
  }
}
