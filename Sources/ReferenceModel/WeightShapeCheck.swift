/// The shape every weight the forward pass reads must have, from the configuration, computed with overflow
/// checks — so a config whose sizes do not match its weights (a vocabulary of 2^62, a 2^40-wide RoPE head) is an
/// error before anything is allocated.
extension ModelConfiguration {
  /// Calls `body` with every weight of the model (`lm_head` unless tied; the MoE bias only for sigmoid routing)
  /// and its expected shape, layer by layer, stopping at the first error `body` throws (so a config claiming
  /// 2^31 layers or experts costs only as many calls as the checkpoint has tensors).
  ///
  /// - Throws: `ReferenceModelError.invalidConfiguration` when a product of config sizes overflows, or what
  ///   `body` throws.
  public func forEachExpectedWeight(_ body: (_ name: String, _ shape: [Int]) throws -> Void) throws {
    func product(_ a: Int, _ b: Int, _ field: String) throws(ReferenceModelError) -> Int {
      let (value, overflow) = a.multipliedReportingOverflow(by: b)
      guard !overflow else {
        throw .invalidConfiguration(field: field, value: "\(a) x \(b)", reason: "the weight size overflows")
      }
      return value
    }
    func sum(_ a: Int, _ b: Int, _ field: String) throws(ReferenceModelError) -> Int {
      let (value, overflow) = a.addingReportingOverflow(b)
      guard !overflow else {
        throw .invalidConfiguration(field: field, value: "\(a) + \(b)", reason: "the weight size overflows")
      }
      return value
    }
    let D = hiddenSize, V = vocabularySize, H = headCount, a = attention
    let queryKey = try sum(a.noPositionHeadDimension, a.ropeHeadDimension, "qk_nope_head_dim + qk_rope_head_dim")
    let queryRows = try product(H, queryKey, "num_attention_heads x (qk_nope_head_dim + qk_rope_head_dim)")
    let keyValueRows = try product(
      H, try sum(a.noPositionHeadDimension, a.valueHeadDimension, "qk_nope_head_dim + v_head_dim"),
      "num_attention_heads x (qk_nope_head_dim + v_head_dim)")
    let valueColumns = try product(H, a.valueHeadDimension, "num_attention_heads x v_head_dim")
    let latentRows = try sum(a.keyValueLoraRank, a.ropeHeadDimension, "kv_lora_rank + qk_rope_head_dim")
    _ = try product(V, D, "vocab_size x hidden_size")

    try body(WeightNames.embedding, [V, D])
    try body(WeightNames.finalNorm, [D])
    if !tieWordEmbeddings { try body(WeightNames.lmHead, [V, D]) }
    func swiGLU(_ prefix: String, _ I: Int, _ projections: SwiGLUProjectionNames) throws {
      try body("\(prefix).\(projections.gate).weight", [I, D])
      try body("\(prefix).\(projections.up).weight", [I, D])
      try body("\(prefix).\(projections.down).weight", [D, I])
    }
    let names = architecture.feedForwardNames
    for layer in 0..<layerCount {
      func name(_ suffix: String) -> String { WeightNames.layer(layer, suffix) }
      try body(name("input_layernorm.weight"), [D])
      try body(name("post_attention_layernorm.weight"), [D])
      if let g = architecture.groupedQueryAttention {
        let queryRows = try product(H, g.headDimension, "num_attention_heads x head_dim")
        let keyRows = try product(g.keyValueHeadCount, g.headDimension, "num_key_value_heads x head_dim")
        try body(name("self_attn.q_proj.weight"), [queryRows, D])
        try body(name("self_attn.k_proj.weight"), [keyRows, D])
        try body(name("self_attn.v_proj.weight"), [keyRows, D])
        try body(name("self_attn.o_proj.weight"), [D, queryRows])
        if g.hasQueryKeyValueBias {
          try body(name("self_attn.q_proj.bias"), [queryRows])
          try body(name("self_attn.k_proj.bias"), [keyRows])
          try body(name("self_attn.v_proj.bias"), [keyRows])
        }
        switch g.queryKeyNorm {
        case .none: break
        case .perHead:
          try body(name("self_attn.q_norm.weight"), [g.headDimension])
          try body(name("self_attn.k_norm.weight"), [g.headDimension])
        case .perLayer:
          try body(name("self_attn.q_norm.weight"), [queryRows])
          try body(name("self_attn.k_norm.weight"), [keyRows])
        }
      } else if let Rq = a.queryLoraRank {
        try body(name("self_attn.q_a_proj.weight"), [Rq, D])
        try body(name("self_attn.q_a_layernorm.weight"), [Rq])
        try body(name("self_attn.q_b_proj.weight"), [queryRows, Rq])
      } else {
        try body(name("self_attn.q_proj.weight"), [queryRows, D])
      }
      if case .deepSeekV32(let indexer) = architecture, let Rq = a.queryLoraRank {
        let queryRows = try product(indexer.headCount, indexer.headDimension, "index_n_heads x index_head_dim")
        try body(name("self_attn.indexer.wq_b.weight"), [queryRows, Rq])
        try body(name("self_attn.indexer.wk.weight"), [indexer.headDimension, D])
        try body(name("self_attn.indexer.k_norm.weight"), [indexer.headDimension])
        try body(name("self_attn.indexer.k_norm.bias"), [indexer.headDimension])
        try body(name("self_attn.indexer.weights_proj.weight"), [indexer.headCount, D])
      }
      if architecture.groupedQueryAttention == nil {
        try body(name("self_attn.kv_a_proj_with_mqa.weight"), [latentRows, D])
        try body(name("self_attn.kv_a_layernorm.weight"), [a.keyValueLoraRank])
        try body(name("self_attn.kv_b_proj.weight"), [keyValueRows, a.keyValueLoraRank])
        try body(name("self_attn.o_proj.weight"), [D, valueColumns])
      }
      guard let moe = mixtureOfExperts, isMixtureOfExpertsLayer(layer) else {
        try swiGLU(name("mlp"), intermediateSize, .llama)
        continue
      }
      if case .gptOss = architecture {
        // Fused experts, listed output-major ([E, out, in]; the plain form stores [E, in, out]).
        let E = moe.routedExpertCount, I = moe.expertIntermediateSize
        let gateUp = try product(2, I, "2 x intermediate_size")
        try body(name(names.router), [E, D])
        try body(name(names.routerBias), [E])
        try body(name("mlp.experts.gate_up_proj"), [E, gateUp, D])
        try body(name("mlp.experts.gate_up_proj_bias"), [E, gateUp])
        try body(name("mlp.experts.down_proj"), [E, D, I])
        try body(name("mlp.experts.down_proj_bias"), [E, D])
        continue
      }
      try body(name(names.router), [moe.routedExpertCount, D])
      if case .sigmoidGroupLimited = moe.router {
        try body(name(names.routerBias), [moe.routedExpertCount])
      }
      for expert in 0..<moe.routedExpertCount {
        try swiGLU(name(names.expert(expert)), moe.expertIntermediateSize, names.expertProjections)
      }
      if moe.sharedExpertCount > 0 {
        let shared = try product(moe.expertIntermediateSize, moe.sharedExpertCount, "moe_intermediate_size x n_shared_experts")
        try swiGLU(name(names.sharedExperts), shared, .llama)
      }
    }
  }
}

extension ReferenceModel {
  /// Checks, from headers alone, that every weight the forward pass will read exists with the shape the
  /// configuration implies. Run before a forward pass so a config that disagrees with its weights fails before
  /// any activation is allocated.
  ///
  /// The MoE router bias may be absent (it then counts as zero, as the forward pass treats it).
  public func checkWeightShapes() throws {
    try configuration.forEachExpectedWeight { name, shape in
      guard weights.contains(name) else {
        if name.hasSuffix("e_score_correction_bias") { return }
        throw ReferenceModelError.missingWeight(name: name)
      }
      let actual = try weights.shape(of: name)
      var shape = shape
      if case .gptOss = configuration.architecture, shape.count == 3, !weights.isQuantized(name) {
        shape = [shape[0], shape[2], shape[1]]  // gpt-oss's plain fused experts are input-major
      }
      guard actual == shape else { throw ReferenceModelError.weightShapeMismatch(name: name, expected: shape, actual: actual) }
    }
  }
}
