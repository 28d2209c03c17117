import TensorCore

/// What a family's releases quantize, and what they keep.
///
/// `convert` quantizes, by default, exactly the linear weights of these roles (`--include` / `--exclude` /
/// `--rule` override): `eightBit` for FP8 targets, `fourBit` for 4-bit ones. Casts never narrow the tensors in
/// `keepFullPrecision`.
public struct ReleaseQuantization: Sendable {
  /// How the releases store their weights, in words (for `inspect` and `formats/families.md`).
  public var summary: String
  /// Roles whose linear weights an FP8 release stores in FP8.
  public var eightBit: Set<TensorRole>
  /// Roles whose linear weights a 4-bit release stores in 4 bits (the default for 4-bit targets).
  public var fourBit: Set<TensorRole>
  /// Linear weights of those roles that the release nevertheless keeps in high precision.
  public var neverQuantized: [Glob]
  /// Tensors the release keeps in F32 and casts keep as they are (router biases, V3.2's indexer LayerNorm).
  public var keepFullPrecision: [Glob]

  public init(
    summary: String, eightBit: Set<TensorRole>, fourBit: Set<TensorRole>? = nil, neverQuantized: [Glob] = [],
    keepFullPrecision: [Glob] = [Glob("*.e_score_correction_bias")]
  ) {
    self.summary = summary
    self.eightBit = eightBit
    self.fourBit = fourBit ?? eightBit
    self.neverQuantized = neverQuantized
    self.keepFullPrecision = keepFullPrecision
  }

  /// The roles DeepSeek-V3 quantizes: every linear of the decoder blocks.
  public static let decoderLinears: Set<TensorRole> = [.attention, .denseFeedForward, .routedExpert, .sharedExpert]
}

/// The precision class of a quantizing target, for `ReleaseQuantization`.
public enum QuantizationWidth: Sendable {
  case eightBit
  case fourBit
}

extension ModelFamily {
  /// True when the family's release quantizes the weight `name` (shape `shape`) at `width`.
  public func releaseQuantizes(_ name: String, shape: [Int], width: QuantizationWidth, classifier: TensorClassifier) -> Bool {
    guard TensorClassifier.isLinearWeight(name, shape: shape) else { return false }
    let roles = width == .eightBit ? quantization.eightBit : quantization.fourBit
    guard roles.contains(classifier.classify(name).role) else { return false }
    return !quantization.neverQuantized.contains { $0.matches(name) }
  }

  /// True when `name` is a stacked routed-expert tensor (`[E, ...]`, fused experts) of a role the release
  /// quantizes at `width`: no quantizer takes such a tensor, but a lossless repack of native 4-bit codes does.
  public func releaseQuantizesExpertStack(_ name: String, width: QuantizationWidth, classifier: TensorClassifier) -> Bool {
    let place = classifier.classify(name)
    guard place.isFusedExperts, place.role == .routedExpert else { return false }
    return (width == .eightBit ? quantization.eightBit : quantization.fourBit).contains(.routedExpert)
      && !quantization.neverQuantized.contains { $0.matches(name) }
  }

  /// True for tensors casts keep at their own precision.
  public func keepsFullPrecision(_ name: String) -> Bool {
    quantization.keepFullPrecision.contains { $0.matches(name) }
  }
}

/// What tensor parallelism may split, per module (the second-to-last name component, as DeepSeek's
/// `convert.py` keys it). Modules not listed are replicated; routed experts are never split (they are placed
/// whole, expert parallelism).
public struct TensorParallelPlan: Sendable {
  /// Module → the dim it is split along (0: column-parallel, 1: row-parallel).
  public var splitDims: [String: Int]
  /// Modules whose split must keep attention heads whole: each device's part along the split dim must be a
  /// multiple of this head size.
  public var headAligned: [String: HeadSize]
  /// Modules tensor parallelism refuses, with the reason.
  public var refusedModules: [String: String]
  /// Set when the family cannot be split at all (the reason).
  public var refusal: String?

  public init(
    splitDims: [String: Int], headAligned: [String: HeadSize] = [:], refusedModules: [String: String] = [:],
    refusal: String? = nil
  ) {
    self.splitDims = splitDims
    self.headAligned = headAligned
    self.refusedModules = refusedModules
    self.refusal = refusal
  }

  /// Which head size a split must respect.
  public enum HeadSize: Sendable {
    /// `head_dim` rows per query head (sinks: one per head).
    case query(perHead: Int?)
    /// `head_dim` rows per key/value head.
    case keyValue
  }

