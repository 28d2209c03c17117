import Checkpoint
import CommandLineSupport
import JSON
import JobParts
import Pipeline
import Quantization
import SafeTensors
import SystemIO
import TensorCore
import WeightFormats

/// `smelt convert IN OUT --to FORMAT`.
struct ConvertCommand: Command {
  static let configuration = CommandConfiguration(
    name: "convert",
    abstract: "Convert a checkpoint's weights: FP8 block <-> BF16/F16/F32, FP8 channel/tensor, 4-bit (int4, GPTQ, MLX, MXFP4, NVFP4), mixed recipes.",
    discussion: """
      Streams tensor by tensor with bounded memory on all cores. Quantizing targets convert what DeepSeek's \
      release quantizes (2-D *_proj weights inside decoder layers); embeddings, lm_head, norms, the router and \
      MTP eh_proj keep their precision. Casts dequantize every quantized weight and cast plain floating \
      tensors (F32 router biases excepted). --include/--exclude GLOB override the selection. Targets: \
      \(ConversionTarget.helpSummary); the ecosystem's names are accepted too (\(ConversionTarget.aliasSummary)). \
      An option that does not refine the chosen target (--bits without mlx-affine, --group-size with a fixed-group \
      name such as int4-g128 or mxfp4) is refused. --search picks each 4-bit group's scale by a clip search. \
      FP8 sources are requantized from their exact F32 dequantization. Mixed recipes: --rule 'GLOB=SCHEME' \
      (repeatable, first match wins; SCHEME is a --to name, fp8-block or keep, optionally with :group=N,bits=N) \
      or --recipe FILE ({"rules": [{"match": GLOB, "scheme": SCHEME}], "default": SCHEME}); tensors no rule \
      matches follow --to (default keep). The config block is written in the consumer's terms \
      (compressed-tensors config_groups + ignore, MLX per-module quantization, GPTQ, gpt-oss, ModelOpt \
      hf_quant_config.json). Output files are written under temporary names and renamed when complete; \
      --resume continues an interrupted run. GGUF for llama.cpp: OUT is a .gguf file and --to names a \
      llama-quantize preset (gguf-q4_k_m, gguf-q8_0, gguf-bf16, ...: the same type for every tensor as \
      llama-quantize picks); deepseek2 layout with the MTP block as nextn tensors (--drop-mtp leaves it out), \
      tokenizer from tokenizer.json, --rule 'GLOB=TYPE' or --recipe FILE ({"rules": [{"match": GLOB, "scheme": TYPE}], "default": PRESET}) on \
      GGUF tensor names (llama-quantize's --tensor-type), \
      --imatrix FILE, --max-shard-size for a -0000N-of-0000M.gguf split set.
      """,
    arguments: [
      .positional("input", help: "The checkpoint to read (directory or .safetensors file); with --finalize, OUT.", optional: true),
      .positional("output", help: "The directory to write (a .gguf file for gguf-* targets).", optional: true),
      .option(
        "to", valueName: "format", help: "Target format (required unless --rule/--recipe is given).",
        values: ConversionTarget.acceptedNames + GGUFConversionPlan.targetNames),
      .option(
        "group-size", valueName: "n", help: "Group size of int4-asym/gptq (default 128) and mlx-affine (default 64).",
        values: ["32", "64", "128"]),
      .option("bits", valueName: "n", help: "Bits of mlx-affine.", default: "4", values: ["4", "8"]),
      .flag(
        "skip-incompatible",
        help: "4-bit targets: keep weights the group does not divide at source precision (listed, and unquantized in the config) instead of refusing."),
      .flag("skip-space-check", help: "Write although the output's file system reports less free space than the plan needs."),
      .flag("force-layout", help: "Write a layout although its consumers do not load this architecture (mxfp4-gpt-oss on a non-gpt-oss model)."),
      .flag("allow-unmatched", help: "Warn, instead of refusing, when a --rule/--include/--exclude glob matches no tensor."),
      .flag("search", help: "Choose 4-bit scales by a per-group clip search (lower error than round-to-nearest)."),
      .option("rule", valueName: "glob=scheme", help: "Convert tensors matching GLOB with SCHEME (first match wins).", repeating: true),
      .option("recipe", valueName: "file", help: "A JSON recipe: {\"rules\": [{\"match\": GLOB, \"scheme\": SCHEME}], \"default\": SCHEME}."),
      .option("include", valueName: "glob", help: "Also convert tensors matching GLOB.", repeating: true),
      .option("exclude", valueName: "glob", help: "Never convert tensors matching GLOB.", repeating: true),
      .option("block-size", valueName: "RxC", help: "FP8 block shape, e.g. 128x128 or 1x128.", default: "128x128"),
      .option("scale-format", valueName: "format", help: "FP8 scales: plain F32 amax/448 or powers of two (DeepSeek-V3.1).", default: "float", values: ["float", "ue8m0"]),
      .flag("compressed-tensors", help: "Write fp8-block in the compressed-tensors layout (weight_scale) instead of DeepSeek's."),
      .option("max-shard-size", valueName: "size", help: "Largest output file (tensor bytes), e.g. 5GB, 500MB.", default: "5GB"),
      .flag("dry-run", help: "Print the plan and write nothing: a summary by action, and every tensor when the plan has at most 1000."),
      .flag("tensors", help: "With --dry-run: list every tensor whatever the plan's size."),
      .flag("force", help: "Replace the contents of a non-empty output directory."),
      .flag("resume", help: "Continue an interrupted conversion (or part) into the same output directory."),
      .flag("ignore-unindexed", help: "Convert only what the index names, although the directory holds other .safetensors files."),
      .flag("finalize", help: "Complete OUT after all its parts (--part I/N) finished: check every file against the parts' receipts, write the index, config and manifest."),
      .option("imatrix", valueName: "file", help: "GGUF targets: llama-imatrix's importance matrix weighting the k-quant searches."),
      .flag("drop-mtp", help: "Leave out the multi-token-prediction layer(s) (layers >= num_hidden_layers) and declare none in config.json, as mlx-lm and llama.cpp's converters do (GGUF: no nextn tensors)."),
    ] + SplitJobOptions.arguments + [.json, .jsonFile, .quiet])

