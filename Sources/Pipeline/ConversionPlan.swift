import Checkpoint
import JSON
import Quantization
import SafeTensors
import TensorCore
import WeightFormats

/// Why a conversion cannot be planned or run.
public enum ConversionError: Error, Sendable, CustomStringConvertible {
  /// A quantized weight lacks one of its tensors (e.g. an FP8 weight without `weight_scale_inv`).
  case missingCompanion(weight: String, role: String)
  /// A companion tensor has the wrong shape or dtype.
  case badCompanion(tensor: String, expected: String, actual: String)
  /// The weight's layout cannot be converted to the target (e.g. a 3-D tensor to FP8 blocks).
  case unsupported(tensor: String, reason: String)
  /// A value that cannot be converted faithfully (NaN/Inf), or a codec failure.
  case numeric(tensor: String, reason: String)
  /// A `--rule`/`--recipe` that cannot be parsed or mixes schemes no single consumer reads.
  case invalidRecipe(String)
  /// `--resume` into an output whose interrupted run had other options or older inputs.
  case cannotResume(output: String, reason: String)
  /// Selected weights the 4-bit layout cannot take (a group size that does not divide the input dimension),
  /// every one of them, with its reason.
  case incompatible(format: String, tensors: [(name: String, reason: String)])
  /// A quantizing target under which no weight of the checkpoint is stored quantized: the config it writes would
  /// promise quantized weights (and their scales) that no tensor holds.
  case nothingQuantized(target: String, dequantizedExample: String?)

  public var description: String {
    switch self {
    case .missingCompanion(let weight, let role):
      return "weight '\(weight)' has no '\(role)' tensor; a quantized weight without its scale cannot be converted (is a shard missing?)"
    case .badCompanion(let tensor, let expected, let actual):
      return "tensor '\(tensor)' should be \(expected) but is \(actual)"
    case .unsupported(let tensor, let reason):
      return "cannot convert '\(tensor)': \(reason)"
    case .numeric(let tensor, let reason):
      return "tensor '\(tensor)': \(reason)"
    case .invalidRecipe(let reason):
      return reason
    case .cannotResume(let output, let reason):
      return "cannot --resume into '\(output)': \(reason); repeat the interrupted command exactly, or use --force to start over"
    case .incompatible(let format, let tensors):
      let lines = tensors.map { "  \($0.name): \($0.reason)" }.joined(separator: "\n")
      return "\(tensors.count) selected weight(s) cannot take \(format):\n\(lines)\n"
        + "pick a --group-size (or an int4-gN name) that divides them, keep them at source precision with "
        + "--skip-incompatible (as mlx-lm does), or --exclude them (a glob)"
    case .nothingQuantized(let target, let example):
      let kept = example.map {
        ": every weight it would take is kept, the quantized ones dequantized (e.g. '\($0)', whose layout it has no place for)"
      } ?? ": the family keeps every weight it would take at source precision"
      return "\(target) quantizes no weight of this checkpoint\(kept); its config would declare quantized weights no "
        + "tensor holds. Use --to bf16 to dequantize, or a target this checkpoint's weights take (formats/families.md)"
    }
  }
}

/// One unit of work: a source weight group and what becomes of it.
public struct ConversionJob: Sendable {
  /// What happens to the group.
  public enum Action: Sendable {
    /// Bytes copied unchanged (file to file).
    case copy
    /// Dequantize or cast to a plain dtype.
    case cast(DType)
    /// Quantize to scaled FP8.
    case fp8(FP8Scheme, FP8ScaleRule)
    /// Quantize to a 4-bit (or MLX 8-bit) group layout.
    case group(GroupJob)
    /// Move the source's codes and scales into the target layout without dequantizing (`LosslessRepack`).
    case repack(RepackLayout)
  }

  /// The source group.
  public var group: WeightGroup
  public var action: Action
  /// The output tensors, in the order the job produces them (for `.copy`, the same names as the source).
  public var outputs: [PlannedTensor]
  /// Source tensor bytes the job reads.
  public var sourceByteCount: Int
  /// The logical `[rows, columns]` of the weight (`[1, n]` for 1-D and scalar tensors).
  public var rows: Int
  public var columns: Int
  /// For a cast of fused experts whose family holds them input-major (gpt-oss: `[E, in, out]`): the decoded
  /// `[E, out, in]` matrices are transposed, each `(out, in)` matrix to `(in, out)`.
  public var transposedMatrix: (rows: Int, columns: Int)? = nil

