/// One layer's multi-head latent attention weights, `[out, in]` each.
struct LatentAttentionWeights {
  /// Either `q_a_proj[Rq, D]` + `q_a_layernorm[Rq]` + `q_b_proj[H·(dn+dr), Rq]` (with `q_lora_rank`), or
  /// `q_proj[H·(dn+dr), D]`.
  enum Query {
    case lowRank(down: LinearWeight, norm: [Float], up: LinearWeight)
    case direct(LinearWeight)
  }
  var query: Query
  /// `kv_a_proj_with_mqa[Rkv + dr, D]`.
  var keyValueDown: LinearWeight
  /// `kv_a_layernorm[Rkv]`.
  var keyValueNorm: [Float]
  /// `kv_b_proj[H·(dn+dv), Rkv]`: per head, `dn` rows of k_nope then `dv` rows of v.
  var keyValueUp: LinearWeight
  /// `o_proj[D, H·dv]`.
  var output: LinearWeight
  /// DeepSeek-V3.2's lightning indexer, which picks the keys each query attends to (`nil`: all of them).
  var indexer: LightningIndexerWeights? = nil
}

/// The low-rank norms (`q_a_layernorm`, `kv_a_layernorm`) are built without `eps` in transformers (and in
/// DeepSeek's `model.py`), so they use RMSNorm's default 1e-6 whatever `rms_norm_eps` says.
let latentNormEpsilon: Float = 1e-6

/// Multi-head latent attention as transformers' `DeepseekV3Attention` computes it (the naive form with
/// materialized per-head keys and values), causal within each sequence.
///
/// - x: `[B·T, D]`, the output of `input_layernorm`. Returns `[B·T, D]` (after `o_proj`).
/// - Sizes: H heads, dn = `qk_nope_head_dim`, dr = `qk_rope_head_dim`, dv = `v_head_dim`, Rkv = `kv_lora_rank`.
/// - With an indexer (DeepSeek-V3.2), each query attends only to the keys the indexer selects from the
///   compressed query `q_a_layernorm(q_a_proj(x))` and `x`, using `indexerRope` (rotate-half pairs).
func latentAttention(
  _ x: [Float], weights: LatentAttentionWeights, configuration: ModelConfiguration, rope: RopeTable,
  batchSize: Int, sequenceLength: Int, indexerRope: RopeTable? = nil
) -> [Float] {
  let a = configuration.attention
  let H = configuration.headCount
  let dn = a.noPositionHeadDimension, dr = a.ropeHeadDimension, dv = a.valueHeadDimension
  let dq = dn + dr, Rkv = a.keyValueLoraRank
  let N = batchSize * sequenceLength

  // 1. Queries q[N, H, dn + dr]: through the low-rank bottleneck when q_lora_rank is set.
  var q: [Float]
  var queryLatent: [Float]?  // q_a_layernorm output [N, Rq], the indexer's query input
  switch weights.query {
  case .lowRank(let down, let norm, let up):
    let Rq = norm.count
    let compressed = matmul(x, down, rowCount: N)  // [N, Rq]
    let normed = rmsNorm(compressed, weight: norm, rowCount: N, width: Rq, epsilon: latentNormEpsilon)
    q = matmul(normed, up, rowCount: N)  // [N, H·dq]
    queryLatent = normed
  case .direct(let projection):
    q = matmul(x, projection, rowCount: N)  // [N, H·dq]
  }

  // 2. Compressed keys/values: kv[N, Rkv + dr] = [c_kv | k_pe]; k_pe is one rotary key shared by all heads.
  let compressed = matmul(x, weights.keyValueDown, rowCount: N)
  var latent = [Float](repeating: 0, count: N * Rkv)  // c_kv[N, Rkv]
  var sharedRopeKey = [Float](repeating: 0, count: N * dr)  // k_pe[N, dr]
  for n in 0..<N {
    for i in 0..<Rkv { latent[n * Rkv + i] = compressed[n * (Rkv + dr) + i] }
    for i in 0..<dr { sharedRopeKey[n * dr + i] = compressed[n * (Rkv + dr) + Rkv + i] }
  }

  // 3. c_kv → kv_a_layernorm → kv_b_proj: kvUp[N, H, dn + dv] = per head [k_nope | v].
  let normedLatent = rmsNorm(latent, weight: weights.keyValueNorm, rowCount: N, width: Rkv, epsilon: latentNormEpsilon)
  let kvUp = matmul(normedLatent, weights.keyValueUp, rowCount: N)

  // 4. RoPE on the rotary parts only: q_pe of every head, and the shared k_pe. Position = index in sequence.
  for n in 0..<N {
    let position = n % sequenceLength
    for h in 0..<H { rope.rotate(&q, offset: (n * H + h) * dq + dn, position: position) }
    rope.rotate(&sharedRopeKey, offset: n * dr, position: position)
  }

  // 5. Per-head keys k[N, H, dn + dr] = [k_nope | k_pe] and values v[N, H, dv].
  var keys = [Float](repeating: 0, count: N * H * dq)
  var values = [Float](repeating: 0, count: N * H * dv)
  for n in 0..<N {
    for h in 0..<H {
      let source = (n * H + h) * (dn + dv)
      let key = (n * H + h) * dq
      for i in 0..<dn { keys[key + i] = kvUp[source + i] }
      for i in 0..<dr { keys[key + dn + i] = sharedRopeKey[n * dr + i] }
      for i in 0..<dv { values[(n * H + h) * dv + i] = kvUp[source + dn + i] }
    }
  }

  // 6. Causal softmax(q·k · scale) · v per sequence and head, in F32.
  let scale = Float(attentionSoftmaxScale(queryKeyHeadDimension: dq, rope: configuration.rope))
  var selectedKeys: [[Int]]?
  if let indexer = weights.indexer, let queryLatent, let indexerRope {
    selectedKeys = lightningIndexerSelection(
      x, queryLatent: queryLatent, weights: indexer, rope: indexerRope, batchSize: batchSize,
      sequenceLength: sequenceLength)
  }
  let attended = causalAttention(
    queries: q, keys: keys, values: values, batchSize: batchSize, sequenceLength: sequenceLength, headCount: H,
    keyDimension: dq, valueDimension: dv, scale: scale, selectedKeys: selectedKeys)  // [N, H·dv]

  // 7. o_proj: [N, H·dv] → [N, D].
  return matmul(attended, weights.output, rowCount: N)
}
