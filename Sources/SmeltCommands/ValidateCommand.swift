import Checkpoint
import CommandLineSupport
import JSON
import JobParts
import Pipeline
import ReferenceModel
import SystemIO
import TensorCore
import Validation
import WeightFormats
import WeightSources

/// `smelt validate REFERENCE CANDIDATE`: a CI gate proving a conversion computes what the original does.
struct ValidateCommand: Command {
  static let configuration = CommandConfiguration(
    name: "validate",
    abstract: "Compare a converted checkpoint with its reference: weights, layers and logits; exit 1 on failure.",
    discussion: """
      Both checkpoints may be in any format Smelt reads (F32/F16/BF16, FP8 block, compressed-tensors FP8, int4, \
      GPTQ, MLX, MXFP4, NVFP4) or be smelt shard output directories; weights are matched by name. Levels: 'tensor' compares every weight dequantized to F32 (SNR, cosine, max abs/rel error); 'layer' runs \
      every linear and expert with both weights on seeded random inputs and on the reference model's own \
      activations, and compares MoE routing; 'model' runs both models on the same tokens (KL divergence mean/p99/max, \
      top-1 agreement, each mean with its standard error; perplexity ratio on real text; max |logit difference|, \
      per-layer hidden-state cosine and relative error). Defaults: --min-snr by the \
      candidate's storage (weights: 40 dB for 16/32-bit floats, 25 dB for scaled FP8, 15 dB for unscaled FP8 \
      casts, 10 dB for 4-bit formats; linear outputs 6 dB lower), --max-peak-error (max |error| / max |value| of a \
      weight, which catches a few corrupted elements the SNR barely sees) 0.01 / 0.05 / 0.15 / 0.75 for the same \
      storages, no cosine limit. Model level: every run applies (and prints) a gate preset on the mean KL and       the top-1 agreement of the logits, by default the one of the candidate's coarsest weight storage:       lossless (16/32-bit floats: KL <= 0.02, top-1 >= 80 %), fp8 (FP8 scaled or cast: KL <= 1, top-1 >= 25 %),       int8 (GGML q8_0/q6_K/q5: the same), int4 (int4, GPTQ, MLX, GGML q4 and below: KL <= 3, top-1 >= 10 %),       fp4 (MXFP4, NVFP4: the same); --preset NAME picks one, --preset none sets no model-level limit (said so       in the output), --max-kld/--min-top1 override a preset's limit. The presets come from measurements on       the bundled samples (scripts/gate-table, formats/validation-report.md): a random tiny model's logits       are nearly flat, so they are loose; tighten them from a baseline run on a real model. --layers/--experts restrict the tensor and layer levels to a \
      subset and skip the model level, with memory bounded by one tensor per side, so a 671B conversion can be \
      checked on a CI box. The JSON schema is in formats/validation-report.md. Exit status: 0 when every check \
      passes, 1 when any fails (the failing tensor and layer are named), 2 when the two could not be \
      compared (unreadable checkpoint, no config.json for the layer/model levels, different architectures, a \
      weight that cannot be decoded), 64 for usage errors.
      Cluster use: run N workers with --part I/N --json-file REPORT (same arguments); each compares its share of \
      the weights (balanced by bytes) and keeps its results in REPORT.smelt-parts/; then smelt validate \
      --finalize REPORT writes the merged report, identical to a single run's, prints the table and exits \
      like one. --emit-sbatch FILE --parts N writes the Slurm job script for all of it.
      Sensitivity: smelt validate ORIG --sensitivity --to SCHEME converts one tensor group at a time in memory \
      (each layer's attention, shared experts, routed experts, dense MLP, ... by the model family's description), \
      the rest at the original's precision, and lists the mean KL (± SE) and top-1 each costs at the model level \
      and the bytes it saves, most sensitive first (group layouts: int4, gptq, mlx-affine, mxfp4, nvfp4). \
      --write-recipe FILE writes a convert --recipe file mixing the scheme's family's levels (other group sizes, \
      MLX 8 bits, bf16), chosen greedily by KL saved per byte, that stays within --target-size (default: the size \
      of plain --to SCHEME) or reaches --target-kld; check it with convert --recipe and validate --level model.
      """,
    arguments: [
      .positional("reference", help: "The original checkpoint (directory or .safetensors file); with --finalize, the report.", optional: true),
      .positional("candidate", help: "The converted checkpoint.", optional: true),
      .option("level", valueName: "level", help: "Which comparisons to run.", default: "all", values: ["tensor", "layer", "model", "all"]),
      .option("tokens", valueName: "ids", help: "Token ids for the layer and model levels: 'ID,ID,...[;ID,...]'."),
      .option("tokens-file", valueName: "file", help: "A file of token ids (one sequence per line)."),
      .option(
        "random-tokens", valueName: "BxL",
        help: "Without --tokens: a batch BxL of B seeded random sequences of L ids, or L ids in one sequence; more positions, smaller standard errors.",
        default: TokenBatch.defaultRandomShapeText),
      .option("seed", valueName: "s", help: "Seed of the random tokens and random layer inputs.", default: "0"),
      .option("layers", valueName: "spec", help: "Only these decoder layers, e.g. 0,3,60 or 0-7 (tensor and layer levels)."),
      .option("experts", valueName: "spec", help: "Only these routed experts, e.g. 0-7."),
      .option("min-snr", valueName: "db", help: "Fail a weight or linear output below this SNR (default: by format)."),
      .option("min-cosine", valueName: "c", help: "Fail a weight or linear output below this cosine similarity."),
      .option("max-peak-error", valueName: "x", help: "Fail a weight whose max |error| exceeds X × its max |value| (default: by format)."),
      .option(
        "max-kld", valueName: "x", help: "Fail when the mean KL divergence (KLD) of the logits exceeds X (nats).",
        aliases: ["max-kl"]),
      .option("min-top1", valueName: "p", help: "Fail when the top-1 agreement is below P (a fraction, 0...1)."),
      .option(
        "preset", valueName: "name", help: "Model-level gate preset (default: by the candidate's coarsest storage; none: no model-level limit).",
        values: ValidationPreset.all.map(\.name)),
      .json, .jsonFile,
      .flag("all-rows", help: "List every tensor and linear, not only the worst ones and the failures."),
      .flag("finalize", help: "Merge the parts of REPORT (run with --part I/N --json-file REPORT) into REPORT; exit as one run."),
      .flag("resume", help: "With --part: keep the comparisons an interrupted run of the same part finished."),
    ] + SensitivityRequest.arguments + SplitJobOptions.arguments + [.quiet])