  /// Output bytes.
  public var outputByteCount: Int { outputs.reduce(0) { $0 + (ByteCount.of($1.dtype, shape: $1.shape) ?? 0) } }

  /// Whether the output holds the weight unquantized: cast, or a plain weight copied.
  var storesUnquantized: Bool {
    switch action {
    case .cast: true
    case .copy: group.storage == .plain
    case .fp8, .group, .repack: false
    }
  }
}

/// The complete, deterministic plan of a conversion: jobs, output files, rewritten config.
public struct ConversionPlan: Sendable {
  public var target: ConversionTarget
  public var jobs: [ConversionJob]
  /// Output files in order: name and the job indices it holds.
  public var files: [(name: String, jobs: [Int])]
  /// The output `config.json`, if the input had one.
  public var config: JSONObject?
  /// The consumer family whose config block the output carries (`nil` for casts).
  public var family: ConsumerFamily?
  /// Further metadata files to write next to `config.json` (ModelOpt `hf_quant_config.json`, GPTQ
  /// `quantize_config.json`).
  public var extraFiles: [(name: String, bytes: [UInt8])]
  /// Input sidecar files that are not copied because the config rewrite supersedes them (quantization
  /// metadata of the source format).
  public var replacedSidecars: Set<String>
  /// Weights the selection picked but the layout cannot take, kept at source precision, one line per reason.
  public var notes: [String]
  /// With `skipIncompatible`: the selected weights the 4-bit layout cannot take, kept at source precision (the
  /// config lists them as unquantized), each with its reason.
  public var skippedIncompatible: [(name: String, reason: String)]
  /// The `--rule`, `--include` and `--exclude` globs that match no tensor of the checkpoint, each as the option
  /// that gave it (`--exclude '*.foo'`): a typo there would otherwise silently convert everything as if absent.
  public var unmatchedGlobs: [String]
  /// The file format the output is written in.
  public var container: any OutputContainer = SafeTensorsContainer()

  public var sourceByteCount: Int { jobs.reduce(0) { $0 + $1.sourceByteCount } }
  public var outputByteCount: Int { jobs.reduce(0) { $0 + $1.outputByteCount } }
  /// Jobs that change bytes.
  public var convertedJobCount: Int {
    jobs.reduce(0) { count, job in if case .copy = job.action { count } else { count + 1 } }
  }

