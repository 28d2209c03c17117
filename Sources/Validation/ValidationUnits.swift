import Checkpoint
import ReferenceModel
import SafeTensors
import TensorCore
import WeightFormats
import WeightSources

/// One independent piece of a validation. A run is its units in order (`Validator.units()`), each producing a
/// `ValidationFragment`; `smelt validate --part I/N` runs some of them and `--finalize` assembles all.
public enum ValidationUnit: Sendable, Hashable, CustomStringConvertible {
  /// The tensor level of one logical weight.
  case tensor(String)
  /// The layer level of one decoder layer on random inputs (a `--layers` subset: no forward pass).
  case layer(Int)
  /// The reference forward pass and everything that needs it: the layer level on the reference's own
  /// activations, and the model level.
  case forward

  public var isTensor: Bool { if case .tensor = self { true } else { false } }

  public var description: String {
    switch self {
    case .tensor(let name): "tensor \(name)"
    case .layer(let layer): "layer \(layer)"
    case .forward: "forward passes"
    }
  }
}

/// What one unit measured: its share of the report.
public struct ValidationFragment: Sendable {
  public var tensors: [TensorComparison] = []
  public var linears: [LinearComparison] = []
  public var routing: [RoutingAgreement] = []
  public var model: ModelComparison?
  public var notes: [String] = []

  public init() {}
}

extension Validator {
  var needsModel: Bool { options.levels.contains(.model) }
  var needsLayer: Bool { options.levels.contains(.layer) }
  /// Whether the layer level also feeds each linear the reference model's own activations.
  var hiddenInputs: Bool { needsLayer && (options.hiddenStateInputs ?? (options.layers == nil)) }
  /// Whether a reference forward pass runs (the model level's baseline, the layer level's real inputs).
  var needsForward: Bool { needsModel || hiddenInputs }

  /// The units of this validation, in report order: one per selected weight (tensor level), then either
  /// the forward passes (which carry the whole layer level) or one per decoder layer with linears.
  public func units() -> [ValidationUnit] {
    var units: [ValidationUnit] = []
    if options.levels.contains(.tensor) {
      units += reference.logicalNames.filter { isSelected(TensorName($0)) }.map { .tensor($0) }
    }
    if needsForward {
      units.append(.forward)
    } else if needsLayer {
      units += linearNamesByLayer().keys.sorted().map { .layer($0) }
    }
    return units
  }

  /// The bytes a unit reads from both checkpoints: its weights' stored bytes on each side; a forward
  /// pass reads every weight of its side once.
  public func cost(of unit: ValidationUnit) -> Int {
    func bytes(_ names: [String]) -> Int {
      names.reduce(0) { $0 + reference.storedByteCount(of: $1) + candidate.storedByteCount(of: $1) }
    }
    switch unit {
    case .tensor(let name):
      return bytes([name])
    case .layer(let layer):
      return bytes(linearNamesByLayer()[layer] ?? [])
    case .forward:
      let all = reference.logicalNames.reduce(0) { $0 + reference.storedByteCount(of: $1) }
        + candidate.logicalNames.reduce(0) { $0 + candidate.storedByteCount(of: $1) }
      return needsModel ? 2 * all : all
    }
  }

  /// Runs one unit.
  /// - Throws: configuration problems of the layer and model levels (see `run(log:)`).
  public func run(_ unit: ValidationUnit, log: (String) -> Void = { _ in }) throws -> ValidationFragment {
    var fragment = ValidationFragment()
    switch unit {
    case .tensor(let name):
      fragment.tensors.append(compareTensor(name, TensorName(name)))
    case .layer(let layer):
      let configuration = try checkedConfiguration()
      if layer == linearNamesByLayer().keys.min() { log("layer level: comparing linears") }
      try compareLayer(
        layer, linears: linearNamesByLayer()[layer] ?? [], configuration: configuration, captured: [:],
        into: &fragment, log: log)
    case .forward:
      let configuration = try checkedConfiguration()
      let tokens = try resolvedTokens(configuration)
      log("reference forward pass on \(tokens.count)×\(tokens.first?.count ?? 0) tokens")
      var model = try ReferenceModel(configuration: configuration, weights: reference)
      try model.checkWeightShapes()
      let linears = needsLayer ? linearNamesByLayer() : [:]
      let captured = hiddenInputs ? CapturedLinearInputs(wanted: Set(linears.values.joined())) : nil
      model.linearInputObserver = captured?.observer
      if needsLayer { log("layer level: comparing linears") }
      // Each layer's linears are compared right after the reference ran it, on the inputs it captured.
      let referenceRun = try model.forward(tokens, options: ForwardOptions(recordLayerOutputs: true, recordRouting: true)) {
        layer, _ in
        guard let names = linears[layer] else { return }
        try compareLayer(
          layer, linears: names, configuration: configuration, captured: captured?.take() ?? [:], into: &fragment,
          log: log)
      }
      // Layers the forward pass does not run (the MTP block): random inputs only.
      for layer in linears.keys.sorted() where layer >= configuration.layerCount {
        try compareLayer(
          layer, linears: linears[layer] ?? [], configuration: configuration, captured: [:], into: &fragment, log: log)
      }
      if needsModel {
        log("candidate forward pass")
        let model = try ReferenceModel(configuration: configuration, weights: candidate)
        try model.checkWeightShapes()
        let candidateRun = try model.forward(tokens, options: ForwardOptions(recordLayerOutputs: true, recordRouting: true))
        fragment.model = compareModels(tokens: tokens, reference: referenceRun, candidate: candidateRun)
      }
    }
    return fragment
  }

