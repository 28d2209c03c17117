/// The residual stream of a batch between layers: `values[B, T, D]`.
public struct HiddenStates: Sendable, Equatable {
  public let batchSize: Int
  public let sequenceLength: Int
  public let hiddenSize: Int
  /// `[B, T, D]` row-major.
  public var values: [Float]

  /// As a tensor of shape `[B, T, D]`.
  public var tensor: FloatTensor {
    FloatTensor(validatedShape: [batchSize, sequenceLength, hiddenSize], values: values)
  }
}

/// The routing of one MoE layer: for each token (row `b·T + t`), its experts and their weights.
public struct LayerRouting: Sendable, Equatable {
  /// The layer index.
  public let layer: Int
  /// One decision per token, row-major over `[B, T]`.
  public let decisions: [RoutingDecision]
}

/// What to record besides the logits.
public struct ForwardOptions: Sendable {
  /// Keep the residual stream after every layer (`ForwardResult.layerOutputs`).
  public var recordLayerOutputs: Bool
  /// Keep each MoE layer's expert selection (`ForwardResult.routing`).
  public var recordRouting: Bool

  public init(recordLayerOutputs: Bool = false, recordRouting: Bool = true) {
    self.recordLayerOutputs = recordLayerOutputs
    self.recordRouting = recordRouting
  }
}

/// The outputs of `ReferenceModel.forward`.
public struct ForwardResult: Sendable {
  /// `[B, T, V]` F32 logits.
  public var logits: FloatTensor
  /// The embeddings (`[B, T, D]`), when `recordLayerOutputs`.
  public var embeddings: HiddenStates?
  /// The residual stream after layer `i` (`[B, T, D]`, before the final norm), when `recordLayerOutputs`.
  public var layerOutputs: [HiddenStates]
  /// Each MoE layer's routing, when `recordRouting`.
  public var routing: [LayerRouting]
}

/// An F32 CPU forward pass of a decoder-only MoE model (DeepSeek-V3's MLA, or the grouped-query families of
/// `Architecture`) over weights from a `WeightProvider`.
///
/// `forward` runs embed → layers → final norm → `lm_head`. Each layer asks the provider for its own weights
/// and drops them before the next (routed experts one at a time), and runs the whole batch through before
/// moving on, so memory is about one layer's dense weights + one expert + activations. The steps are also
/// public (`embed`, `applyLayer`, `logits`) for layer-by-layer validation.
public struct ReferenceModel {
  public let configuration: ModelConfiguration
  public let weights: any WeightProvider
  /// Called with the input rows of every product with a named linear weight (attention and MLP projections,
  /// each routed expert on the rows routed to it, the router); `nil`: nothing is observed.
  public var linearInputObserver: LinearInputObserver?

  /// A model over `weights`; throws when `configuration` is unusable.
  public init(configuration: ModelConfiguration, weights: any WeightProvider) throws {
    try configuration.validate()
    self.configuration = configuration
    self.weights = weights
  }

  /// Logits `[B, T, V]` for `tokens[B][T]` (every sequence the same length, positions `0..<T`).
  ///
  /// `afterLayer` runs after each decoder layer with its index and output, before the next layer loads (the
  /// validator compares a layer's linears there, on the inputs `linearInputObserver` captured, so captures
  /// never outlive their layer).
  public func forward(
    _ tokens: [[Int]], options: ForwardOptions = ForwardOptions(),
    afterLayer: (_ layer: Int, _ output: HiddenStates) throws -> Void = { _, _ in }
  ) throws -> ForwardResult {
    var hidden = try embed(tokens)
    var result = ForwardResult(
      logits: .empty, embeddings: options.recordLayerOutputs ? hidden : nil, layerOutputs: [], routing: [])
    for layer in 0..<configuration.layerCount {
      let routing = try applyLayer(layer, to: &hidden)
      if options.recordRouting, let routing { result.routing.append(routing) }
      if options.recordLayerOutputs { result.layerOutputs.append(hidden) }
      try afterLayer(layer, hidden)
    }
    result.logits = try logits(hidden)
    return result
  }

  // MARK: - Embedding

