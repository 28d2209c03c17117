import Checkpoint
import CommandLineSupport
import JobParts
import JSON
import Pipeline
import SafeTensors
import Sharding
import SystemIO
import TensorCore

/// `smelt shard IN OUT`: spread a checkpoint's routed experts (and optionally its attention and MLP
/// projections) over devices; write one loadable checkpoint per device plus a manifest.
struct ShardCommand: Command {
  static let configuration = CommandConfiguration(
    name: "shard",
    abstract: "Shard a checkpoint for expert (and tensor) parallelism over devices, with a manifest.",
    discussion: """
      Writes OUT/<device>/ (a loadable checkpoint: size-sharded files, index, config, tokenizer) for every \
      device and OUT/manifest.json (devices, per-layer expert maps, every tensor's provenance, SHA-256 of every \
      file; schema in formats/shard-manifest.md). Routed experts go whole to one device each (plus --redundant \
      replicas); other tensors are replicated, or split with --tensor-parallel along DeepSeek convert.py's dims.
      Devices: --devices N (named 0..N-1), or one --device NAME:CAPACITY each (e.g. --device gpu0:80GB \
      --device cpu:512GiB). --place 'GLOB=DEVICE[,DEVICE]' sends matching tensors only there (first rule wins, \
      companions follow their weight); unmatched experts and tensors go to the devices no rule names.
      Fit: a device's budget is its capacity less --reserve; its other tensors are placed first and the routed \
      experts within what is left. contiguous keeps convert.py's ranges when they fit and otherwise sizes the \
      ranges by the devices' budgets, in device order; balanced places largest first within the budgets and \
      falls back to any placement that fits; round-robin and load ignore budgets. A plan that does not fit is \
      refused before anything is written, naming the strategies that would fit. With --expert-load the \
      device table shows each device's summed expert load (rules: formats/shard-manifest.md).
      Cluster use: run N workers with --part I/N (same arguments, same OUT; --resume keeps what a killed or \
      requeued part finished), then smelt shard --finalize OUT, which checks every file against the parts' \
      receipts and writes the indexes and the manifest. The result is byte-identical to one run. \
      --emit-sbatch FILE --parts N writes the Slurm array + finalize job for it (formats/cluster.md).
      """,
    arguments: [
      .positional("input", help: "The checkpoint to shard (a directory or a .safetensors file); with --finalize, OUT.", optional: true),
      .positional("output", help: "The output directory.", optional: true),
      .option("devices", valueName: "n", help: "Shard over N identical devices named 0..N-1."),
      .option("capacity", valueName: "size", help: "With --devices, the capacity of each device (e.g. 80GB)."),
      .option("device", valueName: "name:capacity", help: "A device and its capacity (repeatable), e.g. gpu0:80GB or cpu:512GiB.", repeating: true),
      .option(
        "strategy", valueName: "strategy",
        help: "How routed experts are spread: contiguous (convert.py's ranges, resized by budget when they do not fit), round-robin, balanced (largest first within the budgets), load (by --expert-load; the default with it).",
        default: "contiguous", values: ["contiguous", "round-robin", "balanced", "load"]),
      .option("expert-load", valueName: "file", help: "Per-layer expert activation counts (JSON {\"layer\": [counts]}): hottest first onto the least-loaded device; with another --strategy, only the per-device load sums."),
      .option("reserve", valueName: "size", help: "Headroom kept free on every device with a capacity (KV cache, activations), e.g. 8GB.", default: "0"),
      .option("redundant", valueName: "k", help: "With --expert-load, K extra replicas of the hottest experts per layer.", default: "0"),
      .option("place", valueName: "glob=device", help: "Send tensors matching GLOB to DEVICE(s) only (repeatable; first match wins), e.g. '*.experts.*=cpu'.", repeating: true),
      .flag("tensor-parallel", help: "Split attention, dense MLP, shared experts, embedding and head along DeepSeek convert.py's dims."),
      .option("layout", valueName: "layout", help: "hf: OUT/<device>/ checkpoints; deepseek-mp: DeepSeek's demo files model{i}-mp{N}.safetensors.", default: "hf", values: ["hf", "deepseek-mp"]),
      .option("max-shard-size", valueName: "size", help: "Largest output file in the hf layout.", default: "5GB"),
      .flag("finalize", help: "Check that all parts of OUT are complete and intact; write the indexes and the manifest."),
      .flag("resume", help: "With --part: keep the files this part already finished (after a kill or a requeue)."),
      .flag("dry-run", help: "Print the plan without writing anything."),
      .flag("drop-mtp", help: "Leave out the multi-token-prediction layer(s) and declare none in each device's config.json (deepseek-mp always drops them)."),
      .flag("force", help: "Write into a non-empty output directory, replacing same-named files and removing stale ones."),
      .flag("ignore-unindexed", help: "Shard only what the index names, although the directory holds other .safetensors files."),
    ] + SplitJobOptions.arguments + [.json, .jsonFile, .quiet])

