#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import Checkpoint
import ReferenceModel
import TensorCore

/// Realistic inputs for the linears of one decoder layer, computed from the reference model's residual stream
/// entering the layer (`h[N, D]`) and the reference weights:
///
/// | linear | input |
/// |---|---|
/// | `q_a_proj`, `q_proj`, `kv_a_proj_with_mqa`, `k_proj`, `v_proj` | `input_layernorm(h)` (exact) |
/// | `q_b_proj` | `q_a_layernorm(q_a_proj(x))` (exact) |
/// | `kv_b_proj` | `kv_a_layernorm(kv_a_proj_with_mqa(x)[:, :kv_lora_rank])` (exact) |
/// | `o_proj` | the value vectors `kv_b_proj(...)[v part]` per head (attention outputs are convex mixtures of them); grouped-query: `v_proj(x)` per query head |
/// | `gate_proj`, `up_proj` (`w1`, `w3`), experts, shared experts, router | `post_attention_layernorm(h)` (the residual stream *before* the attention output is added: an approximation) |
/// | `down_proj` | `silu(gate_proj(x)) ⊙ up_proj(x)` of the same MLP with the reference weights |
///
/// Each input is computed once per layer (memoized); every token of the batch is a row.
final class HiddenInputs {
  let layer: Int
  /// `h[N, D]`.
  let layerInput: [Float]
  let rowCount: Int
  let configuration: ModelConfiguration
  let weights: CheckpointWeightProvider
  private var cache: [String: [Float]] = [:]

  init(layer: Int, layerInput: [Float], rowCount: Int, configuration: ModelConfiguration, weights: CheckpointWeightProvider) {
    self.layer = layer
    self.layerInput = layerInput
    self.rowCount = rowCount
    self.configuration = configuration
    self.weights = weights
  }

  /// The input rows `[N, in]` for the linear `name`, or `nil` when there is no realistic input for it.
  func input(for name: String) throws -> [Float]? {
    let prefix = "model.layers.\(layer)."
    guard name.hasPrefix(prefix), name.hasSuffix(".weight") else { return nil }
    let module = String(name.dropFirst(prefix.count).dropLast(".weight".count))
    switch module {
    case "self_attn.q_a_proj", "self_attn.q_proj", "self_attn.kv_a_proj_with_mqa", "self_attn.k_proj", "self_attn.v_proj":
      return try attentionInput()
    case "self_attn.o_proj" where configuration.architecture.groupedQueryAttention != nil:
      return try groupedQueryValues()
    case "self_attn.q_b_proj":
      return try memo("q_b") {
        let down = try project(try attentionInput(), "self_attn.q_a_proj.weight")
        return try norm(down.values, width: down.width, "self_attn.q_a_layernorm.weight")
      }
    case "self_attn.kv_b_proj":
      return try keyValueLatent()
    case "self_attn.o_proj":
      return try memo("o") {
        let a = configuration.attention
        let up = try project(try keyValueLatent(), "self_attn.kv_b_proj.weight")  // [N, H·(nope + v)]
        let perHead = a.noPositionHeadDimension + a.valueHeadDimension
        let heads = up.width / max(1, perHead)
        var values = [Float]()
        values.reserveCapacity(rowCount * heads * a.valueHeadDimension)
        for n in 0..<rowCount {
          for h in 0..<heads {
            let start = n * up.width + h * perHead + a.noPositionHeadDimension
            values += up.values[start..<(start + a.valueHeadDimension)]
          }
        }
        return values
      }
    default:
      break
    }
    // Feed-forward: the dense MLP, each expert, the shared experts and the router.
    // (MiniMax-M2: `block_sparse_moe`, Mixtral's w1 gate / w3 up / w2 down; gpt-oss: `mlp.router`.)
    let names = configuration.architecture.feedForwardNames
    let parts = module.split(separator: ".").map(String.init)
    guard parts.first == "mlp" || parts.first == names.module, let last = parts.last else { return nil }
    let projections = parts.contains("experts") ? names.expertProjections : SwiGLUProjectionNames.llama
    if module + ".weight" == names.router || last == projections.gate || last == projections.up {
      return try feedForwardInput()
    }
    if last == projections.down {
      let mlp = parts.dropLast().joined(separator: ".")
      return try memo("down:\(mlp)") {
        let x = try feedForwardInput()
        let gate = try project(x, "\(mlp).\(projections.gate).weight")
        let up = try project(x, "\(mlp).\(projections.up).weight")
        var activated = [Float](repeating: 0, count: gate.values.count)
        for i in 0..<activated.count {
          let g = gate.values[i]
          activated[i] = g / (1 + exp(-g)) * up.values[i]
        }
        return activated
      }
    }
    return nil
  }

