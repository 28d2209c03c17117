import Checkpoint
import TensorCore
import WeightFormats

/// Which weights a conversion touches.
///
/// The default for quantizing targets is exactly what the checkpoint family's release quantizes
/// (`ModelFamily.quantization`): for DeepSeek-V3, the 2-D linear weights inside decoder layers (attention
/// projections, dense MLP, routed and shared experts), while embeddings, `lm_head`, norms, the router
/// `mlp.gate.weight`, `e_score_correction_bias` and the MTP layer's `eh_proj` and `shared_head.head` keep their
/// precision; for gpt-oss and Kimi K2-Thinking's 4-bit targets, the routed experts alone. Casts keep the tensors
/// the family holds in F32 (router biases). `--include`/`--exclude` globs override the default: a tensor matching
/// an exclude is never converted, one matching an include always is.
public struct TensorSelection: Sendable {
  public var includes: [Glob]
  public var excludes: [Glob]

  public init(includes: [Glob] = [], excludes: [Glob] = []) {
    self.includes = includes
    self.excludes = excludes
  }

  /// True if the weight whose main tensor is `name` (shape `shape`) is converted for `target`.
  public func selects(
    _ name: String, shape: [Int], dtype: DType, storage: WeightStorage, target: ConversionTarget, classifier: TensorClassifier
  ) -> Bool {
    if excludes.contains(where: { $0.matches(name) }) { return false }
    if includes.contains(where: { $0.matches(name) }) { return true }
    switch target {
    case .cast, .unscaledFP8:
      // Everything quantized is decoded (an unscaled FP8 output has no quantization_config, so block codes
      // copied with their scales would load as unscaled values); plain floating tensors are cast too, except
      // F32 router biases, which keep their precision (selection sums are precision-sensitive).
      if storage != .plain { return true }
      return dtype.isFloatingPoint && dtype.bitWidth >= 16 && dtype != .complex64 && !classifier.family.keepsFullPrecision(name)
    case .fp8:
      return classifier.family.releaseQuantizes(name, shape: shape, width: .eightBit, classifier: classifier)
    case .group:
      return classifier.family.releaseQuantizes(name, shape: shape, width: .fourBit, classifier: classifier)
    case .mixed:
      return false
    }
  }

  /// True if the stacked routed-expert tensor `name` (`[E, out, in]`, which only a lossless repack converts) is
  /// converted for `target`: globs as for `selects`, else when the family's release quantizes routed experts at
  /// the target's width.
  public func selectsExpertStack(_ name: String, target: ConversionTarget, classifier: TensorClassifier) -> Bool {
    if excludes.contains(where: { $0.matches(name) }) { return false }
    if includes.contains(where: { $0.matches(name) }) { return true }
    switch target {
    case .fp8: return classifier.family.releaseQuantizesExpertStack(name, width: .eightBit, classifier: classifier)
    case .group: return classifier.family.releaseQuantizesExpertStack(name, width: .fourBit, classifier: classifier)
    default: return false
    }
  }

  /// Whether a tensor matched by a recipe rule is converted with `target`: casts take any floating tensor;
  /// quantizing schemes take linear weights (a 2-D `weight`), never the router or the embeddings (which
  /// `--include` can still force).
  public static func isRuleCandidate(_ name: String, shape: [Int], target: ConversionTarget, classifier: TensorClassifier) -> Bool {
    if case .cast = target { return true }
    guard shape.count == 2, name.hasSuffix(".weight") else { return false }
    let place = classifier.classify(name)
    let embeddingModules: Set<Substring> = ["embed_tokens", "embed_in", "wte", "embed"]
    return place.role != .router && place.role != .embedding && !embeddingModules.contains(place.module)
  }
}