  var input: String
  var output: String
  var target: ConversionTarget
  var selection: TensorSelection
  var compressedTensors: Bool
  var search: Bool
  var skipIncompatible: Bool
  var allowUnmatched: Bool
  var forceLayout: Bool
  var skipSpaceCheck: Bool
  /// The scheme names the target is made of (the `--to` name, the recipe's).
  var schemes: [String]
  /// `--drop-mtp`.
  var dropMTP: Bool
  var maxShardByteCount: Int
  var dryRun: Bool
  var listTensors: Bool
  var force: Bool
  var resume: Bool
  var ignoreUnindexed: Bool
  var json: Bool
  /// `--finalize OUT`: the job's own options come from OUT's job description.
  var finalizing = false
  var split: SplitJobOptions
  /// The command line this run records (manifest, job description).
  var recorded: [String]
  var scriptCommand: [String]
  /// Set for `--to gguf-*`: the GGUF route, which replaces everything above.
  var gguf: ConvertGGUF?

  static let pathArguments: Set<String> = ["input", "output", "recipe"]

  init(arguments: ParsedArguments) throws {
    if arguments.flag("finalize") {
      guard let directory = arguments.optionalString("input"), arguments.optionalString("output") == nil else {
        throw UsageError.invalid("--finalize takes one argument: the output directory the parts wrote")
      }
      // A GGUF output is a file: its job's bookkeeping lies next to it (`ConvertGGUF.partsDirectory`).
      let parts = FileSystem.isDirectory(directory) ? PartsDirectory(directory) : ConvertGGUF.partsDirectory(for: directory)
      let stored = try parts.readDescription()
      guard stored.job == "convert", stored.arguments.count >= 2 else {
        throw PartsError.otherJob(directory: parts.path, stored: stored.job, this: "convert")
      }
      try self.init(job: try ParsedArguments(Array(stored.arguments.dropFirst(2)), configuration: Self.configuration))
      output = directory
      finalizing = true
      json = arguments.flag("json")
      if var gguf {
        gguf.finalizing = true
        gguf.json = json
        self.gguf = gguf
      }
    } else {
      try self.init(job: arguments)
    }
  }