  var reference: String
  var candidate: String
  var options: ValidationOptions
  /// `--preset NAME`; `nil`: chosen by the candidate's storage.
  var preset: ValidationPreset?
  /// `--json` (or `--json-file`): the JSON report on stdout, the table on stderr.
  var json: Bool
  /// `--json-file PATH` (the tool writes stdout there); with `--finalize`, REPORT.
  var jsonPath: String?
  var allRows: Bool
  /// `--finalize REPORT`: merge the parts of REPORT.
  var finalizing: Bool
  var resume: Bool
  var split: SplitJobOptions
  /// `--sensitivity --to SCHEME`: measure the original's groups instead of comparing two checkpoints.
  var sensitivity: SensitivityRequest?
  /// What a run records as its command (the parts' job description).
  var recorded: [String]
  var scriptCommand: [String]

  /// The path options and positionals (made absolute in a job script).
  static let pathArguments: Set<String> = ["reference", "candidate", "json-file", "tokens-file"]

  init(arguments: ParsedArguments) throws {
    finalizing = arguments.flag("finalize")
    sensitivity = try SensitivityRequest.parse(arguments)
    resume = arguments.flag("resume")
    split = try SplitJobOptions(arguments: arguments)
    recorded = SplitJobOptions.recordedCommand("validate", arguments)
    scriptCommand = SplitJobOptions.scriptCommand("validate", arguments, paths: Self.pathArguments)
    json = arguments.flag("json")
    jsonPath = arguments.optionalString("json-file")
    allRows = arguments.flag("all-rows")
    if finalizing {
      guard let report = arguments.optionalString("reference"), arguments.optionalString("candidate") == nil else {
        throw UsageError.invalid("--finalize takes one argument: the report the parts were run with (--json-file REPORT)")
      }
      (reference, candidate, jsonPath, options, preset) = ("", "", report, ValidationOptions(), nil)
      return
    }
    reference = try arguments.string("reference")
    candidate = sensitivity == nil ? try arguments.string("candidate") : ""
    if !split.part.isWhole || split.script != nil {
      guard jsonPath != nil else {
        throw UsageError.invalid("--part and --emit-sbatch need --json-file REPORT: where --finalize writes the merged report (the parts keep theirs in REPORT.smelt-parts/)")
      }
    }
    var options = ValidationOptions()
    func selection(_ name: String) throws -> IndexSelection? {
      guard let text = arguments.optionalString(name) else { return nil }
      do { return try IndexSelection(parsing: text, option: "--\(name)") } catch { throw UsageError.invalid("\(error)") }
    }
    options.layers = try selection("layers")
    options.experts = try selection("experts")
    let level = try arguments.string("level")
    if level == "all" {
      options.levels = options.layers == nil ? [.tensor, .layer, .model] : [.tensor, .layer]
    } else if let parsed = ValidationLevel(rawValue: level) {
      options.levels = [parsed]
    }
    if options.layers != nil, options.levels.contains(.model) {
      throw UsageError.invalid("--level model runs every layer; it cannot be combined with --layers")
    }
    if arguments.isPresent("tokens") || arguments.isPresent("tokens-file") {
      options.tokens = try ForwardCommand.tokens(arguments)
    }
    let shape = try arguments.string("random-tokens")
    guard let random = TokenBatch.randomShape(shape) else {
      throw UsageError.invalid(
        "--random-tokens '\(shape)': expected a token count L or a batch BxL (e.g. 24 or 8x32), at most 1,000,000 tokens in all")
    }
    (options.randomSequenceCount, options.randomTokenCount) = random
    options.seed = UInt64(try arguments.int("seed", in: 0...Int.max))
    options.thresholds = ValidationThresholds(
      minimumSNRDecibels: try arguments.optionalDouble("min-snr"),
      minimumCosine: try arguments.optionalDouble("min-cosine", in: -1...1),
      maximumPeakError: try arguments.optionalDouble("max-peak-error", in: 0...Double.greatestFiniteMagnitude),
      maximumMeanKL: try arguments.optionalDouble("max-kld", in: 0...Double.greatestFiniteMagnitude),
      minimumTop1Agreement: try arguments.optionalDouble("min-top1", in: 0...1))
    preset = arguments.optionalString("preset").flatMap(ValidationPreset.named)
    self.options = options
  }

