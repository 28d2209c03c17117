import JSON

/// The lossless encoding of fragments that a validation part stores in its receipt, for `--finalize` to
/// assemble: every field of every comparison, doubles in shortest round-trip form (`"inf"`, `"-inf"`,
/// `"nan"` for the values JSON lacks), so the assembled report is the one a single run writes, to the bit.
/// (The published report, `ValidationReport.json`, is derived and lossy: it cannot be read back.)
extension ValidationFragment {
  public var json: JSONValue {
    .object(members: [
      ("tensors", .array(tensors.map(Codec.encode))), ("linears", .array(linears.map(Codec.encode))),
      ("routing", .array(routing.map(Codec.encode))), ("model", model.map(Codec.encode) ?? .null),
      ("notes", .array(notes.map { .string($0) })),
    ])
  }

  /// Decodes `json`; `nil` when it is not a fragment this code wrote.
  public init?(json: JSONValue) {
    guard let tensors = json["tensors"]?.arrayValue?.map(Codec.tensor), let linears = json["linears"]?.arrayValue?.map(Codec.linear),
      let routing = json["routing"]?.arrayValue?.map(Codec.routing), let notes = json["notes"]?.arrayValue?.map(\.stringValue),
      let model = json["model"]
    else { return nil }
    guard let t = Codec.all(tensors), let l = Codec.all(linears), let r = Codec.all(routing), let n = Codec.all(notes) else { return nil }
    self.init()
    (self.tensors, self.linears, self.routing, self.notes) = (t, l, r, n)
    if !model.isNull {
      guard let decoded = Codec.model(model) else { return nil }
      self.model = decoded
    }
  }
}

private enum Codec {
  static func all<T>(_ values: [T?]) -> [T]? {
    var result: [T] = []
    for value in values {
      guard let value else { return nil }
      result.append(value)
    }
    return result
  }

  // MARK: Scalars

  static func double(_ value: Double) -> JSONValue {
    if let number = JSONNumber(value) { return .number(number) }
    return .string(value.isNaN ? "nan" : value > 0 ? "inf" : "-inf")
  }

  static func double(_ value: JSONValue?) -> Double? {
    if let number = value?.numberValue { return Double(number.text) }
    switch value?.stringValue {
    case "inf": return .infinity
    case "-inf": return -.infinity
    case "nan": return .nan
    default: return nil
    }
  }

