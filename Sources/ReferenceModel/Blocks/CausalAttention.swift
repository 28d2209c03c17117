import TensorCore

/// Causal scaled-dot-product attention.
///
/// - queries, keys: `[B·T, H, dk]`; values: `[B·T, H, dv]`. Returns `[B·T, H·dv]`.
/// - Query `t` attends to keys `0...t` of its own sequence; softmax in F32 after scaling (as eager attention:
///   `(q·kᵀ)·scale`, then the mask, then softmax).
/// - window: with a sliding window `W`, query `t` sees only keys `s > t − W` (transformers' sliding mask).
/// - sinks: gpt-oss's learned per-head logit that joins each softmax (its probability is dropped, so the
///   weights of the real keys sum to less than one).
/// - selectedKeys: DeepSeek-V3.2's sparse attention: for row `b·T + t`, the (ascending) positions `≤ t` it
///   attends to, instead of all of `0...t`.
func causalAttention(
  queries: [Float], keys: [Float], values: [Float], batchSize: Int, sequenceLength: Int, headCount: Int,
  keyDimension: Int, valueDimension: Int, scale: Float, window: Int? = nil, sinks: [Float]? = nil,
  selectedKeys: [[Int]]? = nil
) -> [Float] {
  let T = sequenceLength, H = headCount, dk = keyDimension, dv = valueDimension
  let count = batchSize * T * H * dv
  return [Float](unsafeUninitializedCapacity: count) { out, initialized in
    out.initialize(repeating: 0)
    let output = DisjointMutableBuffer(out)
    // One work item per (sequence, head): each writes only its own head's columns of its own rows.
    Parallel.forEachChunk(count: batchSize * H) { items in
      var scores = [Float](repeating: 0, count: T + 1)
      for item in items {
        let b = item / H, h = item % H
        for t in 0..<T {
          let queryBase = ((b * T + t) * H + h) * dk
          let first = window.map { max(0, t - $0 + 1) } ?? 0
          // The keys attended, ascending: the selection, or the window first...t.
          let selection = selectedKeys?[b * T + t]
          let keyCount = selection?.count ?? (t + 1 - first)
          for j in 0..<keyCount {
            let s = selection?[j] ?? first + j
            let keyBase = ((b * T + s) * H + h) * dk
            var dotProduct: Float = 0
            for i in 0..<dk { dotProduct += queries[queryBase + i] * keys[keyBase + i] }
            scores[j] = dotProduct * scale
          }
          if let sinks {
            scores[keyCount] = sinks[h]
            softmaxInPlace(&scores, count: keyCount + 1)
          } else {
            softmaxInPlace(&scores, count: keyCount)
          }
          let outBase = ((b * T + t) * H + h) * dv
          for j in 0..<keyCount {
            let s = selection?[j] ?? first + j
            let p = scores[j]
            let valueBase = ((b * T + s) * H + h) * dv
            for i in 0..<dv { output.buffer[outBase + i] += p * values[valueBase + i] }
          }
        }
      }
    }
    initialized = count
  }
}