  /// Exit status 2: the checkpoints could not be compared at all.
  static let couldNotCompare = ExitCode(2)

  func run(context: CommandContext) throws {
    do {
      try runChecked(context: context)
    } catch let error where Self.isComparisonError(error) && !finalizing {
      context.stderr.line("Error: \(error)")
      context.stderr.line("could not compare '\(reference)' with '\(candidate)' (exit 2)")
      throw Self.couldNotCompare
    }
  }

  /// Errors that mean the two checkpoints could not be compared (exit 2), not a refused output path or a
  /// split job's bookkeeping (exit 1).
  static func isComparisonError(_ error: any Error) -> Bool {
    error is ValidationError || error is WeightSourceError || error is ReferenceModelError || error is CheckpointError || error is WeightDecodingError
  }

  func runChecked(context: CommandContext) throws {
    if finalizing, let jsonPath { return try finalize(report: jsonPath, context: context) }
    if let sensitivity { return try runSensitivity(sensitivity, context: context) }
    let validator = try makeValidator()
    if split.script != nil { return try emitScript(validator, context: context) }
    if !split.part.isWhole { return try runPart(validator, context: context) }
    let report: ValidationReport
    do {
      report = try validator.run { context.log($0) }
    } catch ReferenceModelError.invalidTokens(let reason) {
      throw UsageError.invalid("invalid token list: \(reason)")
    }
    try validator.reference.source.checkUnchanged()
    try validator.candidate.source.checkUnchanged()
    try publish(report, context: context)
  }