  /// `h[B, T, D] = embed_tokens[tokens]`; checks the batch is rectangular and every id is in the vocabulary.
  public func embed(_ tokens: [[Int]]) throws -> HiddenStates {
    guard let first = tokens.first, !first.isEmpty else { throw ReferenceModelError.emptyInput }
    let T = first.count, D = configuration.hiddenSize, V = configuration.vocabularySize
    for (b, sequence) in tokens.enumerated() {
      guard sequence.count == T else {
        throw ReferenceModelError.raggedBatch(sequence: b, length: sequence.count, expectedLength: T)
      }
      for (t, token) in sequence.enumerated() where token < 0 || token >= V {
        throw ReferenceModelError.tokenOutOfRange(token: token, sequence: b, position: t, vocabularySize: V)
      }
    }
    // One row per distinct id, so a provider that reads rows lazily never loads the whole table.
    var rows: [Int: FloatTensor] = [:]
    for token in Set(tokens.joined()) {
      let row = try weights.weightRows(WeightNames.embedding, rows: token..<(token + 1))
      try expectShape(row, WeightNames.embedding, [1, D])
      rows[token] = row
    }
    var values = [Float]()
    values.reserveCapacity(tokens.count * T * D)
    for sequence in tokens {
      for token in sequence { values += rows[token]?.values ?? [] }
    }
    return HiddenStates(batchSize: tokens.count, sequenceLength: T, hiddenSize: D, values: values)
  }

  // MARK: - One decoder layer

  /// Runs decoder layer `layer` on `hidden` in place, with the architecture's layer (`Architectures/`): attention
  /// then feed-forward, each `h += block(norm(h))`. Returns the MoE routing (nil for a dense layer).
  @discardableResult
  public func applyLayer(_ layer: Int, to hidden: inout HiddenStates) throws -> LayerRouting? {
    guard layer >= 0, layer < configuration.layerCount else {
      throw ReferenceModelError.layerOutOfRange(layer: layer, layerCount: configuration.layerCount)
    }
    switch configuration.architecture {
    case .deepSeekV3: return try applyDeepSeekV3Layer(layer, to: &hidden)
    case .deepSeekV32(let indexer): return try applyDeepSeekV3Layer(layer, indexer: indexer, to: &hidden)
    case .qwen3MoE(let attention): return try applyQwen3MoELayer(layer, attention: attention, to: &hidden)
    case .glm4MoE(let attention): return try applyGLM4MoELayer(layer, attention: attention, to: &hidden)
    case .miniMaxM2(let attention): return try applyMiniMaxM2Layer(layer, attention: attention, to: &hidden)
    case .gptOss(let attention): return try applyGptOssLayer(layer, attention: attention, to: &hidden)
    }
  }

  /// The feed-forward half of a layer, shared by every architecture: `h += FFN(post_attention_layernorm(h))`,
  /// where FFN is the dense SwiGLU (`intermediate_size`) or the MoE block named by `names`. Returns the routing
  /// of a MoE layer.
  func applyFeedForward(_ layer: Int, names: FeedForwardNames, to hidden: inout HiddenStates) throws -> LayerRouting? {
    let c = configuration
    let D = c.hiddenSize, N = hidden.batchSize * hidden.sequenceLength
    let norm = try vector(WeightNames.layer(layer, "post_attention_layernorm.weight"), D)
    let normed = rmsNorm(hidden.values, weight: norm, rowCount: N, width: D, epsilon: c.rmsNormEpsilon)
    guard let moe = c.mixtureOfExperts, c.isMixtureOfExpertsLayer(layer) else {
      let mlp = try loadSwiGLU(WeightNames.layer(layer, "mlp"), intermediateSize: c.intermediateSize)
      hidden.values = add(hidden.values, swiGLU(normed, weights: mlp, rowCount: N, hiddenSize: D))
      return nil
    }
    let E = moe.routedExpertCount
    let routerName = WeightNames.layer(layer, names.router)
    let routerWeight = try matrix(routerName, E, D)
    linearInputObserver?(routerName, normed, N)
    let biasName = WeightNames.layer(layer, names.routerBias)
    let bias = weights.contains(biasName) ? try vector(biasName, E) : [Float](repeating: 0, count: E)
    let shared =
      moe.sharedExpertCount > 0
      ? try loadSwiGLU(
        WeightNames.layer(layer, names.sharedExperts), intermediateSize: moe.expertIntermediateSize * moe.sharedExpertCount)
      : nil
    let (output, decisions) = try mixtureOfExperts(
      normed, routerWeight: routerWeight, bias: bias, configuration: moe, rowCount: N, hiddenSize: D,
      expert: { e in
        try loadSwiGLU(
          WeightNames.layer(layer, names.expert(e)), intermediateSize: moe.expertIntermediateSize,
          projections: names.expertProjections)
      }, shared: shared)
    hidden.values = add(hidden.values, output)
    return LayerRouting(layer: layer, decisions: decisions)
  }

