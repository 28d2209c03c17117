import Checkpoint
import Quantization
import ReferenceModel
import TensorCore
import WeightFormats
import WeightSources

extension Validator {
  /// The selected linears of each decoder layer, in checkpoint order.
  func linearNamesByLayer() -> [Int: [String]] {
    var linearsByLayer: [Int: [String]] = [:]
    for name in reference.logicalNames {
      let parsed = TensorName(name)
      guard let layer = parsed.layer, isSelected(parsed), Self.isLinear(parsed) else { continue }
      linearsByLayer[layer, default: []].append(name)
    }
    return linearsByLayer
  }

  /// Layer level, one decoder layer: each selected linear (attention and MLP projections, routed and shared
  /// experts, the router) run with the reference weight and with the candidate weight on the same inputs,
  /// once on seeded random rows and once on the inputs it received in the reference forward pass (`captured`,
  /// when one ran: a routed expert only on the tokens routed to it); for a MoE layer, the fraction of tokens
  /// whose expert set is unchanged when only the router weights differ.
  func compareLayer(
    _ layer: Int, linears names: [String], configuration: ModelConfiguration, captured: [String: CapturedInput],
    into fragment: inout ValidationFragment, log: (String) -> Void
  ) throws {
    log("layer \(layer): \(names.count) linears")
    for name in names {
      fragment.linears += compareLinear(name, realInput: captured[name])
    }
    if let agreement = try routingAgreement(layer: layer, configuration: configuration, captured: captured) {
      fragment.routing.append(agreement)
    }
  }

  /// 2-D projections inside a decoder layer: `*_proj.weight` (MLA's `kv_a_proj_with_mqa` too) and the router
  /// `mlp.gate.weight`.
  static func isLinear(_ name: TensorName) -> Bool {
    guard name.leaf == "weight" else { return false }
    let module = name.modulePath
    let last = module.split(separator: ".").last.map(String.init) ?? module
    return last.hasSuffix("_proj") || last == "kv_a_proj_with_mqa" || (name.isRouter && last == "gate")
  }

  private func compareLinear(_ name: String, realInput: CapturedInput?) -> [LinearComparison] {
    let parsed = TensorName(name)
    let minimumSNR = options.thresholds.minimumSNR(storages: candidate.judgedStorages(of: name), level: .layer)
    func failed(_ message: String, _ input: LinearInput) -> LinearComparison {
      LinearComparison(
        name: name, layer: parsed.layer, expert: parsed.expert, input: input, rowCount: 0,
        metrics: ComparisonMetrics.empty, minimumSNRDecibels: minimumSNR, failure: message, note: nil)
    }
    guard candidate.contains(name) else {
      if candidate.leavesOut(name) { return [] }
      return [failed("missing from the candidate", .random)]
    }
    do {
      let shape = try reference.shape(of: name)
      let candidateShape = try candidate.shape(of: name)
      guard shape.count == 2, candidateShape == shape else {
        return [failed("shape \(candidateShape) differs from the reference's \(shape)", .random)]
      }
      let outputs = shape[0], inputs = shape[1]
      var inputSets: [(input: LinearInput, x: [Float], rowCount: Int)] = []
      let rows = options.randomInputRowCount
      inputSets.append((.random, Self.randomRows(rows, inputs, seed: options.seed, salt: UInt64(inputs)), rows))
      if let realInput, realInput.rowCount > 0, realInput.values.count == realInput.rowCount * inputs {
        inputSets.append((.hidden, realInput.values, realInput.rowCount))
      }
      // Output rows of W in chunks (≤ chunkElementCount weights per side), so memory stays bounded on
      // 18432 × 7168 dense projections; every input set reuses the chunk.
      var accumulators = [ErrorStatistics](repeating: ErrorStatistics(), count: inputSets.count)
      let chunkRows = max(1, options.chunkElementCount / max(1, inputs))
      var start = 0
      while start < outputs {
        let range = start..<min(outputs, start + chunkRows)
        let w0 = try reference.weightRows(name, rows: range).values
        let w1 = try candidate.weightRows(name, rows: range).values
        for (i, set) in inputSets.enumerated() {
          let y0 = matmul(set.x, w0, rowCount: set.rowCount, inputCount: inputs, outputCount: range.count)
          let y1 = matmul(set.x, w1, rowCount: set.rowCount, inputCount: inputs, outputCount: range.count)
          y0.withUnsafeBufferPointer { r in
            y1.withUnsafeBufferPointer { c in accumulators[i].addParallel(reference: r, candidate: c) }
          }
        }
        start = range.upperBound
      }
      return zip(inputSets, accumulators).map { set, accumulator in
        let metrics = ComparisonMetrics(accumulator)
        let (failure, note) = judge(metrics, minimumSNR: minimumSNR)
        return LinearComparison(
          name: name, layer: parsed.layer, expert: parsed.expert, input: set.input, rowCount: set.rowCount,
          metrics: metrics, minimumSNRDecibels: minimumSNR, failure: failure, note: note)
      }
    } catch {
      return [failed("cannot compare: \(error)", .random)]
    }
  }