  /// The report of the units' fragments, in `units()` order.
  public func assemble(_ fragments: [ValidationFragment]) -> ValidationReport {
    var report = ValidationReport(
      reference: reference.directory, candidate: candidate.directory,
      levels: options.levels.sorted(), layers: options.layers, experts: options.experts,
      thresholds: options.thresholds)
    if options.levels.contains(.model) { report.modelGate = options.modelGate }
    for fragment in fragments { report.tensors += fragment.tensors }
    if options.levels.contains(.tensor), let note = candidateOnlyNote() { report.notes.append(note) }
    if (needsLayer || needsModel) && !needsForward {
      report.notes.append("layer level on a --layers subset uses random inputs only (no reference forward pass)")
    }
    for fragment in fragments {
      report.linears += fragment.linears
      report.routing += fragment.routing
      if let model = fragment.model { report.model = model }
      report.notes += fragment.notes
    }
    return report
  }
}

extension Validator {
  /// A digest of what decides the report besides the options: the units and every tensor's name, dtype,
  /// shape and place on both sides, so parts of a validation over inputs that changed in between refuse to
  /// be assembled.
  public func inputFingerprint(units: [ValidationUnit]) -> String {
    var hasher = SHA256()
    for unit in units { hasher.update(Array("\(unit);".utf8)) }
    for (side, provider) in [("reference", reference), ("candidate", candidate)] {
      hasher.update(Array("\(side):\(provider.directory);".utf8))
      for entry in provider.source.entries {
        hasher.update(Array("\(entry.name)|\(entry.dtype)|\(entry.shape)|\(entry.dataOffsets);".utf8))
      }
    }
    return SHA256.hexString(hasher.finalize())
  }

  /// Peak memory of a process running `units` with `workers` threads (`ResourcePlan`'s input): the tensor
  /// and layer levels stream `chunkElementCount` elements per side, decoded to F32 (twice: the rows and the
  /// decoder's own buffer), and decode a 4-bit weight whole; the forward passes hold one layer's weights,
  /// the residual stream of every layer of both runs and the logits.
  public func peakResidentBytes(units: [ValidationUnit]) -> Int {
    var largestWhole = 0
    var largestLayer = 0
    var layerBytes: [Int: Int] = [:]
    for name in reference.logicalNames {
      let elements = ((try? reference.shape(of: name)) ?? []).reduce(1, *)
      if let storage = candidate.storage(of: name), !WeightDecoding.streamsRows(storage) { largestWhole = max(largestWhole, elements * 4) }
      if let storage = reference.storage(of: name), !WeightDecoding.streamsRows(storage) { largestWhole = max(largestWhole, elements * 4) }
      if let layer = TensorName(name).layer { layerBytes[layer, default: 0] += elements * 4 }
    }
    largestLayer = layerBytes.values.max() ?? 0
    let chunk = min(options.chunkElementCount, reference.logicalNames.map { ((try? reference.shape(of: $0)) ?? []).reduce(1, *) }.max() ?? 0)
    var peak = 2 * 2 * chunk * 4 + 2 * largestWhole
    if units.contains(.forward), let configuration = try? reference.modelConfiguration() {
      let tokens = (options.tokens?.reduce(0) { $0 + $1.count }) ?? options.randomTokenCount * options.randomSequenceCount
      let stream = tokens * configuration.hiddenSize * 4 * (configuration.layerCount + 1)
      let logits = tokens * configuration.vocabularySize * 4
      peak = max(peak, largestLayer + 2 * (stream + logits))
    }
    return peak
  }
}
