import Checkpoint
import CommandLineSupport
import GGML
import GGUF
import GGUFModel
import JSON
import JobParts
import Pipeline
import SystemIO
import TensorCore
import WeightFormats

/// The GGUF route of `smelt convert` (`--to gguf-<preset>`): the output is a `.gguf` file (or a split set),
/// not a directory.
struct ConvertGGUF {
  var input: String
  var output: String
  var options: GGUFConversionPlan.Options
  var dryRun: Bool
  var force: Bool
  var resume: Bool
  var json: Bool
  var allowUnmatched: Bool
  var skipSpaceCheck: Bool
  /// `--part`, `--emit-sbatch`: a split job (see `ConvertCommand`).
  var split: SplitJobOptions
  /// The command line the parts of a split job record (their job description).
  var recorded: [String]
  var scriptCommand: [String]
  /// `--finalize OUT.gguf`: the job's options come from its job description.
  var finalizing = false
  /// The globs of `--recipe` rules (the rest of `options.overrides` are `--rule`s): how messages name them.
  var recipeRules: Set<String> = []

  /// Where a split job of `output` keeps its bookkeeping (job description, receipts, part locks) until
  /// `--finalize`: `OUT.gguf.smelt-parts` next to it (a GGUF output is a file, not a directory).
  static func partsDirectory(for output: String) -> PartsDirectory { PartsDirectory(output + ".smelt-parts") }

  /// Reads the GGUF options; `preset` comes from `--to`.
  init(
    arguments: ParsedArguments, preset: LlamaFileType, split: SplitJobOptions = .none, recorded: [String] = [],
    scriptCommand: [String] = []
  ) throws {
    self.split = split
    self.recorded = recorded
    self.scriptCommand = scriptCommand
    input = try arguments.string("input")
    output = try arguments.string("output")
    options = GGUFConversionPlan.Options(preset: preset)
    options.keepMTP = !arguments.flag("drop-mtp")
    if arguments.isPresent("max-shard-size") {
      options.maxShardByteCount = try arguments.byteCount("max-shard-size", in: 1...Int.max)
    }
    do {
      // --rule first, then the recipe file's rules: the first match wins.
      options.overrides = try arguments.strings("rule").map { text throws(ConversionError) in try GGUFRecipe.rule(text) }
      if let path = arguments.optionalString("recipe") {
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch { throw UsageError.invalid("cannot read --recipe '\(path)': \(error)") }
        let recipe = try GGUFRecipe.parse(json: bytes, path: path)
        let to = arguments.optionalString("to") ?? ""
        if let named = recipe.preset, named.lowercased() != to.lowercased() {
          throw UsageError.invalid(
            "--recipe '\(path)' is made for \"default\": \"\(named)\", not --to \(to): convert with --to \(named), or change the recipe's default")
        }
        recipeRules = Set(recipe.overrides.map(\.glob.pattern))
        options.overrides += recipe.overrides
      }
    } catch let error as ConversionError {
      throw UsageError.invalid("\(error)")
    }
    if let path = arguments.optionalString("imatrix") {
      do { options.importance = try ImportanceMatrix(path: path) } catch { throw UsageError.invalid("cannot read --imatrix '\(path)': \(error)") }
      options.importancePath = path
    }
    for unsupported in ["include", "exclude", "group-size", "bits"] where arguments.isPresent(unsupported) {
      throw UsageError.invalid("--\(unsupported) does not apply to GGUF targets (use --rule GLOB=TYPE or --recipe on GGUF tensor names)")
    }
    // Every option refining a safetensors target means nothing to a llama-quantize preset.
    let refinements = ConversionTarget.Refinement.allCases.map(\.rawValue)
    for unsupported in refinements + ["ignore-unindexed", "force-layout"] where arguments.isPresent(unsupported) {
      throw UsageError.invalid("--\(unsupported) does not apply to GGUF targets")
    }
    dryRun = arguments.flag("dry-run")
    allowUnmatched = arguments.flag("allow-unmatched")
    skipSpaceCheck = arguments.flag("skip-space-check")
    force = arguments.flag("force")
    resume = arguments.flag("resume")
    json = arguments.flag("json")
    if force && resume { throw UsageError.invalid("--force and --resume cannot be used together") }
    if !split.part.isWhole && force {
      throw UsageError.invalid("--force does not go with --part: the parts of a job share OUT; remove OUT and \(output).smelt-parts to start afresh")
    }
    if FileSystem.isDirectory(output) {
      throw UsageError.invalid("a GGUF target writes a file: give OUT as a path ending in .gguf, not the directory '\(output)'")
    }
  }

