import CMath


// Small per-row and per-element blocks. All F32; shapes in comments.

/// RMSNorm: `out[N, C] = weight[C] · (x / sqrt(mean(x²) + eps))`.
///
/// As transformers' `DeepseekV3RMSNorm` in F32: normalize first, then multiply by the weight (two F32
/// roundings). The mean of squares is accumulated in Double, close to torch's cascaded F32 sum.
func rmsNorm(_ x: [Float], weight: [Float], rowCount: Int, width: Int, epsilon: Float) -> [Float] {
  precondition(x.count == rowCount * width && weight.count == width, "rmsNorm shape mismatch")
  var out = [Float](repeating: 0, count: x.count)
  for row in 0..<rowCount {
    let base = row * width
    var sumOfSquares = 0.0
    for c in 0..<width { sumOfSquares += Double(x[base + c]) * Double(x[base + c]) }
    let variance = Float(sumOfSquares / Double(width))
    let inverseRoot = 1 / (variance + epsilon).squareRoot()
    for c in 0..<width { out[base + c] = weight[c] * (x[base + c] * inverseRoot) }
  }
  return out
}

/// `silu(x) = x / (1 + e^-x)` (torch's formula).
@inline(__always)
func silu(_ x: Float) -> Float { x / (1 + CMath.exp(-x)) }

/// `sigmoid(x) = 1 / (1 + e^-x)`.
@inline(__always)
func sigmoid(_ x: Float) -> Float { 1 / (1 + CMath.exp(-x)) }

/// In-place softmax over `values` (max-subtracted, F32 exponentials, Double sum).
func softmaxInPlace(_ values: inout [Float], count: Int) {
  guard count > 0 else { return }
  var maximum = -Float.infinity
  for i in 0..<count { maximum = max(maximum, values[i]) }
  var sum = 0.0
  for i in 0..<count {
    let e = CMath.exp(values[i] - maximum)
    values[i] = e
    sum += Double(e)
  }
  let total = Float(sum)
  for i in 0..<count { values[i] /= total }
}

/// `out[i] = a[i] + b[i]` (residual connections).
func add(_ a: [Float], _ b: [Float]) -> [Float] {
  precondition(a.count == b.count, "add shape mismatch")
  return zip(a, b).map { $0 + $1 }
}

/// LayerNorm: `out[N, C] = (x − mean) / sqrt(var + eps) · weight + bias` per row, the biased variance, as
/// `nn.LayerNorm` in F32 (mean and variance accumulated in Double).
func layerNorm(_ x: [Float], weight: [Float], bias: [Float], rowCount: Int, width: Int, epsilon: Float) -> [Float] {
  precondition(x.count == rowCount * width && weight.count == width && bias.count == width, "layerNorm shape mismatch")
  var out = [Float](repeating: 0, count: x.count)
  for row in 0..<rowCount {
    let base = row * width
    var sum = 0.0
    for c in 0..<width { sum += Double(x[base + c]) }
    let mean = Float(sum / Double(width))
    var squares = 0.0
    for c in 0..<width { squares += Double(x[base + c] - mean) * Double(x[base + c] - mean) }
    let inverseRoot = 1 / (Float(squares / Double(width)) + epsilon).squareRoot()
    for c in 0..<width { out[base + c] = (x[base + c] - mean) * inverseRoot * weight[c] + bias[c] }
  }
  return out
}