  /// The job the arguments describe (a run, a part, a script).
  private init(job arguments: ParsedArguments) throws {
    split = try SplitJobOptions(arguments: arguments)
    recorded = SplitJobOptions.recordedCommand("convert", arguments, alsoExcluding: ["json"])
    scriptCommand = SplitJobOptions.scriptCommand("convert", arguments, paths: Self.pathArguments, alsoExcluding: ["json"])
    if let name = arguments.optionalString("to"), let preset = GGUFConversionPlan.preset(forTarget: name) {
      gguf = try ConvertGGUF(arguments: arguments, preset: preset, split: split, recorded: recorded, scriptCommand: scriptCommand)
      (input, output, target, selection) = ("", "", .cast(.float32), TensorSelection())
      (compressedTensors, search, skipIncompatible, allowUnmatched, forceLayout, skipSpaceCheck, maxShardByteCount, schemes) =
        (false, false, false, false, false, false, 0, [])
      (dryRun, listTensors, force, resume, ignoreUnindexed, json) = (false, false, false, false, false, false)
      dropMTP = false
      return
    }
    for option in ["imatrix"] where arguments.isPresent(option) {
      throw UsageError.invalid("--\(option) applies to GGUF targets only (--to gguf-<preset>)")
    }
    input = try arguments.string("input")
    output = try arguments.string("output")
    let blockText = try arguments.string("block-size")
    let parts = blockText.lowercased().split(separator: "x").compactMap { Int($0) }
    guard parts.count == 2, parts.allSatisfy({ $0 > 0 && $0 <= 65536 }) else {
      throw UsageError.invalid("--block-size must look like 128x128 (rows x columns), got '\(blockText)'")
    }
    let ue8m0 = try arguments.string("scale-format") == "ue8m0"
    let groupSize = try arguments.optionalInt("group-size")
    let bits = try arguments.int("bits")
    let defaults = ConversionRecipe.SchemeDefaults(groupSize: groupSize, bits: bits, blockShape: (parts[0], parts[1]), ue8m0: ue8m0)
    search = arguments.flag("search")
    skipIncompatible = arguments.flag("skip-incompatible")
    allowUnmatched = arguments.flag("allow-unmatched")
    forceLayout = arguments.flag("force-layout")
    skipSpaceCheck = arguments.flag("skip-space-check")
    dropMTP = arguments.flag("drop-mtp")
    var base: ConversionTarget?
    if let name = arguments.optionalString("to") {
      let fixedGroup = ConversionTarget.entry(named: name)?.fixedGroupSize
      guard
        let parsed = ConversionTarget.parse(
          name, blockShape: (parts[0], parts[1]), ue8m0: ue8m0, groupSize: fixedGroup == nil ? groupSize : nil, bits: bits)
      else {
        throw UsageError.invalid("unknown --to format '\(name)'")
      }
      base = parsed
    }
    let ruleTexts = arguments.strings("rule")
    let recipePath = arguments.optionalString("recipe")
    if !ruleTexts.isEmpty || recipePath != nil {
      do {
        var recipe = ConversionRecipe(rules: [], fallback: .keep)
        if let recipePath {
          let bytes: [UInt8]
          do { bytes = try FileSystem.readFile(recipePath) } catch { throw UsageError.invalid("cannot read --recipe '\(recipePath)': \(error)") }
          recipe = try ConversionRecipe.parse(json: bytes, path: recipePath, defaults: defaults)
        }
        recipe.rules = try ruleTexts.map { try ConversionRecipe.parseRule($0, defaults: defaults) } + recipe.rules
        if let base, let name = arguments.optionalString("to") { (recipe.fallback, recipe.fallbackText) = (.target(base), name) }
        _ = try recipe.family()
        target = .mixed(recipe)
      } catch let error as ConversionError {
        throw UsageError.invalid("\(error)")
      }
    } else {
      guard let base else { throw UsageError.invalid("--to FORMAT is required (or give --rule/--recipe)") }
      target = base
    }
    // Every refining option the user gave must refine the target or one of the recipe's schemes.
    let given = Set(ConversionTarget.Refinement.allCases.filter { arguments.isPresent($0.rawValue) })
    if case .mixed(let recipe) = target { schemes = recipe.schemeNames } else { schemes = [arguments.optionalString("to") ?? ""] }
    if let refusal = ConversionTarget.inapplicableOptions(given, schemes: schemes) { throw UsageError.invalid(refusal) }
    selection = TensorSelection(includes: arguments.strings("include").map(Glob.init), excludes: arguments.strings("exclude").map(Glob.init))
    compressedTensors = arguments.flag("compressed-tensors")
    maxShardByteCount = try arguments.byteCount("max-shard-size", in: 1...Int.max)
    dryRun = arguments.flag("dry-run")
    listTensors = arguments.flag("tensors")
    if listTensors && !dryRun { throw UsageError.invalid("--tensors goes with --dry-run") }
    force = arguments.flag("force")
    resume = arguments.flag("resume")
    ignoreUnindexed = arguments.flag("ignore-unindexed")
    json = arguments.flag("json")
    if force && resume { throw UsageError.invalid("--force and --resume cannot be used together") }
    if !split.part.isWhole && force {
      throw UsageError.invalid("--force does not go with --part: the parts of a job share OUT; start a split job in an empty directory")
    }
  }