  func run(context: CommandContext) throws {
    let checkpoint = try Checkpoint.open(input)
    try checkpoint.requireCompleteIndex(allowUnindexedFiles: false, override: "--ignore-unindexed")
    let plan = try GGUFConversionPlan(checkpoint: checkpoint, output: output, options: options)
    for note in plan.notes { context.warn(note) }
    if !plan.unmatchedOverrides.isEmpty {
      let list = plan.unmatchedOverrides.map { recipeRules.contains($0) ? "--recipe rule '\($0)'" : "--rule '\($0)'" }
        .joined(separator: ", ")
      guard allowUnmatched else {
        throw UsageError.invalid(
          "\(list) match\(plan.unmatchedOverrides.count == 1 ? "es" : "") no GGUF tensor name (blk.N.attn_kv_a_mqa.weight, ...: `--dry-run --json` lists them); fix the glob, or pass --allow-unmatched")
      }
      context.warn("\(list) match\(plan.unmatchedOverrides.count == 1 ? "es" : "") no GGUF tensor name")
    }
    if dryRun {
      printPlan(plan, context: context)
      return
    }
    let runner = GGUFConversionRunner(plan: plan, checkpoint: checkpoint)
    if finalizing { return try finalize(runner, context: context) }
    if split.script != nil { return try emitScript(runner, context: context) }
    let parts = Self.partsDirectory(for: output)
    for path in plan.paths {
      try OutputDirectory.refuseReplacingInput(file: path, inputs: try checkpoint.inputFilePaths())
    }
    if !split.part.isWhole { return try runPart(runner, context: context) }
    if parts.holdsSplitJob {
      throw UsageError.invalid(
        "'\(output)' is being written by a split job (\(parts.path)): run its parts and 'smelt convert --finalize \(output)', or remove \(parts.path) to start afresh")
    }
    for path in plan.paths where FileSystem.exists(path) && !force && !resume {
      throw OutputDirectory.Refusal.fileExists(path)
    }
    if !skipSpaceCheck {
      // A resumed split set keeps the shards already on disk.
      let present = resume ? plan.paths.reduce(0) { $0 + ((try? FileSystem.byteCount(of: $1)) ?? 0) } : 0
      try OutputDirectory.checkFreeSpace(for: output, plannedByteCount: max(0, plan.outputByteCount - present))
    }
    let progress = context.progress(total: plan.outputByteCount, unit: .bytes, label: "convert")
    let report: GGUFConversionReport
    do {
      report = try runner.run(resume: resume) { progress.advance(by: $0) }
    } catch {
      throw ResumableFailure.wrapping(error)
    }
    progress.finish()
    for tensor in report.repacked where tensor.inexactBlocks > 0 {
      let location = tensor.firstInexact.map { " (first: block \($0.block) of \($0.source))" } ?? ""
      context.warn(
        "\(tensor.name): \(tensor.inexactBlocks) block(s) not exact\(location): their scale is no F16 value, so the block's F16 scale holds it rounded to nearest even; the other blocks are bit-exact")
    }
    if json {
      context.stdout.line(JSONWriter(pretty: true).string(.object(members: [
        ("schema", .string(DocumentSchema.convertGGUF)),
        ("files_written", .array(report.filesWritten.map { .string($0) })),
        ("files_resumed", .array(report.filesResumed.map { .string($0) })),
        ("preset", .string(options.preset.name)), ("tensors", .number(JSONNumber(report.tensorCount))),
        ("bytes_in", .number(JSONNumber(report.sourceByteCount))), ("bytes_out", .number(JSONNumber(report.outputByteCount))),
        ("seconds", JSONNumber(report.seconds).map { .number($0) } ?? .null),
        ("repacked", .array(report.repacked.map { tensor in
          .object(members: [
            ("name", .string(tensor.name)), ("repack", .string(tensor.repack.rawValue)),
            ("inexact_blocks", .number(JSONNumber(tensor.inexactBlocks))),
          ])
        })),
      ])))
    } else {
      let rate = report.seconds > 0 ? Double(report.sourceByteCount) / report.seconds / 1e9 : 0
      context.log(
        "wrote \(report.tensorCount) tensors (\(options.preset.name)); read \(ByteCount.formatted(report.sourceByteCount)), wrote \(ByteCount.formatted(report.outputByteCount)) in \(DisplayFormat.decimal(report.seconds)) s (\(DisplayFormat.decimal(rate)) GB/s)")
      if !report.filesResumed.isEmpty { context.log("resumed: reused \(report.filesResumed.count) completed file(s)") }
      let exact = report.repacked.filter { $0.inexactBlocks == 0 }
      if let first = exact.first {
        context.log("repacked \(exact.count) tensor(s) bit-exactly (\(first.repack)), e.g. \(first.name)")
      }
      for path in plan.paths { context.stdout.line(path) }
    }
  }