  /// Plans converting `checkpoint` to `target`.
  ///
  /// - Parameters:
  ///   - search: choose 4-bit scales with the clip search (`--search`).
  ///   - skipIncompatible: keep selected weights the 4-bit layout cannot take at source precision
  ///     (`skippedIncompatible`) instead of refusing the plan.
  /// - Throws: `ConversionError` when a quantized weight lacks its companion, selected weights cannot take
  ///   the target layout (`incompatible`, all of them at once), or a recipe mixes consumer families.
  public init(
    checkpoint: Checkpoint, target: ConversionTarget, selection: TensorSelection = TensorSelection(),
    maxShardByteCount: Int = OutputSharding.defaultMaxShardByteCount, compressedTensorsNaming: Bool = false,
    search: Bool = false, skipIncompatible: Bool = false, dropMTP: Bool = false
  ) throws {
    self.target = target
    let entries = checkpoint.entries
    let family: ConsumerFamily?
    switch target {
    case .group(let format): family = format.family
    case .mixed(let recipe): family = try recipe.family()
    case .fp8(let layout): family = layout.consumer(compressedTensorsNaming: compressedTensorsNaming)
    case .cast, .unscaledFP8: family = nil
    }
    self.family = family
    var context = JobContext(
      checkpoint: checkpoint, selection: selection,
      compressedTensors: compressedTensorsNaming || family == .compressedTensors, search: search,
      dequantizeKept: {
        switch target {
        case .group: return true
        case .mixed: return family != nil && family != .deepSeekFP8
        default: return false
        }
      }(),
      modelDType: WeightDecoding.modelDType(checkpoint), classifier: checkpoint.classifier)
    var jobs: [ConversionJob] = []
    var droppedMTP = 0
    for group in WeightGrouping.groups(of: entries) {
      // --drop-mtp: the family's MTP layer(s) (layers >= num_hidden_layers, unnumbered MTP modules) are left
      // out, as mlx-lm's and llama.cpp's converters do.
      if dropMTP, checkpoint.classifier.classify(group.parts.values.min() ?? group.modulePath).isMTP {
        droppedMTP += group.parts.count
        continue
      }
      var effective: ConversionTarget? = target
      var ruleMatched = false
      if case .mixed(let recipe) = target {
        let name = WeightDecoding.logicalName(of: group)
        let module = group.storage == .plain ? TensorName.modulePath(of: name) : group.modulePath
        let scheme: RecipeScheme
        if let rule = recipe.rule(for: name, module: module) {
          scheme = rule.scheme
          ruleMatched = true
        } else {
          scheme = recipe.fallback
        }
        if case .target(let t) = scheme { effective = t } else { effective = nil }
      }
      jobs.append(try ConversionPlan.job(for: group, target: effective, ruleMatched: ruleMatched, &context))
    }
    // Orphaned scales (a `weight_scale_inv` whose weight is missing) surface as plain tensors named
    // like a companion: refuse rather than silently carrying a scale with no weight.
    // (The checks go by index: they read each job's group in place, not a copy of every job.)
    for index in jobs.indices where jobs[index].group.storage == .plain {
      let name = jobs[index].group.parts["weight"] ?? ""
      if name.hasSuffix(".weight_scale_inv") {
        throw ConversionError.missingCompanion(weight: String(name.dropLast("_scale_inv".count)), role: "weight (F8_E4M3)")
      }
    }
    // In a block-FP8 checkpoint, an FP8 weight with no scale is a weight whose scale went missing (a lost
    // shard, a bad merge), not an unscaled cast: copying or casting it would silently produce garbage.
    let scaledFP8 = jobs.contains { $0.group.storage == .fp8Block } || checkpoint.config?.quantizationConfig?.quantMethod == "fp8"
    if scaledFP8 {
      for index in jobs.indices where jobs[index].group.storage == .plain {
        guard let name = jobs[index].group.parts["weight"], name.hasSuffix(".weight"), let entry = checkpoint.entry(named: name),
          entry.dtype == .float8E4M3FN || entry.dtype == .float8E5M2
        else { continue }
        throw ConversionError.missingCompanion(weight: name, role: "weight_scale_inv")
      }
    }
    if let example = context.dequantizedKeeps.first, let family {
      let storage = jobs.first { WeightDecoding.logicalName(of: $0.group) == example }?.group.storage
      throw ConversionError.invalidRecipe(
        "\(context.dequantizedKeeps.count) quantized weight(s) the recipe keeps (e.g. '\(example)', \(storage.map { "\($0)" } ?? "quantized")) "
          + "cannot stay as they are in a \(family) output, whose config does not describe their layout; 'keep' would "
          + "dequantize them to \(context.modelDType). Convert them with a rule (e.g. --rule '*=fp8-block' requantizes "
          + "FP8 weights onto compressed-tensors FP8 blocks from their exact values), or dequantize them on purpose "
          + "with a '=bf16' rule or --to bf16 as the default")
    }
    if !context.incompatible.isEmpty && !skipIncompatible {
      let formats = Set(context.incompatible.map(\.format)).sorted()
      throw ConversionError.incompatible(
        format: formats.joined(separator: ", "), tensors: context.incompatible.map { ($0.name, $0.reason) })
    }
    skippedIncompatible = context.incompatible.map { ($0.name, $0.reason) }
    if family != nil, jobs.allSatisfy(\.storesUnquantized) {
      let dequantized = jobs.first { job in
        if case .cast = job.action { return job.group.storage != .plain } else { return false }
      }
      throw ConversionError.nothingQuantized(
        target: "\(target)", dequantizedExample: dequantized.map { WeightDecoding.logicalName(of: $0.group) })
    }
    unmatchedGlobs = ConversionPlan.unmatchedGlobs(target: target, selection: selection, groups: jobs.lazy.map(\.group))
    ConversionPlan.fuseTensorScales(&jobs)
    self.jobs = jobs
    notes = context.notes.map { reason, kept in
      "kept \(kept.count) weight(s) at source precision: \(reason) (e.g. '\(kept.example)')"
    }.sorted()
    let assignment = OutputSharding.assign(itemByteCounts: jobs.map(\.outputByteCount), maxByteCount: maxShardByteCount)
    let names = OutputSharding.fileNames(count: assignment.count)
    files = zip(names, assignment).map { ($0, $1) }
    let quantization = QuantizationConfigWriter.Metadata(family: family, jobs: jobs)
    let rewritten = checkpoint.config.map {
      ConfigRewriter.rewrite($0.raw, for: target, quantization: quantization, compressedTensorsNaming: context.compressedTensors)
    }
    config = dropMTP ? rewritten.map(Self.withoutMTPLayers) : rewritten
    if droppedMTP > 0 { notes.append("--drop-mtp: left out \(droppedMTP) tensor(s) of the MTP layer(s); the config declares none") }
    extraFiles = quantization.files
    replacedSidecars = ["hf_quant_config.json", "quantize_config.json"]
  }

