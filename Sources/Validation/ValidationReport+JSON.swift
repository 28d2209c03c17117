import JSON

extension ValidationReport {
  /// The schema identifier written as `"schema"`; bump the number on incompatible changes.
  public static let schema = DocumentSchema.validationReport

  /// The report as JSON (schema: `formats/validation-report.md`).
  public var json: JSONValue {
    var members: [(String, JSONValue)] = [
      ("schema", .string(Self.schema)),
      ("reference", .string(reference)),
      ("candidate", .string(candidate)),
      ("levels", .array(levels.map { .string($0.rawValue) })),
      ("layers", layers.map { .string($0.description) } ?? .null),
      ("experts", experts.map { .string($0.description) } ?? .null),
      (
        "thresholds",
        .object(members: [
          ("min_snr_db", optionalNumber(thresholds.minimumSNRDecibels)),
          ("min_cosine", optionalNumber(thresholds.minimumCosine)),
          ("max_peak_error", optionalNumber(thresholds.maximumPeakError)),
          ("max_mean_kl", optionalNumber(thresholds.maximumMeanKL)),
          ("min_top1", optionalNumber(thresholds.minimumTop1Agreement)),
        ])
      ),
      ("gates", gatesJSON),
      ("passed", .bool(passed)),
      ("failures", .array(failures.map(Self.json))),
      ("summary", summaryJSON),
      ("tensors", .array(tensors.map(Self.json))),
      ("linears", .array(linears.map(Self.json))),
      ("routing", .array(routing.map(Self.json))),
    ]
    members.append(("model", model.map(Self.json) ?? .null))
    members.append(("notes", .array(notes.map { .string($0) })))
    return .object(members: members)
  }

  /// What was judged: the tensor/layer defaults by storage (or the explicit options), and the model-level
  /// preset with its limits (`null` without the model level).
  var gatesJSON: JSONValue {
    let model: JSONValue = modelGate.map { gate in
      .object(members: [
        ("preset", .string(gate.preset.name)), ("origin", .string(gate.origin)),
        ("max_mean_kl", optionalNumber(gate.maximumMeanKL)), ("min_top1", optionalNumber(gate.minimumTop1Agreement)),
        ("none", .bool(gate.maximumMeanKL == nil && gate.minimumTop1Agreement == nil)),
      ])
    } ?? .null
    return .object(members: [
      ("tensor", .string(thresholds.minimumSNRDecibels == nil && thresholds.maximumPeakError == nil ? "by-storage" : "explicit")),
      ("model", model),
    ])
  }

  /// Worst values per level, for dashboards and the closing figures.
  var summaryJSON: JSONValue {
    let tensorSNRs = tensors.compactMap(\.metrics.snrDecibels)
    let convertedTensors = tensors.filter { $0.metrics.snrDecibels.map { $0.isFinite } ?? false }
    let meanTensorSNR =
      convertedTensors.isEmpty
      ? nil : convertedTensors.compactMap(\.metrics.snrDecibels).reduce(0, +) / Double(convertedTensors.count)
    func minimum(_ values: [Double]) -> Double? { values.min() }
    let linearSNR = { (input: LinearInput) in
      minimum(self.linears.filter { $0.input == input }.compactMap(\.metrics.snrDecibels))
    }
    return .object(members: [
      ("tensors", number(tensors.count)),
      ("tensors_failed", number(tensors.filter { $0.failure != nil }.count)),
      ("tensors_changed", number(convertedTensors.count)),
      ("zero_reference_tensors", number(tensors.filter { !$0.leftOut && $0.metrics.referenceIsZero }.count)),
      ("left_out_tensors", number(tensors.filter(\.leftOut).count)),
      ("min_tensor_snr_db", snr(minimum(tensorSNRs))),
      ("mean_changed_tensor_snr_db", optionalNumber(meanTensorSNR)),
      ("min_tensor_cosine", optionalNumber(minimum(tensors.map(\.metrics.cosineSimilarity)))),
      ("max_tensor_peak_error", optionalNumber(tensors.compactMap(\.metrics.peakError).max())),
      ("linears", number(linears.count)),
      ("linears_failed", number(linears.filter { $0.failure != nil }.count)),
      ("min_linear_snr_random_db", snr(linearSNR(.random))),
      ("min_linear_snr_hidden_db", snr(linearSNR(.hidden))),
      ("min_routing_unchanged", optionalNumber(minimum(routing.map(\.unchangedFraction)))),
    ])
  }

  static func json(_ failure: ValidationFailure) -> JSONValue {
    .object(members: [
      ("level", .string(failure.level.rawValue)),
      ("subject", .string(failure.subject)),
      ("layer", optionalNumber(failure.layer)),
      ("expert", optionalNumber(failure.expert)),
      ("message", .string(failure.message)),
    ])
  }