  private func printPlan(_ plan: GGUFConversionPlan, context: CommandContext) {
    var counts: [String: (count: Int, bytes: Int)] = [:]
    for tensor in plan.tensors {
      let previous = counts[tensor.info.type.name] ?? (0, 0)
      counts[tensor.info.type.name] = (previous.count + 1, previous.bytes + tensor.info.byteCount)
    }
    if json {
      let tensors: [JSONValue] = plan.tensors.map { tensor in
        .object(members: [
          ("name", .string(tensor.info.name)), ("type", .string(tensor.info.type.name)),
          ("ne", .array(tensor.info.dimensions.map { .number(JSONNumber($0)) })),
          ("file", .number(JSONNumber(tensor.file))), ("fallback", .bool(tensor.fellBack)), ("override", .bool(tensor.overridden)),
          ("repack", tensor.repack.map { .string($0.rawValue) } ?? .null),
        ])
      }
      context.stdout.line(JSONWriter(pretty: true).string(.object(members: [
        ("schema", .string(DocumentSchema.convertGGUFPlan)),
        ("preset", .string(plan.options.preset.name)), ("architecture", .string(plan.architecture)),
        ("source_bytes", .number(JSONNumber(plan.sourceByteCount))),
        ("output_bytes", .number(JSONNumber(plan.outputByteCount))),
        ("files", .array(zip(plan.paths, plan.layouts).map { path, layout in
          .object(members: [
            ("path", .string(path)), ("bytes", .number(JSONNumber(layout.fileByteCount))),
            ("tensors", .number(JSONNumber(layout.tensors.count))),
          ])
        })),
        ("tensors", .array(tensors)),
      ])))
      return
    }
    context.stdout.line("Plan: GGUF \(plan.options.preset.name) (\(plan.architecture)), \(plan.tensors.count) tensors")
    context.stdout.line("  \(ByteCount.formatted(plan.sourceByteCount)) in, \(ByteCount.formatted(plan.outputByteCount)) out, \(plan.paths.count) file(s)")
    for (path, layout) in zip(plan.paths, plan.layouts) {
      context.stdout.line("  \(path): \(layout.tensors.count) tensors, \(ByteCount.formatted(layout.fileByteCount))")
    }
    var rows: [[String]] = [["type", "tensors", "bytes"]]
    for name in counts.keys.sorted() { rows.append([name, "\(counts[name]!.count)", ByteCount.formatted(counts[name]!.bytes)]) }
    context.stdout.line()
    context.stdout.write(TextTable.render(rows))
    let fallbacks = plan.tensors.filter(\.fellBack)
    if !fallbacks.isEmpty {
      context.stdout.line()
      context.stdout.line("  \(fallbacks.count) tensor(s) fell back (rows not whole blocks), e.g. \(fallbacks[0].info.name) → \(fallbacks[0].info.type.name)")
    }
    let repacks = plan.tensors.filter { $0.repack != nil }
    if let first = repacks.first {
      context.stdout.line("  \(repacks.count) tensor(s) repacked without re-rounding (\(first.repack!)), e.g. \(first.info.name)")
    }
  }
}
