import Checkpoint
import TensorCore
import WeightFormats

/// Which weights a conversion touches.
///
/// The default for quantizing targets is exactly what DeepSeek's release quantizes: 2-D linear weights
/// inside decoder layers (attention projections, dense MLP, routed and shared experts). Embeddings,
/// `lm_head`, norms, the router `mlp.gate.weight`, `e_score_correction_bias` and the MTP layer's `eh_proj`
/// and `shared_head.head` keep their precision. `--include`/`--exclude` globs override the default: a
/// tensor matching an exclude is never converted, one matching an include always is.
public struct TensorSelection: Sendable {
  public var includes: [Glob]
  public var excludes: [Glob]

  public init(includes: [Glob] = [], excludes: [Glob] = []) {
    self.includes = includes
    self.excludes = excludes
  }

  /// True if the weight whose main tensor is `name` (shape `shape`) is converted for `target`.
  public func selects(_ name: String, shape: [Int], dtype: DType, storage: WeightStorage, target: ConversionTarget) -> Bool {
    if excludes.contains(where: { $0.matches(name) }) { return false }
    if includes.contains(where: { $0.matches(name) }) { return true }
    switch target {
    case .cast:
      // Everything quantized is dequantized; plain floating tensors are cast too, except F32 router
      // biases, which keep their precision (selection sums are precision-sensitive).
      if storage != .plain { return true }
      return dtype.isFloatingPoint && dtype.bitWidth >= 16 && dtype != .complex64 && !name.hasSuffix("e_score_correction_bias")
    case .unscaledFP8:
      return storage == .plain && dtype.isFloatingPoint && dtype.bitWidth >= 16 && dtype != .complex64
    case .fp8, .group:
      return TensorSelection.isReleaseQuantized(name, shape: shape)
    case .mixed:
      return false
    }
  }

  /// Whether a tensor matched by a recipe rule is converted with `target`: casts take any floating tensor;
  /// quantizing schemes take linear weights (a 2-D `weight`), never the router `mlp.gate` or `embed_tokens`
  /// (which `--include` can still force).
  public static func isRuleCandidate(_ name: String, shape: [Int], target: ConversionTarget) -> Bool {
    if case .cast = target { return true }
    let parsed = TensorName(name)
    guard shape.count == 2, parsed.leaf == "weight", !parsed.isRouter else { return false }
    let module = parsed.modulePath.split(separator: ".").last.map(String.init) ?? ""
    return module != "embed_tokens" && module != "embed_in" && module != "wte"
  }

  /// The DeepSeek release rule: a 2-D `*_proj` (or `kv_a_proj_with_mqa`) weight inside `model.layers.N.`,
  /// other than the MTP layer's `eh_proj`.
  public static func isReleaseQuantized(_ name: String, shape: [Int]) -> Bool {
    let parsed = TensorName(name)
    guard parsed.layer != nil, shape.count == 2, parsed.leaf == "weight" || parsed.leaf == "weight_packed" || parsed.leaf == "qweight" else {
      return false
    }
    let module = parsed.modulePath.split(separator: ".").last.map(String.init) ?? ""
    return (module.hasSuffix("_proj") || module.hasSuffix("_proj_with_mqa")) && module != "eh_proj"
  }
}