  /// DeepSeek's `inference/convert.py` dims (column-parallel on dim 0, row-parallel on dim 1, vocab-parallel
  /// embedding and head); grouped-query `k_proj` / `v_proj` have no rule there.
  public static let deepSeek = TensorParallelPlan(
    splitDims: [
      "embed_tokens": 0, "q_proj": 0, "q_b_proj": 0, "kv_b_proj": 0, "o_proj": 1,
      "gate_proj": 0, "up_proj": 0, "down_proj": 1, "lm_head": 0,
    ],
    refusedModules: [
      "k_proj": "convert.py has no split rule for grouped-query attention ('k_proj'); shard without --tensor-parallel",
      "v_proj": "convert.py has no split rule for grouped-query attention ('v_proj'); shard without --tensor-parallel",
    ])

  /// Grouped-query attention with SwiGLU MLPs (Qwen3-MoE, GLM-4.5, gpt-oss, MiniMax-M2): q/k/v column-parallel
  /// with whole heads per device, `o_proj` row-parallel; biases follow their projection.
  public static let groupedQueryAttention = TensorParallelPlan(
    splitDims: [
      "embed_tokens": 0, "q_proj": 0, "k_proj": 0, "v_proj": 0, "o_proj": 1,
      "gate_proj": 0, "up_proj": 0, "down_proj": 1, "lm_head": 0,
    ],
    headAligned: ["q_proj": .query(perHead: nil), "k_proj": .keyValue, "v_proj": .keyValue])

  /// The split dim of module `key` (nil: replicated).
  public func splitDim(moduleKey key: Substring) -> Int? { splitDims[String(key)] }
}

/// The feed-forward kind of every trunk layer, from whichever config schema the checkpoint uses.
///
/// Rules, first that applies: transformers ≥ 5's `mlp_layer_types` (`dense`; `sparse`, `moe`, `hash_moe`);
/// Qwen-MoE's `mlp_only_layers` and `decoder_sparse_step` (`(i + 1) % step == 0`); DeepSeek's
/// `first_k_dense_replace` and `moe_layer_freq` (`i >= k && i % freq == 0`); MoE everywhere when the config
/// has routed experts; dense otherwise.
public struct FeedForwardLayout: Sendable, Equatable {
  public enum Kind: String, Sendable {
    case dense
    case moe
  }

  /// One entry per trunk layer (`num_hidden_layers`); empty when the config does not give the count.
  public var kinds: [Kind]
  /// MTP layers the config announces after the trunk (`num_nextn_predict_layers`, `num_mtp_modules`).
  public var mtpLayerCount: Int

  /// - Throws: `CheckpointError.invalidConfig` for an unknown `mlp_layer_types` value, a list of the wrong
  ///   length, a non-positive `decoder_sparse_step` / `moe_layer_freq`, or a negative `first_k_dense_replace`.
  public init(config: ModelConfig, path: String) throws {
    func invalid(_ field: String, _ reason: String) -> CheckpointError {
      .invalidConfig(path: path, field: (config.hasTextConfig ? "text_config." : "") + field, reason: reason)
    }
    mtpLayerCount = max(0, config.numNextnPredictLayers ?? config.numMtpModules ?? 0)
    guard let count = config.numHiddenLayers, count >= 0 else {
      kinds = []
      return
    }
    let hasExperts = (config.routedExpertCount ?? 0) > 0
    if let types = config.mlpLayerTypes {
      guard types.count == count else {
        throw invalid("mlp_layer_types", "has \(types.count) entries but num_hidden_layers is \(count)")
      }
      kinds = try types.map { type in
        switch type {
        case "dense": return .dense
        case "sparse", "moe", "hash_moe": return .moe
        default: throw invalid("mlp_layer_types", "'\(type)' is not a known layer kind ('dense', 'sparse', 'moe', 'hash_moe')")
        }
      }
      return
    }
    if config.decoderSparseStep != nil || config.mlpOnlyLayers != nil {
      let step = config.decoderSparseStep ?? 1
      guard step > 0 else { throw invalid("decoder_sparse_step", "must be positive, found \(step)") }
      let denseLayers = Set(config.mlpOnlyLayers ?? [])
      kinds = (0..<count).map { i in hasExperts && !denseLayers.contains(i) && (i + 1) % step == 0 ? .moe : .dense }
      return
    }
    if config.firstKDenseReplace != nil || config.moeLayerFreq != nil {
      let first = config.firstKDenseReplace ?? 0
      let frequency = config.moeLayerFreq ?? 1
      guard first >= 0 else { throw invalid("first_k_dense_replace", "must not be negative, found \(first)") }
      guard frequency > 0 else { throw invalid("moe_layer_freq", "must be positive, found \(frequency)") }
      kinds = (0..<count).map { i in hasExperts && i >= first && i % frequency == 0 ? .moe : .dense }
      return
    }
    kinds = Array(repeating: hasExperts ? .moe : .dense, count: count)
  }
}