  /// Opens both checkpoints (headers only), refuses a report path that is one of their files, and checks
  /// `--layers` against the model.
  func makeValidator() throws -> Validator {
    let referenceWeights = try CheckpointWeightProvider(path: reference)
    let candidateWeights = try CheckpointWeightProvider(path: candidate, comparedWith: referenceWeights)
    if let jsonPath {
      try OutputDirectory.refuseReplacingInput(
        file: jsonPath, inputs: referenceWeights.source.inputFilePaths + candidateWeights.source.inputFilePaths)
    }
    if let layers = options.layers, let count = referenceWeights.source.config?.numHiddenLayers {
      let limit = count + (referenceWeights.source.config?.numNextnPredictLayers ?? 0)
      do { try layers.check(below: limit, option: "--layers") } catch { throw UsageError.invalid("\(error)") }
    }
    var options = options
    if options.levels.contains(.model) {
      let gate = Self.modelGate(preset: preset, thresholds: options.thresholds, candidate: candidateWeights)
      options.modelGate = gate
      options.thresholds.maximumMeanKL = gate.maximumMeanKL
      options.thresholds.minimumTop1Agreement = gate.minimumTop1Agreement
    }
    return Validator(reference: referenceWeights, candidate: candidateWeights, options: options)
  }

  /// The model-level gate: `--preset` or the candidate's coarsest storage's preset, with `--max-kld` /
  /// `--min-top1` taking the place of the preset's limits where given.
  static func modelGate(
    preset: ValidationPreset?, thresholds: ValidationThresholds, candidate: CheckpointWeightProvider
  ) -> ModelGate {
    let chosen: ValidationPreset, origin: String
    if let preset {
      (chosen, origin) = (preset, "--preset")
    } else {
      let automatic = ValidationPreset.automatic(for: candidate)
      chosen = automatic.preset
      origin = automatic.decidedBy.map { name in
        "default for the candidate's coarsest storage, \(candidate.storageDescription(of: name)) (\(name))"
      } ?? "default: the candidate has no weights"
    }
    var explicit: [String] = []
    if thresholds.maximumMeanKL != nil { explicit.append("--max-kld") }
    if thresholds.minimumTop1Agreement != nil { explicit.append("--min-top1") }
    return ModelGate(
      preset: chosen, origin: explicit.isEmpty ? origin : origin + "; " + explicit.joined(separator: ", ") + " given",
      maximumMeanKL: thresholds.maximumMeanKL ?? chosen.maximumMeanKL,
      minimumTop1Agreement: thresholds.minimumTop1Agreement ?? chosen.minimumTop1Agreement)
  }

  /// Prints the table, or with `--json` the JSON report (which `--json-file PATH` sends to PATH) and the table
  /// as a log on stderr; `reportFile` (`--finalize REPORT`) writes the report there as the `--json-file` run
  /// the parts split would have. Fails when a check failed.
  func publish(_ report: ValidationReport, context: CommandContext, reportFile: String? = nil) throws {
    let table = ValidationTable.render(report, allRows: allRows)
    if json || reportFile != nil {
      let document = JSONWriter(pretty: true).string(report.json) + "\n"
      if let reportFile {
        try FileSystem.writeFileAtomically(Array(document.utf8), to: reportFile)
      } else {
        context.stdout.write(document)
      }
      if !context.isQuiet { context.stderr.write(table) }
    } else {
      context.stdout.write(table)
    }
    if !report.passed { throw ExitCode.failure }
  }
}