  private func memo(_ key: String, _ compute: () throws -> [Float]) throws -> [Float] {
    if let cached = cache[key] { return cached }
    let value = try compute()
    cache[key] = value
    return value
  }

  private func attentionInput() throws -> [Float] {
    try memo("attention") { try norm(layerInput, width: configuration.hiddenSize, "input_layernorm.weight") }
  }

  private func feedForwardInput() throws -> [Float] {
    try memo("ffn") { try norm(layerInput, width: configuration.hiddenSize, "post_attention_layernorm.weight") }
  }

  /// Grouped-query attention: `v_proj(x)` repeated to every query head of its group, `[N, H·hd]` (the attention
  /// output of each head is a convex mixture of these value vectors).
  private func groupedQueryValues() throws -> [Float] {
    try memo("o") {
      let values = try project(try attentionInput(), "self_attn.v_proj.weight")  // [N, KV·hd]
      let H = configuration.headCount
      let KV = configuration.architecture.groupedQueryAttention?.keyValueHeadCount ?? H
      let hd = values.width / max(1, KV)
      var out = [Float]()
      out.reserveCapacity(rowCount * H * hd)
      for n in 0..<rowCount {
        for h in 0..<H {
          let start = n * values.width + (h / max(1, H / KV)) * hd
          out += values.values[start..<(start + hd)]
        }
      }
      return out
    }
  }

  private func keyValueLatent() throws -> [Float] {
    try memo("kv_b") {
      let rank = configuration.attention.keyValueLoraRank
      let down = try project(try attentionInput(), "self_attn.kv_a_proj_with_mqa.weight")  // [N, rank + rope]
      var latent = [Float]()
      latent.reserveCapacity(rowCount * rank)
      for n in 0..<rowCount { latent += down.values[(n * down.width)..<(n * down.width + rank)] }
      return try norm(latent, width: rank, "self_attn.kv_a_layernorm.weight")
    }
  }

  /// `x · Wᵀ` with the reference weight `model.layers.L.<suffix>`.
  private func project(_ x: [Float], _ suffix: String) throws -> (values: [Float], width: Int) {
    let w = try weights.weight(WeightNames.layer(layer, suffix))
    guard w.shape.count == 2, x.count == rowCount * w.shape[1] else {
      throw ValidationError.badShape(
        tensor: WeightNames.layer(layer, suffix), shape: w.shape, expected: "[out, \(x.count / max(1, rowCount))]")
    }
    return (matmul(x, w.values, rowCount: rowCount, inputCount: w.shape[1], outputCount: w.shape[0]), w.shape[0])
  }

  /// RMSNorm with the reference weight `model.layers.L.<suffix>` (as the model: F32, normalize then scale).
  private func norm(_ x: [Float], width: Int, _ suffix: String) throws -> [Float] {
    let w = try weights.weight(WeightNames.layer(layer, suffix)).values
    guard w.count == width, x.count == rowCount * width else {
      throw ValidationError.badShape(tensor: WeightNames.layer(layer, suffix), shape: [w.count], expected: "[\(width)]")
    }
    var out = [Float](repeating: 0, count: x.count)
    for n in 0..<rowCount {
      var sum = 0.0
      for c in 0..<width { sum += Double(x[n * width + c]) * Double(x[n * width + c]) }
      let inverseRoot = 1 / (Float(sum / Double(width)) + configuration.rmsNormEpsilon).squareRoot()
      for c in 0..<width { out[n * width + c] = w[c] * (x[n * width + c] * inverseRoot) }
    }
    return out
  }
}
