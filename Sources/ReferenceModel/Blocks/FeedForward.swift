/// One SwiGLU MLP's weights: `gate_proj[I, D]`, `up_proj[I, D]`, `down_proj[D, I]` (and gpt-oss's biases).
struct SwiGLUWeights {
  var gate: LinearWeight
  var up: LinearWeight
  var down: LinearWeight
  /// I, the intermediate size.
  var intermediateSize: Int
  /// `[I]`, `[I]`, `[D]` biases (gpt-oss's experts); `nil` for the bias-free MLPs.
  var gateBias: [Float]? = nil
  var upBias: [Float]? = nil
  var downBias: [Float]? = nil
  /// How gate and up combine.
  var activation: GatedActivation = .silu
}

/// SwiGLU MLP: `down(act(gate(x), up(x)))`; the dense layers, each routed expert and the shared experts.
///
/// - x: `[N, D]`. Returns `[N, D]`.
func swiGLU(_ x: [Float], weights: SwiGLUWeights, rowCount N: Int, hiddenSize D: Int) -> [Float] {
  let I = weights.intermediateSize
  let gate = matmul(x, weights.gate, bias: weights.gateBias, rowCount: N)  // [N, I]
  let up = matmul(x, weights.up, bias: weights.upBias, rowCount: N)  // [N, I]
  var activated = [Float](repeating: 0, count: N * I)
  switch weights.activation {
  case .silu:
    for i in 0..<(N * I) { activated[i] = silu(gate[i]) * up[i] }
  case .clampedSwish(let alpha, let limit):
    for i in 0..<(N * I) {
      let g = min(gate[i], limit), u = min(max(up[i], -limit), limit)
      activated[i] = (u + 1) * (g * sigmoid(g * alpha))
    }
  }
  return matmul(activated, weights.down, bias: weights.downBias, rowCount: N)  // [N, D]
}