  static func json(_ t: TensorComparison) -> JSONValue {
    .object(members: 
      [
        ("name", .string(t.name)),
        ("layer", optionalNumber(t.layer)),
        ("expert", optionalNumber(t.expert)),
        ("shape", .array(t.shape.map { number($0) })),
        ("reference_storage", .string(t.referenceStorage)),
        ("candidate_storage", .string(t.candidateStorage)),
      ] + metricsMembers(t.metrics) + [
        ("min_snr_db", snr(t.minimumSNRDecibels)),
        ("max_peak_error", optionalNumber(t.maximumPeakError)),
        ("status", .string(t.failure != nil ? "fail" : t.leftOut ? "left_out" : "pass")),
        ("failure", t.failure.map { .string($0) } ?? .null),
        ("note", t.note.map { .string($0) } ?? .null),
      ])
  }

  static func json(_ l: LinearComparison) -> JSONValue {
    .object(members: 
      [
        ("name", .string(l.name)),
        ("layer", optionalNumber(l.layer)),
        ("expert", optionalNumber(l.expert)),
        ("input", .string(l.input.rawValue)),
        ("rows", number(l.rowCount)),
      ] + metricsMembers(l.metrics) + [
        ("min_snr_db", snr(l.minimumSNRDecibels)),
        ("status", .string(l.failure == nil ? "pass" : "fail")),
        ("failure", l.failure.map { .string($0) } ?? .null),
        ("note", l.note.map { .string($0) } ?? .null),
      ])
  }

  static func json(_ r: RoutingAgreement) -> JSONValue {
    .object(members: [
      ("layer", number(r.layer)),
      ("tokens", number(r.tokenCount)),
      ("unchanged", number(r.unchangedCount)),
      ("unchanged_fraction", optionalNumber(r.unchangedFraction)),
      ("source", .string(r.source)),
    ])
  }

  static func json(_ m: ModelComparison) -> JSONValue {
    .object(members: [
      ("tokens", .array(m.tokens.map { .array($0.map { number($0) }) })),
      ("positions", number(m.positionCount)),
      ("kl_mean", optionalNumber(m.meanKL)),
      ("kl_mean_standard_error", optionalNumber(m.meanKLStandardError)),
      ("kl_p99", optionalNumber(m.p99KL)),
      ("kl_max", optionalNumber(m.maxKL)),
      ("top1_agreement", optionalNumber(m.top1Agreement)),
      ("top1_agreements", number(m.top1Agreements)),
      ("top1_standard_error", optionalNumber(m.top1StandardError)),
      ("perplexity_reference", optionalNumber(m.referencePerplexity)),
      ("perplexity_candidate", optionalNumber(m.candidatePerplexity)),
      ("perplexity_ratio", optionalNumber(m.perplexityRatio)),
      ("max_abs_logit_diff", optionalNumber(m.maxAbsoluteLogitDifference)),
      ("logits_snr_db", snr(m.logits.snrDecibels)),
      ("logits_cosine", optionalNumber(m.logits.cosineSimilarity)),
      (
        "hidden_states",
        .array(
          m.hiddenStates.map { h in
            .object(members: [
              ("layer", number(h.layer)), ("cosine", optionalNumber(h.metrics.cosineSimilarity)),
              ("snr_db", snr(h.metrics.snrDecibels)), ("rel_error", optionalNumber(h.relativeError)),
            ])
          })
      ),
      ("routing", .array(m.routing.map(json))),
      ("failures", .array(m.failures.map { .string($0) })),
    ])
  }

  static func metricsMembers(_ m: ComparisonMetrics) -> [(String, JSONValue)] {
    [
      ("elements", number(m.elementCount)),
      ("snr_db", snr(m.snrDecibels)),
      ("cosine", optionalNumber(m.cosineSimilarity)),
      ("max_abs_error", optionalNumber(m.maxAbsoluteError)),
      ("max_rel_error", optionalNumber(m.maxRelativeError)),
      ("peak_error", optionalNumber(m.peakError)),
      ("zero_reference", .bool(m.referenceIsZero)),
      ("non_finite", number(m.nonFiniteCount)),
    ]
  }
}

private func number(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }

private func optionalNumber(_ value: Int?) -> JSONValue { value.map { number($0) } ?? .null }

/// A finite number, else `null`.
private func optionalNumber(_ value: Double?) -> JSONValue {
  guard let value, value.isFinite, let number = JSONNumber(value) else { return .null }
  return .number(number)
}

/// SNR: a number, `"inf"` / `"-inf"` for identical / all-noise, `null` for a zero reference.
private func snr(_ value: Double?) -> JSONValue {
  guard let value else { return .null }
  if value == .infinity { return .string("inf") }
  if value == -.infinity { return .string("-inf") }
  return optionalNumber(value)
}