  /// The globs of `target`'s recipe rules and of `selection` that match none of `groups` by any of the names a
  /// glob is matched against (tensor names, the logical weight name, the module path).
  static func unmatchedGlobs(
    target: ConversionTarget, selection: TensorSelection, groups: some Collection<WeightGroup>
  ) -> [String] {
    var globs: [(option: String, glob: Glob)] = []
    if case .mixed(let recipe) = target { globs += recipe.rules.map { ("--rule", $0.glob) } }
    globs += selection.includes.map { ("--include", $0) } + selection.excludes.map { ("--exclude", $0) }
    guard !globs.isEmpty else { return [] }
    var names = Set<String>()
    for group in groups {
      let logical = WeightDecoding.logicalName(of: group)
      names.formUnion(group.tensorNames)
      names.insert(logical)
      names.insert(group.storage == .plain ? TensorName.modulePath(of: logical) : group.modulePath)
    }
    return globs.filter { entry in !names.contains(where: entry.glob.matches) }.map { "\($0.option) '\($0.glob.pattern)'" }
  }

  /// The config keys that count a model's MTP layers (DeepSeek/GLM/Kimi, Qwen3.5), top level and in a nested
  /// `text_config`.
  static let mtpLayerCountKeys = ["num_nextn_predict_layers", "mtp_num_hidden_layers"]

  /// `config` declaring no MTP layer: every MTP layer count that is present set to 0.
  public static func withoutMTPLayers(_ config: JSONObject) -> JSONObject {
    var config = config
    for key in mtpLayerCountKeys where config[key] != nil { config = config.setting(key, to: .number(JSONNumber(0))) }
    if let text = config["text_config"]?.objectValue {
      config = config.setting("text_config", to: .object(withoutMTPLayers(text)))
    }
    return config
  }

  /// Shared inputs of `job(for:)`.
  struct JobContext {
    let checkpoint: Checkpoint
    let selection: TensorSelection
    let compressedTensors: Bool
    let search: Bool
    /// Dequantize kept quantized weights to the model dtype (4-bit outputs, whose consumers do not read the
    /// source layout).
    let dequantizeKept: Bool
    let modelDType: DType
    /// The checkpoint family's view of names (what its release quantizes and keeps).
    let classifier: TensorClassifier
    var notes: [String: (count: Int, example: String)] = [:]
    /// Quantized weights a recipe keeps (`keep`, or its default) that the output's consumer cannot read as they
    /// are: refused, since keeping them would mean dequantizing them.
    var dequantizedKeeps: [String] = []
    /// Selected weights the layout cannot take: all are named at once (or kept, with `--skip-incompatible`).
    var incompatible: [(name: String, format: String, reason: String)] = []

    mutating func note(_ reason: String, _ name: String) {
      let previous = notes[reason]
      notes[reason] = ((previous?.count ?? 0) + 1, previous?.example ?? name)
    }
  }