  func run(context: CommandContext) throws {
    if let gguf { return try gguf.run(context: context) }
    let checkpoint = try Checkpoint.open(input)
    try checkpoint.requireCompleteIndex(allowUnindexedFiles: ignoreUnindexed, override: "--ignore-unindexed")
    if !forceLayout, let refusal = ConversionTarget.layoutRefusal(schemes: schemes, architectures: checkpoint.config?.architectures ?? []) {
      throw UsageError.invalid(refusal)
    }
    let plan = try ConversionPlan(
      checkpoint: checkpoint, target: target, selection: selection, maxShardByteCount: maxShardByteCount,
      compressedTensorsNaming: compressedTensors, search: search, skipIncompatible: skipIncompatible, dropMTP: dropMTP)
    if !plan.unmatchedGlobs.isEmpty {
      let list = plan.unmatchedGlobs.joined(separator: ", ")
      guard allowUnmatched else {
        throw UsageError.invalid(
          "\(list) match\(plan.unmatchedGlobs.count == 1 ? "es" : "") no tensor of '\(input)' (names are matched as `smelt inspect --tensors` lists them, or by module path); fix the glob, or pass --allow-unmatched")
      }
      if !finalizing { context.warn("\(list) match\(plan.unmatchedGlobs.count == 1 ? "es" : "") no tensor") }
    }
    if !finalizing {
      for note in plan.notes { context.log("note: \(note)") }
      for skipped in plan.skippedIncompatible { context.log("skipped '\(skipped.name)': \(skipped.reason); kept at source precision") }
    }
    if dryRun {
      printPlan(plan, context: context)
      return
    }
    let runner = ConversionRunner(plan: plan, checkpoint: checkpoint, output: output)
    if finalizing { return try finalize(runner, context: context) }
    if split.script != nil { return try emitScript(runner, context: context) }
    let sidecars = try checkpoint.sidecarListing()
    for note in sidecars.notes { context.warn(note) }
    if !split.part.isWhole { return try runPart(runner, context: context) }
    let lock = try OutputDirectory.prepare(
      output, input: input, inputFiles: try checkpoint.inputFilePaths(), force: force, resume: resume)
    defer { lock.release() }
    if !skipSpaceCheck {
      // Files a resumed run may reuse are already on disk; everything else is new bytes.
      let present = resume ? plan.files.reduce(0) { $0 + ((try? FileSystem.byteCount(of: FileSystem.join(output, $1.name))) ?? 0) } : 0
      try OutputDirectory.checkFreeSpace(for: output, plannedByteCount: max(0, plan.outputByteCount - present))
    }
    let previous = OutputDirectory.previousOutput(in: output)
    let progress = context.progress(total: plan.sourceByteCount, unit: .bytes, label: "convert")
    // --resume, --force, --quiet are how the run was carried out, not what it produced: the manifest of a
    // resumed run, or of N parts, is byte-identical to an uninterrupted run's.
    let report: ConversionReport
    do {
      report = try runner.run(resume: resume, commandLine: recorded) { progress.advance(by: $0) }
    } catch {
      throw ResumableFailure.wrapping(error)
    }
    progress.finish()
    try Self.removeStale(in: output, previous: previous)
    try OutputCheck.run(directory: output, context: context)
    printReport(report, context: context)
  }

  /// Keep what the finished run wrote (its manifest lists every file); remove what earlier runs left.
  static func removeStale(in output: String, previous: OutputDirectory.PreviousOutput) throws {
    let kept = try OutputManifest.read(from: output).files.map(\.name) + [OutputManifest.fileName]
    try OutputDirectory.removeStale(in: output, keeping: Set(kept), previous: previous)
  }

