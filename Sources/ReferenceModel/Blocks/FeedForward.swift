/// One SwiGLU MLP's weights: `gate_proj[I, D]`, `up_proj[I, D]`, `down_proj[D, I]`.
struct SwiGLUWeights {
  var gate: LinearWeight
  var up: LinearWeight
  var down: LinearWeight
  /// I, the intermediate size.
  var intermediateSize: Int
}

/// SwiGLU MLP: `down(silu(gate(x)) ⊙ up(x))`; the dense layers, each routed expert and the shared experts.
///
/// - x: `[N, D]`. Returns `[N, D]`.
func swiGLU(_ x: [Float], weights: SwiGLUWeights, rowCount N: Int, hiddenSize D: Int) -> [Float] {
  let I = weights.intermediateSize
  let gate = matmul(x, weights.gate, rowCount: N)  // [N, I]
  let up = matmul(x, weights.up, rowCount: N)  // [N, I]
  var activated = [Float](repeating: 0, count: N * I)
  for i in 0..<(N * I) { activated[i] = silu(gate[i]) * up[i] }
  return matmul(activated, weights.down, rowCount: N)  // [N, D]
}