  var input: String?
  var output: String?
  var options: ShardOptions?
  var part: (index: Int, count: Int)
  var split = SplitJobOptions.none
  var resume = false
  var scriptCommand: [String] = []
  var finalize: Bool
  var dryRun: Bool
  var force: Bool
  var ignoreUnindexed: Bool
  var json: Bool

  init(arguments: ParsedArguments) throws {
    finalize = arguments.flag("finalize")
    dryRun = arguments.flag("dry-run")
    force = arguments.flag("force")
    ignoreUnindexed = arguments.flag("ignore-unindexed")
    json = arguments.flag("json")
    input = arguments.optionalString("input")
    output = arguments.optionalString("output")
    part = (0, 1)
    if finalize {
      guard let directory = input, output == nil else { throw UsageError.invalid("--finalize takes one argument: the output directory") }
      output = directory
      input = nil
      return
    }
    guard input != nil else { throw UsageError.missingArgument("<input>") }
    guard output != nil || dryRun else { throw UsageError.missingArgument("<output>") }

    var devices: [ShardDevice] = []
    if let count = try arguments.optionalInt("devices", in: 1...4096) {
      guard arguments.strings("device").isEmpty else { throw UsageError.invalid("use either --devices N or --device NAME:CAPACITY, not both") }
      let capacity = try arguments.optionalValue("capacity") { (raw) throws(InvalidArgumentValue) in try ArgumentValues.byteCount(raw) }
      devices = try ShardDevice.homogeneous(count: count, capacityByteCount: capacity)
    } else {
      devices = try arguments.strings("device").map { try ShardDevice(parsing: $0) }
      guard !devices.isEmpty else { throw UsageError.invalid("no devices: pass --devices N or --device NAME:CAPACITY (repeatable)") }
    }
    let layout = try arguments.value("layout") { (raw) throws(InvalidArgumentValue) in try ArgumentValues.choice(raw, as: ShardLayout.self) }
    let strategy = try arguments.value("strategy") { (raw) throws(InvalidArgumentValue) in try ArgumentValues.choice(raw, as: ExpertStrategy.self) }
    var load: ExpertLoad?
    if let path = arguments.optionalString("expert-load") {
      load = try ExpertLoad(json: try FileSystem.readFile(path, limit: 64 << 20), path: path)
    }
    if strategy == .load && load == nil { throw UsageError.invalid("--strategy load needs --expert-load FILE") }
    let reserve = try arguments.value("reserve") { (raw) throws(InvalidArgumentValue) in try ArgumentValues.byteCount(raw, in: 0...Int.max) }
    let redundant = try arguments.int("redundant", in: 0...1_000_000)
    let rules = try arguments.strings("place").map { try PlacementRule(parsing: $0) }
    let maxFile = try arguments.value("max-shard-size") { (raw) throws(InvalidArgumentValue) in try ArgumentValues.byteCount(raw, in: 1...Int.max) }
    if layout == .deepSeekMP && (!rules.isEmpty || load != nil || arguments.isPresent("strategy")) {
      throw UsageError.invalid("--layout deepseek-mp is convert.py's fixed layout: contiguous experts, no --place, --strategy or --expert-load")
    }
    split = try SplitJobOptions(arguments: arguments)
    if !split.part.isWhole {
      guard !dryRun else { throw UsageError.invalid("--part and --dry-run do not go together") }
      part = (split.part.index, split.part.count)
    }
    resume = arguments.flag("resume")
    if resume && (split.part.isWhole || force) {
      throw UsageError.invalid("--resume continues one part of a split job: it goes with --part I/N and not with --force")
    }
    scriptCommand = SplitJobOptions.scriptCommand("shard", arguments, paths: ["input", "output", "expert-load"], alsoExcluding: ["json"])
    options = ShardOptions(
      devices: devices, strategy: strategy, expertLoad: load, redundantExpertCount: redundant, rules: rules,
      tensorParallel: arguments.flag("tensor-parallel"), layout: layout, maxFileByteCount: maxFile, reserveByteCount: reserve)
    options?.dropMTP = arguments.flag("drop-mtp")
    // An explicit --strategy with --expert-load places by that strategy and reports the load sums.
    if arguments.isPresent("strategy") { options?.strategy = strategy }
  }