  func printReport(_ report: ConversionReport, context: CommandContext) {
    // NaN/Inf policy (formats/verify.md): quantizers refuse them (the run fails naming the element);
    // casts keep them, and every tensor with a non-finite source value or result is named here.
    warnNonFinite(report, context: context)
    if json {
      context.stdout.line(JSONWriter(pretty: true).string(reportJSON(report)))
    } else {
      let rate = report.seconds > 0 ? Double(report.sourceByteCount) / report.seconds / 1e9 : 0
      context.log(
        "converted \(report.convertedTensorCount) tensors, copied \(report.copiedTensorCount); read \(ByteCount.formatted(report.sourceByteCount)), wrote \(ByteCount.formatted(report.outputByteCount)) in \(DisplayFormat.decimal(report.seconds)) s (\(DisplayFormat.decimal(rate)) GB/s)"
      )
      if !report.filesResumed.isEmpty { context.log("resumed: reused \(report.filesResumed.count) completed file(s)") }
      let repacked = report.tensors.filter { $0.method == "repacked (lossless)" }.count
      let inexact = report.tensors.filter { $0.method == "repacked (inexact blocks)" }
      if repacked > 0 { context.log("repacked \(repacked) weight(s) losslessly (codes and scales moved, bit-exact)") }
      for tensor in inexact { context.warn("'\(tensor.name)': \(tensor.action)") }
      if let worst = report.tensors.filter({ $0.snrDecibels.isFinite }).min(by: { $0.snrDecibels < $1.snrDecibels }) {
        context.log("lowest round-trip SNR: \(DisplayFormat.decimal(worst.snrDecibels)) dB (\(worst.name))")
      }
      context.stdout.line(output)
    }
  }

  /// Plans up to this many tensors list each one in `--dry-run` without `--tensors` (a 671B release has 92k).
  static let listedTensorLimit = 1000

  private func printPlan(_ plan: ConversionPlan, context: CommandContext) {
    let outputTensorCount = plan.jobs.reduce(0) { $0 + $1.outputs.count }
    let listing = listTensors || outputTensorCount <= Self.listedTensorLimit
    // The summary: each action with its weight count, in first-seen order (one pass over the jobs).
    var actionCounts: [(action: String, count: Int)] = []
    var actionIndex: [String: Int] = [:]
    // By index: the loop reads each job's action, not a copy of the whole job.
    for job in plan.jobs.indices {
      let action = Self.describe(plan.jobs[job].action)
      if let index = actionIndex[action] {
        actionCounts[index].count += 1
      } else {
        actionIndex[action] = actionCounts.count
        actionCounts.append((action, 1))
      }
    }
    if json {
      let jobs: [JSONValue] = plan.jobs.flatMap { job -> [JSONValue] in
        let action: String
        switch job.action {
        case .copy: action = "copy"
        case .cast(let dtype): action = "cast \(dtype)"
        case .fp8(let scheme, _): action = "fp8 \(scheme)"
        case .group(let groupJob): action = groupJob.format.name + (groupJob.search ? " --search" : "")
        case .repack(let layout): action = layout.description
        }
        return job.outputs.map { tensor in
          .object(members: [
            ("name", .string(tensor.name)), ("action", .string(action)), ("dtype", .string(tensor.dtype.rawValue)),
            ("shape", .array(tensor.shape.map { .number(JSONNumber($0)) })),
          ])
        }
      }
      let document: JSONValue = .object(members: [
        ("schema", .string(DocumentSchema.convertPlan)),
        ("target", .string("\(plan.target)")),
        ("source_bytes", .number(JSONNumber(plan.sourceByteCount))),
        ("output_bytes", .number(JSONNumber(plan.outputByteCount))),
        ("files", .array(plan.files.map { .string($0.name) })),
        ("tensor_count", .number(JSONNumber(outputTensorCount))),
        ("actions", .array(actionCounts.map { entry in
          .object(members: [("action", .string(entry.action)), ("count", .number(JSONNumber(entry.count)))])
        })),
      ] + (listing ? [("tensors", .array(jobs))] : []))
      context.stdout.line(JSONWriter(pretty: true).string(document))
      return
    }
    context.stdout.line("Plan: \(plan.target)")
    context.stdout.line("  \(plan.convertedJobCount) weights converted, \(plan.jobs.count - plan.convertedJobCount) tensors copied")
    context.stdout.line("  \(ByteCount.formatted(plan.sourceByteCount)) in, \(ByteCount.formatted(plan.outputByteCount)) out, \(plan.files.count) file(s)")
    context.stdout.line()
    context.stdout.write(TextTable.render([["action", "tensors"]] + actionCounts.map { [$0.action, "\($0.count)"] }))
    guard listing else {
      context.stdout.line()
      context.stdout.line("\(outputTensorCount) output tensors: --tensors lists each one")
      return
    }
    // The per-tensor listing is built only when it is printed (formatting 92k shapes is most of a summary's time).
    var rows: [[String]] = [["tensor", "action", "output"]]
    for job in plan.jobs {
      if case .copy = job.action { continue }
      rows.append([job.outputs[0].name, Self.describe(job.action), job.outputs.map { "\($0.dtype) \($0.shape)" }.joined(separator: " + ")])
    }
    context.stdout.line()
    context.stdout.write(TextTable.render(rows))
  }