/// The human-readable validation report: per level a summary line, the worst rows (or all) and the failures.
enum ValidationTable {
  static let worstRowCount = 12

  static func render(_ report: ValidationReport, allRows: Bool) -> String {
    var out = "reference: \(report.reference)\ncandidate: \(report.candidate)\n"
    if let layers = report.layers { out += "layers:    \(layers)\n" }
    if let experts = report.experts { out += "experts:   \(experts)\n" }
    out += "gates:     tensor/layer: \(report.thresholds.minimumSNRDecibels == nil && report.thresholds.maximumPeakError == nil ? "SNR and peak error by each weight's storage" : "as given")"
    out += report.thresholds.minimumCosine.map { ", cosine >= \(ReportFormat.cosine($0))" } ?? ""
    out += "\n"
    if report.levels.contains(.model) {
      out += "           model: \(report.modelGate?.summary ?? "mean KL and top-1 limits as given")\n"
    }

    if report.levels.contains(.tensor) {
      let tensors = report.tensors
      let failed = tensors.filter { $0.failure != nil }
      let leftOut = tensors.filter(\.leftOut).count
      let zero = tensors.filter { !$0.leftOut && $0.metrics.referenceIsZero }.count
      out += "\nTensor level: \(tensors.count) weights, \(failed.count) failed"
      out += leftOut > 0 ? ", \(leftOut) not in the candidate by design" : ""
      out += zero > 0 ? ", \(zero) with a zero reference (SNR undefined)\n" : "\n"
      let shown = allRows ? tensors : worst(tensors, failed: { $0.failure != nil }, snr: { $0.metrics.snrDecibels })
      var rows = [["tensor", "layer", "expert", "reference", "candidate", "snr dB", "cosine", "max abs", "peak", "status"]]
      for t in shown {
        rows.append([
          t.name, t.layer.map(String.init) ?? "-", t.expert.map(String.init) ?? "-", t.referenceStorage, t.candidateStorage,
          ReportFormat.decibels(t.metrics.snrDecibels), ReportFormat.cosine(t.metrics.cosineSimilarity),
          ReportFormat.number(t.metrics.maxAbsoluteError), t.metrics.peakError.map(ReportFormat.number) ?? "-",
          status(t.failure, t.note),
        ])
      }
      if !shown.isEmpty {
        if !allRows && shown.count < tensors.count { out += "  lowest SNR first (--all-rows lists all):\n" }
        out += TextTable.render(rows, indent: 2, rightAligned: [1, 2, 5, 6, 7, 8])
      }
    }

    if report.levels.contains(.layer) {
      let linears = report.linears
      let failed = linears.filter { $0.failure != nil }
      out += "\nLayer level: \(linears.count) linear runs, \(failed.count) failed\n"
      let shown = allRows ? linears : worst(linears, failed: { $0.failure != nil }, snr: { $0.metrics.snrDecibels })
      var rows = [["linear", "layer", "expert", "input", "snr dB", "cosine", "max abs", "status"]]
      for l in shown {
        rows.append([
          l.name, l.layer.map(String.init) ?? "-", l.expert.map(String.init) ?? "-", l.input.rawValue,
          ReportFormat.decibels(l.metrics.snrDecibels), ReportFormat.cosine(l.metrics.cosineSimilarity),
          ReportFormat.number(l.metrics.maxAbsoluteError), status(l.failure, l.note),
        ])
      }
      if !shown.isEmpty {
        if !allRows && shown.count < linears.count { out += "  lowest SNR first (--all-rows lists all):\n" }
        out += TextTable.render(rows, indent: 2, rightAligned: [1, 2, 4, 5, 6])
      }
      if !report.routing.isEmpty {
        out += "  routing (same inputs, each side's router):\n"
        out += routingTable(report.routing)
      }
    }

    if let model = report.model {
      let batch = model.tokens.count, length = model.tokens.first?.count ?? 0
      out += "\nModel level: \(batch)×\(length) tokens\n"
      out += TextTable.render(
        [
          ["KL mean", "\(ReportFormat.number(model.meanKL)) ± \(ReportFormat.number(model.meanKLStandardError))"],
          ["KL p99", ReportFormat.number(model.p99KL)],
          ["KL max", ReportFormat.number(model.maxKL)],
          [
            "top-1 agreement",
            "\(ReportFormat.percent(model.top1Agreement)) ± \(ReportFormat.percent(model.top1StandardError)) (\(model.top1Agreements)/\(model.positionCount))",
          ],
          [
            "perplexity ratio",
            model.perplexityRatio.map {
              "\(ReportFormat.number($0)) (\(ReportFormat.number(model.candidatePerplexity ?? 0)) / \(ReportFormat.number(model.referencePerplexity ?? 0)); real text only)"
            } ?? "-",
          ],
          ["max |logit diff|", ReportFormat.number(model.maxAbsoluteLogitDifference)],
          ["logits snr dB", ReportFormat.decibels(model.logits.snrDecibels)],
        ], indent: 2)
      var rows = [["after layer", "hidden cosine", "snr dB", "rel error"]]
      for h in model.hiddenStates {
        rows.append([
          "\(h.layer)", ReportFormat.cosine(h.metrics.cosineSimilarity), ReportFormat.decibels(h.metrics.snrDecibels),
          h.relativeError.map(ReportFormat.number) ?? "-",
        ])
      }
      out += TextTable.render(rows, indent: 2, rightAligned: [0, 1, 2, 3])
      if !model.routing.isEmpty {
        out += "  routing (each model's own forward pass):\n"
        out += routingTable(model.routing)
      }
    }

    for note in report.notes { out += "\nnote: \(note)" }
    if !report.notes.isEmpty { out += "\n" }
    let failures = report.failures
    if failures.isEmpty {
      out += "\nPASS: every check passed\n"
    } else {
      out += "\nFAIL: \(failures.count) check(s) failed\n"
      for failure in failures.prefix(50) { out += "  \(failure.summary)\n" }
      if failures.count > 50 { out += "  ... and \(failures.count - 50) more (see --json)\n" }
    }
    return out
  }

  static func status(_ failure: String?, _ note: String?) -> String {
    if let failure { return "FAIL: \(failure)" }
    return note ?? "ok"
  }

  /// The failures, then the lowest-SNR rows, up to `worstRowCount` rows (every failure is shown).
  static func worst<T>(_ items: [T], failed: (T) -> Bool, snr: (T) -> Double?) -> [T] {
    let order = items.indices.sorted { a, b in
      let (fa, fb) = (failed(items[a]), failed(items[b]))
      if fa != fb { return fa }
      let (sa, sb) = (snr(items[a]) ?? .infinity, snr(items[b]) ?? .infinity)
      return sa != sb ? sa < sb : a < b
    }
    let failures = items.indices.filter { failed(items[$0]) }.count
    return order.prefix(max(failures, min(worstRowCount, items.count))).map { items[$0] }
  }

  static func routingTable(_ routing: [RoutingAgreement]) -> String {
    var rows = [["layer", "tokens", "expert set unchanged"]]
    for r in routing {
      rows.append(["\(r.layer)", "\(r.tokenCount)", "\(ReportFormat.percent(r.unchangedFraction)) (\(r.unchangedCount))"])
    }
    return TextTable.render(rows, indent: 4, rightAligned: [0, 1, 2])
  }
}