  private static func job(
    for group: WeightGroup, target: ConversionTarget?, ruleMatched: Bool, _ context: inout JobContext
  ) throws -> ConversionJob {
    let checkpoint = context.checkpoint
    let sourceEntries = group.tensorNames.compactMap { checkpoint.entry(named: $0) }
    let sourceBytes = sourceEntries.reduce(0) { $0 + $1.byteCount }
    func copyJob() -> ConversionJob {
      ConversionJob(
        group: group, action: .copy,
        outputs: sourceEntries.map { PlannedTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape) },
        sourceByteCount: sourceBytes, rows: 0, columns: 0)
    }
    // Geometry (header-only) and the companion checks the streaming decoders rely on.
    let geometry: WeightGeometry
    switch group.storage {
    case .plain:
      guard let main = checkpoint.entry(named: group.parts["weight"] ?? "") else { return copyJob() }
      let rows = main.shape.count >= 2 ? main.shape[0] : 1
      let columns = main.shape.count >= 2 ? main.shape.dropFirst().reduce(1, *) : (ByteCount.elementCount(main.shape) ?? 0)
      geometry = WeightGeometry(shape: main.shape, rows: rows, columns: columns, dtype: main.dtype)
    default:
      do { geometry = try WeightDecoding.geometry(of: group, in: context.checkpoint) } catch {
        // An unreadable quantized layout only matters if the conversion has to decode it.
        if target == nil && !context.dequantizeKept { return copyJob() }
        throw ConversionError.unsupported(tensor: group.modulePath, reason: "\(error)")
      }
    }
    let name = WeightDecoding.logicalName(of: group)
    let rows = geometry.rows
    let columns = geometry.columns
    let mainDType = group.storage == .plain ? geometry.dtype : .float32

    /// The weight decoded and written as `dtype`. Fused experts decode `[E, out, in]`; a family that holds them
    /// input-major in its plain checkpoints (gpt-oss: `[E, in, out]`) gets them so.
    func castJob(_ dtype: DType) -> ConversionJob {
      var job = ConversionJob(
        group: group, action: .cast(dtype), outputs: [PlannedTensor(name: name, dtype: dtype, shape: geometry.shape)],
        sourceByteCount: sourceBytes, rows: rows, columns: columns)
      if group.storage != .plain, context.classifier.holdsInputMajorExperts(name, shape: geometry.shape) {
        job.outputs[0].shape = [geometry.shape[0], geometry.shape[2], geometry.shape[1]]
        job.transposedMatrix = (geometry.shape[1], geometry.shape[2])
      }
      return job
    }

    /// A weight kept at source precision: bytes copied, or dequantized when the output's consumer cannot read
    /// the source layout.
    func keptJob() -> ConversionJob {
      guard context.dequantizeKept, group.storage != .plain else { return copyJob() }
      // A recipe's `keep` means the weight as it is: dequantizing it would make the output lie about it.
      if target == nil { context.dequantizedKeeps.append(name) }
      return castJob(context.modelDType)
    }
    guard let target else { return keptJob() }
    let selected: Bool
    if ruleMatched {
      if context.selection.excludes.contains(where: { $0.matches(name) }) {
        selected = false
      } else {
        selected = context.selection.includes.contains(where: { $0.matches(name) })
          || TensorSelection.isRuleCandidate(name, shape: geometry.shape, target: target, classifier: context.classifier)
      }
    } else {
      selected = context.selection.selects(
        name, shape: geometry.shape, dtype: mainDType, storage: group.storage, target: target, classifier: context.classifier)
    }
    // A stacked expert tensor of native 4-bit codes (gpt-oss) converts only by a lossless repack.
    let expertStack = !selected && !ruleMatched && geometry.shape.count == 3 && group.format.storesMXFP4Codes
      && context.selection.selectsExpertStack(name, target: target, classifier: context.classifier)
    guard selected || expertStack else { return keptJob() }
    if let repack = repackJob(group, geometry: geometry, name: name, target: target, context: context, sourceBytes: sourceBytes) {
      return repack ?? copyJob()
    }
    if expertStack { return keptJob() }