  /// A job's action as the text plan names it.
  static func describe(_ action: ConversionJob.Action) -> String {
    switch action {
    case .cast(let dtype): "cast to \(dtype)"
    case .fp8(let scheme, let rule): "fp8 \(scheme)\(rule.format == .ue8m0 ? " ue8m0" : "")"
    case .group(let groupJob): groupJob.format.description + (groupJob.search ? ", clip search" : "")
    case .repack(let layout): layout.description
    case .copy: "copy"
    }
  }

  private func reportJSON(_ report: ConversionReport) -> JSONValue {
    func number(_ value: Double) -> JSONValue {
      value.isFinite ? (JSONNumber(value).map { .number($0) } ?? .null) : .null
    }
    let tensors: [JSONValue] = report.tensors.map { tensor in
      .object(members: [
        ("name", .string(tensor.name)), ("action", .string(tensor.action)), ("method", .string(tensor.method)),
        ("snr_db", tensor.snrDecibels.isInfinite && tensor.snrDecibels > 0 ? .string("inf") : number(tensor.snrDecibels)),
        ("max_abs_error", number(tensor.maxAbsoluteError)),
        ("non_finite_values", .number(JSONNumber(tensor.nonFiniteCount))),
        ("saturated_values", .number(JSONNumber(tensor.saturatedCount))),
      ])
    }
    return .object(members: [
      ("schema", .string(DocumentSchema.convert)),
      ("output", .string(output)),
      ("target", .string("\(target)")),
      ("tensors_converted", .number(JSONNumber(report.convertedTensorCount))),
      ("tensors_copied", .number(JSONNumber(report.copiedTensorCount))),
      ("bytes_in", .number(JSONNumber(report.sourceByteCount))),
      ("bytes_out", .number(JSONNumber(report.outputByteCount))),
      ("seconds", number(report.seconds)),
      ("gb_per_second", number(report.seconds > 0 ? Double(report.sourceByteCount) / report.seconds / 1e9 : 0)),
      ("files_written", .array(report.filesWritten.map { .string($0) })),
      ("files_resumed", .array(report.filesResumed.map { .string($0) })),
      ("non_finite_values", .number(JSONNumber(report.tensors.reduce(0) { $0 + $1.nonFiniteCount }))),
      ("saturated_values", .number(JSONNumber(report.tensors.reduce(0) { $0 + $1.saturatedCount }))),
      ("tensors", .array(tensors)),
    ])
  }
}

/// A conversion that stopped for lack of space (a full disk, a quota, a file-size limit): the files it
/// finished are kept, so the message says how to continue without redoing them.
struct ResumableFailure: Error, CustomStringConvertible {
  var cause: any Error

  /// `error` with the `--resume` advice when it is a space failure, else `error` itself.
  static func wrapping(_ error: any Error) -> any Error {
    var system = error as? SystemError
    if let file = error as? SafeTensorsFileError, case .io(let underlying) = file.error { system = underlying }
    guard let system, system.isOutOfSpace else { return error }
    return ResumableFailure(cause: error)
  }

  var description: String {
    "\(cause); then rerun the same command with --resume to keep the files already finished"
  }
}