  func run(context: CommandContext) throws {
    let clock = ContinuousClock()
    let start = clock.now
    if finalize, let output {
      context.log("checking the parts of \(output) ...")
      let (plan, result) = try ShardJob.finalize(outputDirectory: output)
      try OutputCheck.run(directory: output, context: context)
      let bytes = result.weightFiles.reduce(0) { $0 + $1.byteCount }
      context.stdout.line("finalized \(output): \(result.weightFiles.count) files (\(ByteCount.formatted(bytes))) on \(plan.devices.count) device(s) verified; wrote \(result.manifestPath) in \(seconds(clock.now - start))")
      return
    }
    guard let input, let options else { return }
    let checkpoint = try Checkpoint.open(input)
    try checkpoint.requireCompleteIndex(allowUnindexedFiles: ignoreUnindexed, override: "--ignore-unindexed")
    for note in try checkpoint.sidecarListing().notes { context.warn(note) }
    let opened = clock.now - start
    let source = try ShardSource(checkpoint: checkpoint)
    let described = clock.now - start
    let plan = try ShardPlanner.plan(source, options: options)
    let planned = clock.now - start
    if dryRun {
      if json {
        var records: [ShardManifest.FileRecord] = []
        for i in plan.files.indices {
          records.append(.init(relativePath: plan.files[i].relativePath, byteCount: try plan.layout(ofFile: i).fileByteCount, sha256: nil))
        }
        context.stdout.line(JSONWriter(pretty: true).string(ShardManifest.dryRunDocument(plan, weightFiles: records)))
      } else {
        context.stdout.line(PlanReport.summary(plan))
        context.stdout.line("planned in \(seconds(planned)): checkpoint opened in \(seconds(opened)), grouped in \(seconds(described - opened)), placed in \(seconds(planned - described))")
      }
      if !plan.fits { throw ExitCode.failure }
      return
    }
    guard let output else { return }
    try plan.checkCapacities()
    if split.script != nil { return try emitScript(plan, output: output, context: context) }
    // Never into the input, never a non-empty directory unless --force, never beside another writer.
    let directory = try ShardOutput(plan, sourcePath: input, directory: output, partCount: part.count, force: force)
    defer { directory.release() }
    let assignment = plan.partAssignment(partCount: part.count)
    let myBytes = plan.files.indices.filter { assignment[$0] == part.index }.reduce(0) { $0 + plan.files[$1].tensorByteCount }
    let label = part.count > 1 ? "shard \(part.index + 1)/\(part.count)" : "shard"
    let writing = context.progress(total: myBytes, unit: .bytes, label: label)
    let written = try ShardJob.writePart(
      plan, sourcePath: input, outputDirectory: output, part: part.index, of: part.count, force: force, resume: resume
    ) { writing.advance(by: $0) }
    writing.finish()
    if part.count > 1 {
      context.stdout.line("part \(part.index + 1)/\(part.count): wrote \(written.count) of \(plan.files.count) files (\(ByteCount.formatted(myBytes))) in \(seconds(clock.now - start)); run 'smelt shard --finalize \(output)' when all parts are done")
      return
    }
    let total = plan.files.reduce(0) { $0 + $1.tensorByteCount }
    let verifying = context.progress(total: total, unit: .bytes, label: "verify")
    let result = try ShardFinalizer.finalize(plan, outputDirectory: output, partCount: 1) { verifying.advance(by: $0) }
    try directory.removeStale(plan: plan, result: result)
    verifying.finish()
    try OutputCheck.run(directory: output, context: context)
    context.stdout.line(PlanReport.deviceTable(plan))
    context.stdout.line("wrote \(plan.files.count) files (\(ByteCount.formatted(total))) for \(plan.devices.count) device(s) and \(result.manifestPath) in \(seconds(clock.now - start))")
  }

  /// `--emit-sbatch FILE --parts N`: the array of parts and the finalize job. Memory from the writer's own
  /// bounds: whole tensors move with `copy_file_range` (no user-space buffer), slices through one gather
  /// buffer per worker, plus the plan's tables.
  private func emitScript(_ plan: ShardPlan, output: String, context: CommandContext) throws {
    guard let script = split.script else { return }
    let assignment = plan.partAssignment(partCount: script.partCount)
    var loads = [Int](repeating: 0, count: script.partCount)
    for (index, file) in plan.files.enumerated() { loads[assignment[index]] += file.tensorByteCount }
    let tensorCount = plan.devices.reduce(0) { $0 + $1.tensors.count }
    let tables = plan.source.tensors.count * 1024 + tensorCount * 512
    let workers = min(script.cpus, ShardWriter.maximumWorkers)
    let partPeak = ResourcePlan.programBytes + tables + workers * ShardWriter.gatherBufferByteCount
    let ideal = Double(loads.reduce(0, +)) / Double(script.partCount)
    let absolute = FileSystem.absolutePath(output)
    try split.writeScript(
      job: "shard", command: scriptCommand,
      finalizeCommand: [SplitJobOptions.executablePath(), "shard", "--finalize", absolute],
      part: ResourcePlan(cpus: script.cpus, peakResidentBytes: partPeak),
      finalize: ResourcePlan(cpus: 1, peakResidentBytes: ResourcePlan.programBytes + tables),
      logDirectory: absolute + ".slurm-logs",
      notes: [
        "\(plan.files.count) output file(s), \(ByteCount.formatted(loads.reduce(0, +))) of tensors; the largest part has \(DisplayFormat.decimal(ideal > 0 ? Double(loads.max() ?? 0) / ideal : 1))x the average."
      ],
      context: context)
  }

  private func seconds(_ duration: Duration) -> String {
    let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    return DisplayFormat.decimal(value) + " s"
  }
}