  static func optional(_ value: Double?) -> JSONValue { value.map(double) ?? .null }
  static func optional(_ value: Int?) -> JSONValue { value.map { .number(JSONNumber($0)) } ?? .null }
  static func optional(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
  static func int(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }

  /// A present-or-null field: `.some(nil)` for null, `nil` when malformed.
  static func optionalInt(_ value: JSONValue?) -> Int?? {
    guard let value else { return nil }
    if value.isNull { return .some(nil) }
    return value.intValue.map { .some($0) }
  }

  static func optionalString(_ value: JSONValue?) -> String?? {
    guard let value else { return nil }
    if value.isNull { return .some(nil) }
    return value.stringValue.map { .some($0) }
  }

  static func optionalDouble(_ value: JSONValue?) -> Double?? {
    guard let value else { return nil }
    if value.isNull { return .some(nil) }
    return double(value).map { .some($0) }
  }

  // MARK: Metrics

  static func encode(_ m: ComparisonMetrics) -> JSONValue {
    .object(members: [
      ("elements", int(m.elementCount)), ("snr_db", optional(m.snrDecibels)), ("cosine", double(m.cosineSimilarity)),
      ("max_abs", double(m.maxAbsoluteError)), ("max_rel", double(m.maxRelativeError)),
      ("ref_max_abs", double(m.referenceMaxAbsolute)), ("ref_zero", .bool(m.referenceIsZero)),
      ("cand_zero", .bool(m.candidateIsZero)), ("non_finite", int(m.nonFiniteCount)),
    ])
  }

  static func metrics(_ v: JSONValue?) -> ComparisonMetrics? {
    guard let v, let elements = v["elements"]?.intValue, let snr = optionalDouble(v["snr_db"]), let cosine = double(v["cosine"]),
      let maxAbs = double(v["max_abs"]), let maxRel = double(v["max_rel"]), let refMax = double(v["ref_max_abs"]),
      let refZero = v["ref_zero"]?.boolValue, let candZero = v["cand_zero"]?.boolValue, let nonFinite = v["non_finite"]?.intValue
    else { return nil }
    var m = ComparisonMetrics(reference: [], candidate: [])
    m.elementCount = elements
    m.snrDecibels = snr
    m.cosineSimilarity = cosine
    m.maxAbsoluteError = maxAbs
    m.maxRelativeError = maxRel
    m.referenceMaxAbsolute = refMax
    m.referenceIsZero = refZero
    m.candidateIsZero = candZero
    m.nonFiniteCount = nonFinite
    return m
  }

  // MARK: Comparisons

  static func encode(_ t: TensorComparison) -> JSONValue {
    .object(members: [
      ("name", .string(t.name)), ("layer", optional(t.layer)), ("expert", optional(t.expert)),
      ("shape", .array(t.shape.map(int))), ("reference_storage", .string(t.referenceStorage)),
      ("candidate_storage", .string(t.candidateStorage)), ("metrics", encode(t.metrics)),
      ("min_snr_db", double(t.minimumSNRDecibels)), ("max_peak_error", double(t.maximumPeakError)),
      ("failure", optional(t.failure)), ("note", optional(t.note)), ("left_out", .bool(t.leftOut)),
    ])
  }

  static func tensor(_ v: JSONValue) -> TensorComparison? {
    guard let name = v["name"]?.stringValue, let layer = optionalInt(v["layer"]), let expert = optionalInt(v["expert"]),
      let shape = v["shape"]?.arrayValue.flatMap({ all($0.map(\.intValue)) }),
      let referenceStorage = v["reference_storage"]?.stringValue, let candidateStorage = v["candidate_storage"]?.stringValue,
      let metrics = metrics(v["metrics"]), let minimumSNR = double(v["min_snr_db"]), let maximumPeak = double(v["max_peak_error"]),
      let failure = optionalString(v["failure"]), let note = optionalString(v["note"])
    else { return nil }
    return TensorComparison(
      name: name, layer: layer, expert: expert, shape: shape, referenceStorage: referenceStorage,
      candidateStorage: candidateStorage, metrics: metrics, minimumSNRDecibels: minimumSNR, maximumPeakError: maximumPeak,
      failure: failure, note: note, leftOut: v["left_out"]?.boolValue ?? false)
  }

  static func encode(_ l: LinearComparison) -> JSONValue {
    .object(members: [
      ("name", .string(l.name)), ("layer", optional(l.layer)), ("expert", optional(l.expert)),
      ("input", .string(l.input.rawValue)), ("rows", int(l.rowCount)), ("metrics", encode(l.metrics)),
      ("min_snr_db", double(l.minimumSNRDecibels)), ("failure", optional(l.failure)), ("note", optional(l.note)),
    ])
  }

  static func linear(_ v: JSONValue) -> LinearComparison? {
    guard let name = v["name"]?.stringValue, let layer = optionalInt(v["layer"]), let expert = optionalInt(v["expert"]),
      let input = v["input"]?.stringValue.flatMap(LinearInput.init(rawValue:)), let rows = v["rows"]?.intValue,
      let metrics = metrics(v["metrics"]), let minimumSNR = double(v["min_snr_db"]),
      let failure = optionalString(v["failure"]), let note = optionalString(v["note"])
    else { return nil }
    return LinearComparison(
      name: name, layer: layer, expert: expert, input: input, rowCount: rows, metrics: metrics,
      minimumSNRDecibels: minimumSNR, failure: failure, note: note)
  }

  static func encode(_ r: RoutingAgreement) -> JSONValue {
    .object(members: [
      ("layer", int(r.layer)), ("tokens", int(r.tokenCount)), ("unchanged", int(r.unchangedCount)),
      ("source", .string(r.source)),
    ])
  }

  static func routing(_ v: JSONValue) -> RoutingAgreement? {
    guard let layer = v["layer"]?.intValue, let tokens = v["tokens"]?.intValue, let unchanged = v["unchanged"]?.intValue,
      let source = v["source"]?.stringValue
    else { return nil }
    return RoutingAgreement(layer: layer, tokenCount: tokens, unchangedCount: unchanged, source: source)
  }

  static func encode(_ m: ModelComparison) -> JSONValue {
    .object(members: [
      ("tokens", .array(m.tokens.map { .array($0.map(int)) })), ("kl_mean", double(m.meanKL)), ("kl_p99", double(m.p99KL)),
      ("kl_max", double(m.maxKL)), ("top1_agreements", int(m.top1Agreements)), ("positions", int(m.positionCount)),
      ("max_abs_logit_diff", double(m.maxAbsoluteLogitDifference)), ("non_finite_logits", int(m.nonFiniteLogitCount)),
      ("logits", encode(m.logits)),
      ("hidden_states", .array(m.hiddenStates.map { .object(members: [("layer", int($0.layer)), ("metrics", encode($0.metrics))]) })),
      ("routing", .array(m.routing.map(encode))), ("failures", .array(m.failures.map { .string($0) })),
      ("kl_mean_se", double(m.meanKLStandardError)), ("top1_se", double(m.top1StandardError)),
      ("ppl_reference", m.referencePerplexity.map(double) ?? .null), ("ppl_candidate", m.candidatePerplexity.map(double) ?? .null),
    ])
  }

  static func model(_ v: JSONValue) -> ModelComparison? {
    guard let tokens = v["tokens"]?.arrayValue.flatMap({ all($0.map { $0.arrayValue.flatMap { all($0.map(\.intValue)) } }) }),
      let meanKL = double(v["kl_mean"]), let p99KL = double(v["kl_p99"]), let maxKL = double(v["kl_max"]),
      let top1 = v["top1_agreements"]?.intValue, let positions = v["positions"]?.intValue,
      let maxLogit = double(v["max_abs_logit_diff"]), let nonFinite = v["non_finite_logits"]?.intValue,
      let logits = metrics(v["logits"]),
      let hidden = v["hidden_states"]?.arrayValue.flatMap({
        all($0.map { h in h["layer"]?.intValue.flatMap { layer in metrics(h["metrics"]).map { HiddenStateComparison(layer: layer, metrics: $0) } } })
      }),
      let routing = v["routing"]?.arrayValue.flatMap({ all($0.map(routing)) }),
      let failures = v["failures"]?.arrayValue.flatMap({ all($0.map(\.stringValue)) }),
      let klError = double(v["kl_mean_se"]), let top1Error = double(v["top1_se"])
    else { return nil }
    return ModelComparison(
      tokens: tokens, meanKL: meanKL, p99KL: p99KL, maxKL: maxKL, top1Agreements: top1, positionCount: positions,
      maxAbsoluteLogitDifference: maxLogit, nonFiniteLogitCount: nonFinite, logits: logits, hiddenStates: hidden,
      routing: routing, failures: failures, meanKLStandardError: klError, top1StandardError: top1Error,
      referencePerplexity: double(v["ppl_reference"]), candidatePerplexity: double(v["ppl_candidate"]))
  }

}