  // MARK: - Output head

  /// Final RMSNorm, then `lm_head`: logits `[B, T, V]`. The head is read in slices of rows so that a large
  /// vocabulary never needs the whole matrix at once.
  public func logits(_ hidden: HiddenStates) throws -> FloatTensor {
    let c = configuration
    let D = c.hiddenSize, V = c.vocabularySize, N = hidden.batchSize * hidden.sequenceLength
    let norm = try vector(WeightNames.finalNorm, D)
    let normed = rmsNorm(hidden.values, weight: norm, rowCount: N, width: D, epsilon: c.rmsNormEpsilon)
    let headName = c.tieWordEmbeddings ? WeightNames.embedding : WeightNames.lmHead
    let sliceRows = 16_384
    var logits = [Float](repeating: 0, count: N * V)
    var start = 0
    while start < V {
      let end = min(V, start + sliceRows)
      let slice = try weights.weightRows(headName, rows: start..<end)
      try expectShape(slice, headName, [end - start, D])
      let part = matmul(normed, slice.values, rowCount: N, inputCount: D, outputCount: end - start)  // [N, slice]
      for n in 0..<N {
        for v in 0..<(end - start) { logits[n * V + start + v] = part[n * (end - start) + v] }
      }
      start = end
    }
    return FloatTensor(validatedShape: [hidden.batchSize, hidden.sequenceLength, V], values: logits)
  }

  // MARK: - Weight loading (shape-checked)

  func expectShape(_ tensor: FloatTensor, _ name: String, _ shape: [Int]) throws {
    guard tensor.shape == shape else {
      throw ReferenceModelError.weightShapeMismatch(name: name, expected: shape, actual: tensor.shape)
    }
  }

  func matrix(_ name: String, _ rows: Int, _ columns: Int) throws -> [Float] {
    let tensor = try weights.weight(name)
    try expectShape(tensor, name, [rows, columns])
    return tensor.values
  }

  /// A linear layer's weight `[rows, columns]` in the provider's storage (BF16/FP8 stay encoded).
  func linear(_ name: String, _ rows: Int, _ columns: Int) throws -> LinearWeight {
    var weight = try weights.linearWeight(name)
    guard weight.outputCount == rows, weight.inputCount == columns else {
      throw ReferenceModelError.weightShapeMismatch(
        name: name, expected: [rows, columns], actual: [weight.outputCount, weight.inputCount])
    }
    if let linearInputObserver { weight.inputTap = LinearInputTap(name: name, observer: linearInputObserver) }
    return weight
  }

  func vector(_ name: String, _ count: Int) throws -> [Float] {
    let tensor = try weights.weight(name)
    try expectShape(tensor, name, [count])
    return tensor.values
  }

  /// A SwiGLU MLP under `prefix` (`gate_proj` / `up_proj` / `down_proj`, or Mixtral's `w1` / `w3` / `w2`).
  func loadSwiGLU(
    _ prefix: String, intermediateSize I: Int, projections: SwiGLUProjectionNames = .llama
  ) throws -> SwiGLUWeights {
    let D = configuration.hiddenSize
    return SwiGLUWeights(
      gate: try linear("\(prefix).\(projections.gate).weight", I, D),
      up: try linear("\(prefix).\(projections.up).weight", I, D),
      down: try linear("\(prefix).\(projections.down).weight", D, I), intermediateSize: I)
  }

  /// An optional 1-D weight `[count]` (a bias, a norm): `nil` when `present` is false.
  func optionalVector(_ name: String, _ count: Int, present: Bool) throws -> [Float]? {
    present ? try vector(name, count) : nil
  }
}