    switch target {
    case .cast(let dtype), .unscaledFP8(let dtype):
      if group.storage == .plain && geometry.dtype == dtype { return copyJob() }
      if group.storage == .plain {
        guard geometry.dtype.isFloatingPoint, geometry.dtype != .complex64 else { return copyJob() }
      }
      return castJob(dtype)
    case .fp8(let layout):
      guard geometry.shape.count == 2, rows > 0, columns > 0 else {
        throw ConversionError.unsupported(tensor: name, reason: "FP8 scaling needs a non-empty 2-D weight, this one is \(geometry.shape)")
      }
      let ctNaming = layout.usesCompressedTensorsNaming(asked: context.compressedTensors)
      let sourcePlainDType = group.storage == .plain ? geometry.dtype : context.modelDType
      let scaleDType = layout.scaleDType(weightDType: sourcePlainDType, compressedTensorsNaming: ctNaming)
      return ConversionJob(
        group: group, action: .fp8(layout.granularity, layout.scaleRule(storageDType: scaleDType)),
        outputs: try layout.plannedTensors(
          module: TensorName.modulePath(of: name), weightName: name, rows: rows, columns: columns, scaleDType: scaleDType,
          compressedTensorsNaming: ctNaming),
        sourceByteCount: sourceBytes, rows: rows, columns: columns)
    case .group(let format):
      guard geometry.shape.count == 2, rows > 0, columns > 0 else {
        context.note("\(format.name) needs a 2-D weight", name)
        return keptJob()
      }
      if let reason = format.unsupportedReason(rows: rows, columns: columns) {
        context.incompatible.append((name, format.name, "\(format.name) \(geometry.shape): \(reason)"))
        return keptJob()
      }
      // Plain BF16/F16/F32 weights quantize in their own dtype; anything decoded (FP8, 4-bit) in exact F32.
      let weightDType: DType = group.storage == .plain && [.bfloat16, .float16, .float32].contains(geometry.dtype) ? geometry.dtype : .float32
      // compressed-tensors int4 stores scales in the weight dtype; an F32 decode is served in the model dtype.
      let scaleDType: DType = group.storage == .plain ? weightDType : context.modelDType
      let module = TensorName.modulePath(of: name)
      return ConversionJob(
        group: group, action: .group(GroupJob(format: format, search: context.search, weightDType: weightDType, scaleDType: scaleDType)),
        outputs: format.outputs(module: module, rows: rows, columns: columns, weightDType: weightDType, scaleDType: scaleDType),
        sourceByteCount: sourceBytes, rows: rows, columns: columns)
    case .mixed:
      throw ConversionError.invalidRecipe("a recipe cannot nest another recipe")
    }
  }

  /// Links NVFP4 weights that engines load as one fused layer (`FusedLinears`: gate/up, q_a/kv_a, q/k/v under
  /// one parent) so they share one per-tensor scale, as llm-compressor's
  /// `update_fused_layer_weight_global_scales` does: only when every sibling is present and quantized to the
  /// same layout.
  static func fuseTensorScales(_ jobs: inout [ConversionJob]) {
    // The candidate jobs by fused layer, each under its sibling leaf (a repeated module keeps its last job).
    var layers: [String: [String: Int]] = [:]
    for index in jobs.indices {
      guard case .group(let groupJob) = jobs[index].action, groupJob.format.sharesTensorScaleWithFusedSiblings,
        let first = jobs[index].outputs.first, let layer = FusedLinears.fusedLayer(of: TensorName.modulePath(of: first.name))
      else { continue }
      layers[layer.module, default: [:]][layer.leaf] = index
    }
    for members in layers.values {
      guard members.count > 1, let leaf = members.keys.first, let fused = FusedLinears.fusedName[leaf],
        members.count == FusedLinears.siblings[fused]?.count
      else { continue }
      let indices = members.values.sorted()
      let formats = Set(indices.compactMap { i -> GroupFormat? in
        if case .group(let sibling) = jobs[i].action { return sibling.format }
        return nil
      })
      guard formats.count == 1 else { continue }
      for index in indices {
        guard case .group(var groupJob) = jobs[index].action else { continue }
        groupJob.fusedJobs = indices
        jobs[index].action = .group(groupJob)
      }
    }
  }
}
