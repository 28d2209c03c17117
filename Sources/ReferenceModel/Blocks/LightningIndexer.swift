import TensorCore

/// One layer's DeepSeek-V3.2 lightning-indexer weights (`self_attn.indexer.*`).
struct LightningIndexerWeights {
  /// `wq_b[Hi·di, Rq]`: indexer queries from the compressed query `q_a_layernorm(q_a_proj(x))`.
  var query: LinearWeight
  /// `wk[di, D]`: one indexer key per token, then the LayerNorm `k_norm` (`weight[di]`, `bias[di]`, eps 1e-6).
  var key: LinearWeight
  var keyNormWeight: [Float]
  var keyNormBias: [Float]
  /// `weights_proj[Hi, D]` (kept F32 by transformers): each indexer head's weight per token.
  var headWeights: LinearWeight
  /// Hi = `index_n_heads`, di = `index_head_dim`, k = `index_topk` (the rotary channels: the RoPE table's size).
  var headCount: Int
  var headDimension: Int
  var topK: Int
}

/// DeepSeek-V3.2's lightning indexer as transformers' `DeepseekV32Indexer` computes it: for every query `t`, the
/// keys `s ≤ t` its MLA attention may use.
///
///     q[t, h] = wq_b(q_latent[t])[h],  k[s] = k_norm(wk(x[s]))      RoPE (rotate-half, on the first dr channels)
///     I[t, s] = Σ_h w[t, h] · relu(q[t, h] · k[s] · di^-0.5),  w[t, h] = weights_proj(x[t])[h] · Hi^-0.5
///     keys(t) = the `index_topk` largest I[t, s] over s ≤ t (all of 0...t when t < index_topk)
///
/// - x: `[B·T, D]` (`input_layernorm` output); queryLatent: `[B·T, Rq]`. Returns, per row `b·T + t`, the selected
///   positions in ascending order.
/// - Ties (ReLU scores many keys exactly 0 when every head's dot product is negative) go to the earlier key;
///   `torch.topk` documents no order for ties, so a tie at the top-k boundary may select another key there.
func lightningIndexerSelection(
  _ x: [Float], queryLatent: [Float], weights w: LightningIndexerWeights, rope: RopeTable, batchSize: Int,
  sequenceLength T: Int
) -> [[Int]] {
  let N = batchSize * T, Hi = w.headCount, di = w.headDimension
  var queries = matmul(queryLatent, w.query, rowCount: N)  // [N, Hi·di]
  var keys = layerNorm(
    matmul(x, w.key, rowCount: N), weight: w.keyNormWeight, bias: w.keyNormBias, rowCount: N, width: di,
    epsilon: 1e-6)  // [N, di]
  for n in 0..<N {
    let position = n % T
    for h in 0..<Hi { rope.rotate(&queries, offset: (n * Hi + h) * di, position: position) }
    rope.rotate(&keys, offset: n * di, position: position)
  }
  let headWeights = matmul(x, w.headWeights, rowCount: N)  // [N, Hi]
  let q = queries, k = keys  // read by the parallel loop
  let scale = Float(1 / Double(di).squareRoot()), headScale = Float(1 / Double(Hi).squareRoot())

  var selection = [[Int]](repeating: [], count: N)
  selection.withUnsafeMutableBufferPointer { buffer in
    let output = DisjointMutableBuffer(buffer)
    // One work item per query row: each writes only its own entry.
    Parallel.forEachChunk(count: N) { rows in
      for n in rows {
        let b = n / T, t = n % T
        guard t + 1 > w.topK else {
          output.buffer[n] = Array(0...t)
          continue
        }
        var scores = [Float](repeating: 0, count: t + 1)
        for s in 0...t {
          var total: Float = 0
          for h in 0..<Hi {
            var dot: Float = 0
            for i in 0..<di { dot += q[(n * Hi + h) * di + i] * k[(b * T + s) * di + i] }
            total += headWeights[n * Hi + h] * headScale * max(dot * scale, 0)
          }
          scores[s] = total
        }
        output.buffer[n] = topKIndices(scores, w.topK).sorted()
      }
    }
  }
  return selection
}