  /// `rows × width` standard-normal values, the same for the same seed, salt and size.
  static func randomRows(_ rows: Int, _ width: Int, seed: UInt64, salt: UInt64) -> [Float] {
    var generator = SplitMix64(seed: seed ^ (salt &* 0x9E37_79B9_7F4A_7C15))
    return (0..<(rows * width)).map { _ in generator.nextGaussian() }
  }

  /// The routing agreement of MoE layer `layer`: reference vs candidate router (weight and correction bias) on
  /// the same inputs (the router's input in the reference forward pass, or random rows without one).
  private func routingAgreement(
    layer: Int, configuration: ModelConfiguration, captured: [String: CapturedInput]
  ) throws -> RoutingAgreement? {
    guard let moe = configuration.mixtureOfExperts else { return nil }
    let names = configuration.architecture.feedForwardNames
    let gateName = WeightNames.layer(layer, names.router)
    let biasName = WeightNames.layer(layer, names.routerBias)
    guard reference.contains(gateName), candidate.contains(gateName) else { return nil }
    let referenceGate = try reference.weight(gateName), candidateGate = try candidate.weight(gateName)
    let E = moe.routedExpertCount
    guard referenceGate.shape.count == 2, referenceGate.shape[0] == E, candidateGate.shape == referenceGate.shape else {
      return nil
    }
    let D = referenceGate.shape[1]
    func bias(_ provider: CheckpointWeightProvider) throws -> [Float] {
      provider.contains(biasName) ? try provider.weight(biasName).values : [Float](repeating: 0, count: E)
    }
    let referenceBias = try bias(reference), candidateBias = try bias(candidate)
    let x: [Float], rowCount: Int, source: String
    if let real = captured[gateName], real.rowCount > 0, real.values.count == real.rowCount * D {
      (x, rowCount, source) = (real.values, real.rowCount, "layer-hidden")
    } else {
      rowCount = options.randomInputRowCount
      (x, source) = (Self.randomRows(rowCount, D, seed: options.seed, salt: UInt64(D) &+ 1), "layer-random")
    }
    let referenceLogits = matmul(x, referenceGate.values, rowCount: rowCount, inputCount: D, outputCount: E)
    let candidateLogits = matmul(x, candidateGate.values, rowCount: rowCount, inputCount: D, outputCount: E)
    var unchanged = 0
    for n in 0..<rowCount {
      let a = Self.route(Array(referenceLogits[(n * E)..<((n + 1) * E)]), bias: referenceBias, moe)
      let b = Self.route(Array(candidateLogits[(n * E)..<((n + 1) * E)]), bias: candidateBias, moe)
      if Set(a.expertIDs) == Set(b.expertIDs) { unchanged += 1 }
    }
    return RoutingAgreement(layer: layer, tokenCount: rowCount, unchangedCount: unchanged, source: source)
  }

  static func route(_ logits: [Float], bias: [Float], _ moe: MixtureOfExpertsConfiguration) -> RoutingDecision {
    switch moe.router {
    case .sigmoidGroupLimited(let groupCount, let selectedGroupCount, let maskedScore):
      routeSigmoidGroupLimited(
        logits: logits, bias: bias, groupCount: groupCount, selectedGroupCount: selectedGroupCount,
        expertsPerToken: moe.expertsPerToken, normalize: moe.normalizeTopK, scalingFactor: moe.routedScalingFactor,
        maskedScore: maskedScore)
    case .softmaxTopK:
      routeSoftmaxTopK(
        logits: logits, expertsPerToken: moe.expertsPerToken, normalize: moe.normalizeTopK,
        scalingFactor: moe.routedScalingFactor)
    case .softmaxOverTopK:  // gpt-oss: the router bias is part of the logits
      routeSoftmaxOverTopK(logits: zip(logits, bias).map { $0 + $1 }, expertsPerToken: moe.expertsPerToken)
    }
  }
}
