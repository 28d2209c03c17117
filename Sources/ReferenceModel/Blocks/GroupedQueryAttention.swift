/// One layer's grouped-query attention weights, `[out, in]` each.
struct GroupedQueryAttentionWeights {
  /// `q_proj[H·hd, D]`, `k_proj[KV·hd, D]`, `v_proj[KV·hd, D]`, `o_proj[D, H·hd]`.
  var query: LinearWeight
  var key: LinearWeight
  var value: LinearWeight
  var output: LinearWeight
  /// `q_proj.bias[H·hd]`, `k_proj.bias[KV·hd]`, `v_proj.bias[KV·hd]` (`attention_bias`).
  var queryBias: [Float]?
  var keyBias: [Float]?
  var valueBias: [Float]?
  /// `q_norm` / `k_norm`: `[hd]` per head, or `[H·hd]` / `[KV·hd]` over all heads (`QueryKeyNorm`).
  var queryNorm: [Float]?
  var keyNorm: [Float]?
  /// `o_proj.bias[D]` and the per-head attention sinks `sinks[H]` (gpt-oss).
  var outputBias: [Float]? = nil
  var sinks: [Float]? = nil
}

/// Grouped-query attention as transformers' Llama-family attention computes it (eager): project, optional
/// QK-norm, RoPE on the first `rotaryDimension` channels of every head (rotate-half pairs `(i, i + r/2)`, the
/// rest passes through), keys and values repeated to every query head of their group (`repeat_kv`: query head
/// `h` reads key/value head `h / (H / KV)`), causal softmax(q·k · hd^-0.5) · v (within `window` keys, with the
/// sinks joining the softmax when the weights have them), `o_proj`.
///
/// - x: `[B·T, D]`, the output of `input_layernorm`. Returns `[B·T, D]`.
/// - Sizes: H = `num_attention_heads`, KV = `num_key_value_heads`, hd = `head_dim`.
func groupedQueryAttention(
  _ x: [Float], weights: GroupedQueryAttentionWeights, attention a: GroupedQueryAttentionConfiguration,
  headCount H: Int, normEpsilon: Float, rope: RopeTable, batchSize: Int, sequenceLength: Int, window: Int? = nil
) -> [Float] {
  let KV = a.keyValueHeadCount, hd = a.headDimension
  let N = batchSize * sequenceLength

  // 1. Projections: q[N, H, hd], k[N, KV, hd], v[N, KV, hd].
  var q = matmul(x, weights.query, bias: weights.queryBias, rowCount: N)
  var k = matmul(x, weights.key, bias: weights.keyBias, rowCount: N)
  let v = matmul(x, weights.value, bias: weights.valueBias, rowCount: N)

  // 2. QK-norm (before RoPE): over each head, or over all heads of a token.
  if let norm = weights.queryNorm {
    q = rmsNorm(q, weight: norm, rowCount: q.count / norm.count, width: norm.count, epsilon: normEpsilon)
  }
  if let norm = weights.keyNorm {
    k = rmsNorm(k, weight: norm, rowCount: k.count / norm.count, width: norm.count, epsilon: normEpsilon)
  }

  // 3. RoPE on the rotary channels of every head. Position = index in the sequence.
  for n in 0..<N {
    let position = n % sequenceLength
    for h in 0..<H { rope.rotate(&q, offset: (n * H + h) * hd, position: position) }
    for h in 0..<KV { rope.rotate(&k, offset: (n * KV + h) * hd, position: position) }
  }

  // 4. repeat_kv: keys and values for every query head, [N, H, hd].
  let group = H / KV
  var keys = [Float](repeating: 0, count: N * H * hd)
  var values = [Float](repeating: 0, count: N * H * hd)
  for n in 0..<N {
    for h in 0..<H {
      let source = (n * KV + h / group) * hd, target = (n * H + h) * hd
      for i in 0..<hd {
        keys[target + i] = k[source + i]
        values[target + i] = v[source + i]
      }
    }
  }

  // 5. Causal attention per sequence and head, then o_proj.
  let scale = Float(1 / Double(hd).squareRoot())
  let attended = causalAttention(
    queries: q, keys: keys, values: values, batchSize: batchSize, sequenceLength: sequenceLength, headCount: H,
    keyDimension: hd, valueDimension: hd, scale: scale, window: window, sinks: weights.sinks)  // [N, H·hd]
  return matmul(attended, weights.output, bias: weights.outputBias, rowCount: N)
}

extension ReferenceModel {
  /// The attention half of a grouped-query layer: `h += attention(input_layernorm(h))`, with `self_attn.q_proj`,
  /// `k_proj`, `v_proj`, `o_proj` (and their biases, `q_norm`, `k_norm` as `attention` says).
  func applyGroupedQueryAttention(
    _ layer: Int, attention a: GroupedQueryAttentionConfiguration, to hidden: inout HiddenStates
  ) throws {
    let c = configuration
    let D = c.hiddenSize, H = c.headCount, KV = a.keyValueHeadCount, hd = a.headDimension
    let N = hidden.batchSize * hidden.sequenceLength
    func name(_ suffix: String) -> String { WeightNames.layer(layer, "self_attn.\(suffix)") }
    let normWidths: (query: Int, key: Int)? =
      switch a.queryKeyNorm {
      case .none: nil
      case .perHead: (hd, hd)
      case .perLayer: (H * hd, KV * hd)
      }
    let weights = GroupedQueryAttentionWeights(
      query: try linear(name("q_proj.weight"), H * hd, D), key: try linear(name("k_proj.weight"), KV * hd, D),
      value: try linear(name("v_proj.weight"), KV * hd, D), output: try linear(name("o_proj.weight"), D, H * hd),
      queryBias: try optionalVector(name("q_proj.bias"), H * hd, present: a.hasQueryKeyValueBias),
      keyBias: try optionalVector(name("k_proj.bias"), KV * hd, present: a.hasQueryKeyValueBias),
      valueBias: try optionalVector(name("v_proj.bias"), KV * hd, present: a.hasQueryKeyValueBias),
      queryNorm: try normWidths.map { try vector(name("q_norm.weight"), $0.query) },
      keyNorm: try normWidths.map { try vector(name("k_norm.weight"), $0.key) },
      outputBias: try optionalVector(name("o_proj.bias"), D, present: a.hasOutputBias),
      sinks: try optionalVector(name("sinks"), H, present: a.hasSinks))
    let norm = try vector(WeightNames.layer(layer, "input_layernorm.weight"), D)
    let normed = rmsNorm(hidden.values, weight: norm, rowCount: N, width: D, epsilon: c.rmsNormEpsilon)
    let rope = RopeTable(configuration: c.rope, dimension: a.rotaryDimension, positionCount: hidden.sequenceLength)
    let attended = groupedQueryAttention(
      normed, weights: weights, attention: a, headCount: H, normEpsilon: c.rmsNormEpsilon, rope: rope,
      batchSize: hidden.batchSize, sequenceLength: hidden.sequenceLength,
      window: a.slidingWindowLayers.contains(layer) ? a.slidingWindow : nil)
    hidden.values = add(hidden.values, attended)
  }
}
