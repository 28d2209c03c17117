import Checkpoint
import Dispatch
import GGML
import GGUF
import GGUFModel
import JobParts
import JSON
import Quantization
import SafeTensors
import Synchronization
import SystemIO
import TensorCore
import WeightFormats

/// `smelt convert IN OUT.gguf --to gguf-<preset>`: a checkpoint (FP8 block, BF16, F32, ...) straight to the
/// GGUF llama.cpp loads, in one streaming pass.
///
/// The plan is pure (headers only): the architecture's tensor map (`GGUFArchitectures.mapping(for:)`:
/// `DeepSeek2`, `GptOss`; in convert_hf_to_gguf.py's order), llama-quantize's type for every tensor (`LlamaQuantize.choose` as llama-quantize runs it over the
/// converter's F32 GGUF, so the bytes are those of llama.cpp's two-step pipeline), the metadata (hyperparameters,
/// tokenizer, `general.file_type`, imatrix keys) and the file layout(s) — one file, or a `llama-gguf-split`
/// set. Source weights are read through the weight-format registry (`WeightDecoding`), whatever their
/// storage, and encoded by the ggml kernels (`GGMLKernels`); nothing here knows a storage or block type.
public struct GGUFConversionPlan: Sendable {
  public struct Options: Sendable {
    public var preset: LlamaFileType
    /// Write the MTP block as `blk.N.nextn.*` (`--drop-mtp` clears it, for builds that cannot load it).
    public var keepMTP = true
    /// Split into `-0000N-of-0000M.gguf` files of at most this many tensor bytes (nil: one file).
    public var maxShardByteCount: Int?
    /// An importance matrix (llama-imatrix's file) weighting the k-quant searches, and its path.
    public var importance: ImportanceMatrix?
    public var importancePath: String?
    /// `--rule GLOB=TYPE`: a ggml type for GGUF tensor names matching GLOB (first match wins), as
    /// llama-quantize's `--tensor-type`; consulted only for tensors the preset quantizes.
    public var overrides: [(glob: Glob, type: GGMLType)] = []

    public init(preset: LlamaFileType) { self.preset = preset }
  }

  /// One output tensor: where it is written and where its elements come from.
  public struct Tensor: Sendable {
    public var info: GGUFTensorInfo
    public var source: GGUFTensorPlan.Source
    /// Arithmetic on the gathered values (`ssm_a = -exp(A_log)`, Qwen3.5's `1 + w` norms).
    public var transform: ElementTransform?
    /// The output file (index into `layouts`) and the tensor's index in it.
    public var file: Int
    public var indexInFile: Int
    /// The type llama-quantize falls back to because the row is not whole blocks of the preset's type.
    public var fellBack: Bool
    public var overridden: Bool
    /// Importance vectors, one per `ne[2]` plane (expert or head), each `ne[0]` long; nil without, and for a
    /// repacked tensor (no search runs).
    public var importance: [[Float]]?
    /// Set when the source weights' codes and scales move into `info.type` as they are (no re-rounding).
    public var repack: GGUFRepack?
    /// The bytes of the source weights it reads (both MLA halves read all of `kv_b_proj`).
    public var sourceByteCount: Int = 0
  }

  public enum Failure: Error, CustomStringConvertible {
    case noConfig(String)
    case mapping(GGUFMappingFailure)
    case quantize(LlamaQuantize.Failure)
    case importance(ImportanceMatrix.Failure)
    case tokenizer(TokenizerMetadata.Failure, path: String)
    case unknownSource(String)

    public var description: String {
      switch self {
      case .noConfig(let path): "\(path): no config.json; a GGUF needs the model's hyperparameters"
      case .mapping(let failure): "\(failure)"
      case .quantize(let failure): "\(failure)"
      case .importance(let failure): "--imatrix: \(failure)"
      case .tokenizer(let failure, let path): "\(path): \(failure)"
      case .unknownSource(let name): "the checkpoint has no weight '\(name)'"
      }
    }
  }

  public let options: Options
  /// `general.architecture` of the output (`deepseek2`, `gpt-oss`).
  public let architecture: String
  public let layouts: [GGUFLayout]
  /// Output paths, parallel to `layouts`.
  public let paths: [String]
  /// Every tensor, in write order (file by file, each in its info order).
  public let tensors: [Tensor]
  /// Warnings for the user (no tokenizer, ...).
  public let notes: [String]
  /// The `--rule` globs that match no GGUF tensor name of the plan (a typo would otherwise change nothing).
  public let unmatchedOverrides: [String]
  public let sourceByteCount: Int
  /// The source weights the tensors read (by logical name), with their geometry: what the runner decodes.
  let sourceWeights: [String: (group: WeightGroup, geometry: WeightGeometry)]

  public var outputByteCount: Int { layouts.reduce(0) { $0 + $1.fileByteCount } }

  /// Plans converting `checkpoint` into `output` (a `.gguf` path; with `maxShardByteCount`, the split set's
  /// prefix).
  public init(checkpoint: Checkpoint, output: String, options: Options) throws {
    self.options = options
    guard let config = checkpoint.config else { throw Failure.noConfig(checkpoint.directory) }
    let architecture = try Self.mapped { () throws(GGUFMappingFailure) in try GGUFArchitectures.mapping(for: config) }
    self.architecture = architecture.architecture
    let mapping = GGUFMappingOptions(keepMTP: options.keepMTP)
    var notes: [String] = []
    // The deepseek2 map reads Hugging Face names. A multimodal wrapper (Kimi K2.5) keeps its language model
    // under its own prefix, and the rest of it (vision tower, projector) is no deepseek2 tensor: llama.cpp
    // reads those from a separate mmproj GGUF, as its converter writes them.
    let wrapperPrefixes = ModelFamily.detect(config).naming.languageModelPrefixes(usedBy: checkpoint.entries.lazy.map(\.name))
    func huggingFaceName(_ name: String) -> String? {
      guard !wrapperPrefixes.isEmpty else { return name }
      guard let (canonical, release) = wrapperPrefixes.first(where: { name.hasPrefix($0.release) }) else { return nil }
      return canonical + name.dropFirst(release.count)
    }
    let groups = WeightGrouping.groups(of: checkpoint.entries)
    var shapes = [String: [Int]](minimumCapacity: groups.count)
    var releaseNames = [String: String](minimumCapacity: groups.count)
    var groupBytes = [String: Int](minimumCapacity: groups.count)
    var sources = [String: (group: WeightGroup, geometry: WeightGeometry)](minimumCapacity: groups.count)
    var outsideLanguageModel: [String] = []
    // Fused experts a plain gpt-oss checkpoint holds `[E, in, out]`: the mappings read every fused expert
    // tensor `[E, out, in]`, and the runner transposes these per expert.
    var inputMajor = Set<String>()
    let classifier = checkpoint.classifier
    // A stored tensor stands for its weight in the converter's order (`_blocks` for gpt-oss's `gate_up_proj`,
    // `weight_packed` for an int4 one).
    var weightOfStored = [String: String](minimumCapacity: checkpoint.entries.count)
    for group in groups {
      let name = WeightDecoding.logicalName(of: group)
      for stored in group.parts.values { weightOfStored[stored] = name }
      guard let hf = huggingFaceName(name) else {
        outsideLanguageModel.append(name)
        continue
      }
      let geometry = try WeightDecoding.geometry(of: group, in: checkpoint)
      shapes[hf] = geometry.shape
      if group.storage == .plain, classifier.holdsInputMajorExperts(name, shape: geometry.shape) {
        shapes[hf] = [geometry.shape[0], geometry.shape[2], geometry.shape[1]]
        inputMajor.insert(name)
      }
      releaseNames[hf] = name
      sources[name] = (group, geometry)
      groupBytes[name] = group.parts.values.reduce(0) { $0 + (checkpoint.entry(named: $1)?.byteCount ?? 0) }
    }
    if let first = outsideLanguageModel.min() {
      notes.append(
        "\(outsideLanguageModel.count) weight(s) outside the language model not written (\(first), ...): llama.cpp loads a vision tower from a separate mmproj GGUF, which Smelt does not write")
    }
    // convert_hf_to_gguf.py walks the files in name order and each file's tensors in name order; the weights its
    // `dequant_model` rebuilds under a new name (GPTQ's `qweight`, compressed-tensors' `weight_packed`: `new_tensors`)
    // come after every stored tensor, in that order.
    let rebuilt = Set(groups.filter { $0.parts["qweight"] != nil || $0.parts["weight_packed"] != nil }.map(WeightDecoding.logicalName(of:)))
    let storedOrder = zip(checkpoint.fileNames, checkpoint.files).sorted { $0.0 < $1.0 }
      .flatMap { $0.1.entries.map(\.name).sorted() }.map { weightOfStored[$0] ?? $0 }
    let sourceOrder = (storedOrder.filter { !rebuilt.contains($0) } + storedOrder.filter(rebuilt.contains)).compactMap(huggingFaceName)
    let tensorMap = try Self.mapped { () throws(GGUFMappingFailure) in try architecture.tensors(config, shapes: shapes, options: mapping) }
    let planned = architecture.converterOrder(tensorMap, sourceOrder: sourceOrder).map { tensor in
      var renamed = tensor
      renamed.source = tensor.source.renamingTensors { releaseNames[$0] ?? $0 }
      if case .fusedExperts(let name, let stride, let offset, _) = renamed.source, inputMajor.contains(name) {
        renamed.source = .fusedExperts(name, stride: stride, offset: offset, inputMajor: true)
      }
      return renamed
    }
    let metadataBase = try Self.mapped { () throws(GGUFMappingFailure) in
      try architecture.hyperparameters(config, options: mapping, fileType: options.preset)
    }
    let model = try Self.mapped { () throws(GGUFMappingFailure) in try architecture.quantizeModel(config, options: mapping) }

    // Types as llama-quantize chooses them over the converter's file (F32, or the types the architecture's
    // converter keeps whatever its outtype), in its processing order. The F32/F16/BF16 presets are that outtype:
    // only a tensor the converter writes as integers keeps its own type there.
    let byName = Dictionary(uniqueKeysWithValues: planned.map { ($0.name, $0) })
    let order = LlamaQuantize.processingOrder(planned.map(\.name))
    func precision(_ name: String) -> GGUFSourcePrecision {
      guard let (group, _) = sources[name] else { return .quantized }
      guard group.storage == .plain, let part = group.parts["weight"] ?? group.parts.values.first,
        let dtype = checkpoint.entry(named: part)?.dtype
      else { return .quantized }
      switch dtype {
      case .float32: return .f32
      case .float16: return .f16
      case .bfloat16: return .bf16
      default: return dtype.isFloatingPoint ? .quantized : .integer
      }
    }
    let inputs = order.map { name in
      let tensor = byName[name]!
      var type = architecture.converterType(of: tensor, sources: tensor.source.tensorNames.map(precision)) ?? .f32
      if options.preset.isConverterOutput, !type.isInteger { type = .f32 }
      return LlamaQuantize.Tensor(name: name, dimensions: tensor.dimensions, type: type)
    }
    let overrides = options.overrides
    let choices: [LlamaQuantize.Choice]
    do throws(LlamaQuantize.Failure) {
      choices = try LlamaQuantize.choose(
        inputs, preset: options.preset, model: model, hasImportance: options.importance != nil,
        override: { name in overrides.first { $0.glob.matches(name) }?.type })
    } catch {
      throw Failure.quantize(error)
    }
    if let missing = LlamaQuantize.missingImportance(choices, names: order, hasImportance: options.importance != nil) {
      throw Failure.quantize(missing)
    }
    let choiceByName = Dictionary(uniqueKeysWithValues: zip(order, choices).map { ($0, $1) })
    unmatchedOverrides = overrides.map(\.glob).filter { glob in !order.contains(where: glob.matches) }.map(\.pattern)

    var metadata = metadataBase
    metadata.set("general.quantization_version", .uint32(2))
    let tokenizer = try Self.tokenizer(
      checkpoint: checkpoint, config: config, pre: architecture.preTokenizer, tiktokenPre: architecture.tiktokenPreTokenizer,
      specialTokens: architecture.specialTokens, notes: &notes)
    metadata.append(contentsOf: tokenizer.keyValues)
    if tokenizer == .none, let vocabulary = config.vocabSize, metadata["\(architecture.architecture).vocab_size"] == nil {
      // Without a token list llama.cpp sizes the vocabulary (and the embedding it loads) by this key.
      metadata.set("\(architecture.architecture).vocab_size", .uint32(UInt32(truncatingIfNeeded: vocabulary)))
    }
    if let importance = options.importance {
      metadata.append(contentsOf: importance.metadata(filePath: options.importancePath ?? ""))
    }

    // The header's `ne` is llama-quantize's for its presets (trailing 1s dropped); the pieces work on the plan's.
    let plannedInfos = Dictionary(uniqueKeysWithValues: planned.map {
      ($0.name, GGUFTensorInfo(name: $0.name, dimensions: $0.dimensions, type: choiceByName[$0.name]!.type))
    })
    let infos = planned.map { tensor in
      var info = plannedInfos[tensor.name]!
      if !options.preset.isConverterOutput { info.dimensions = LlamaFileType.writtenDimensions(info.dimensions) }
      return info
    }
    let layouts: [GGUFLayout]
    if let limit = options.maxShardByteCount {
      layouts = try GGUFSplit.plan(metadata: metadata, tensors: infos, maxShardBytes: limit)
      let prefix = GGUFSplit.prefix(ofOutput: output)
      paths = layouts.indices.map { GGUFSplit.shardPath(prefix: prefix, index: $0, count: layouts.count) }
    } else {
      layouts = [try GGUFLayout(metadata: metadata, tensors: infos)]
      paths = [output]
    }
    var tensors: [Tensor] = []
    for (f, layout) in layouts.enumerated() {
      for (t, written) in layout.tensors.enumerated() {
        let plan = byName[written.name]!, info = plannedInfos[written.name]!
        let choice = choiceByName[info.name]!
        var repack: GGUFRepack?
        switch plan.source {
        case .tensor, .stacked:
          let weights = plan.source.tensorNames.compactMap { sources[$0] }
          if weights.count == plan.source.tensorNames.count { repack = GGUFRepack.applicable(to: info.type, sources: weights) }
        case .fusedExperts(let name, _, _, let inputMajor):
          // Whole rows of each expert move; a transposed source's blocks run across the other axis.
          if !inputMajor, let weight = sources[name] { repack = GGUFRepack.applicable(to: info.type, fusedExperts: weight) }
        case .mlaKeyHalf, .mlaValueHalf, .tiledValueHeads:
          repack = nil  // these reorder the source's rows or columns: not its blocks
        }
        if plan.transform != nil { repack = nil }
        var importance: [[Float]]?
        if let matrix = options.importance, choice.type.isQuantized, repack == nil {
          let planes = info.dimensions.count >= 3 ? info.dimensions[2] : 1
          do { importance = try matrix.vectors(for: info.name, rowLength: info.rowLength, experts: planes) } catch {
            throw Failure.importance(error)
          }
        }
        tensors.append(Tensor(
          info: info, source: plan.source, transform: plan.transform, file: f, indexInFile: t, fellBack: choice.fellBack,
          overridden: choice.overridden, importance: importance, repack: repack,
          sourceByteCount: plan.source.tensorNames.reduce(0) { $0 + (groupBytes[$1] ?? 0) }))
      }
    }
    var sourceBytes = 0
    for name in Set(planned.flatMap(\.source.tensorNames)) {
      guard let bytes = groupBytes[name] else { throw Failure.unknownSource(name) }
      sourceBytes += bytes
    }
    self.layouts = layouts
    self.tensors = tensors
    self.notes = notes
    self.sourceByteCount = sourceBytes
    // Only the weights the plan reads: a wrapper's vision tower is not converted, so not kept either.
    let needed = Set(planned.flatMap(\.source.tensorNames))
    self.sourceWeights = sources.filter { needed.contains($0.key) }
  }

  private static func mapped<T>(_ body: () throws(GGUFMappingFailure) -> T) throws(Failure) -> T {
    do { return try body() } catch { throw .mapping(error) }
  }

  /// The tokenizer keys from the checkpoint's `tokenizer.json` (and `tokenizer_config.json`,
  /// `chat_template.jinja`), else from its `tiktoken.model` where the architecture's converter reads one (Kimi),
  /// or `tokenizer.ggml.model = none` with a note when there is neither.
  private static func tokenizer(
    checkpoint: Checkpoint, config: ModelConfig, pre: String, tiktokenPre: String?, specialTokens: [(kind: String, content: String)],
    notes: inout [String]
  ) throws
    -> TokenizerMetadata
  {
    func read(_ name: String) -> [UInt8]? {
      let path = FileSystem.join(checkpoint.directory, name)
      return FileSystem.exists(path) ? try? FileSystem.readFile(path) : nil
    }
    guard let tokenizerJSON = read("tokenizer.json") else {
      if let tiktoken = read("tiktoken.model") {
        guard let tiktokenPre else {
          notes.append("tiktoken.model and no tokenizer.json: llama.cpp's converter reads tiktoken vocabularies for Kimi (deepseek2) only; writing tokenizer.ggml.model = none (raw token ids only, no text)")
          return .none
        }
        do {
          return try TokenizerMetadata(
            tiktoken: tiktoken, tokenizerConfigJSON: read("tokenizer_config.json"), configJSON: read("config.json"),
            chatTemplateJinja: read("chat_template.jinja").map { String(decoding: $0, as: UTF8.self) }, vocabularySize: config.vocabSize,
            pre: tiktokenPre)
        } catch {
          throw Failure.tokenizer(error, path: checkpoint.directory)
        }
      }
      notes.append("no tokenizer.json: writing tokenizer.ggml.model = none (llama.cpp runs raw token ids only, no text)")
      return .none
    }
    let files = TokenizerMetadata.Files(
      tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: read("tokenizer_config.json"), configJSON: read("config.json"),
      chatTemplateJinja: read("chat_template.jinja").map { String(decoding: $0, as: UTF8.self) })
    do {
      return try TokenizerMetadata(files: files, vocabularySize: config.vocabSize, pre: pre, architectureSpecialTokens: specialTokens)
    } catch {
      throw Failure.tokenizer(error, path: FileSystem.join(checkpoint.directory, "tokenizer.json"))
    }
  }
}

/// What a finished GGUF conversion did.
public struct GGUFConversionReport: Sendable {
  public var tensorCount: Int
  public var sourceByteCount: Int
  public var outputByteCount: Int
  public var seconds: Double
  public var filesWritten: [String]
  public var filesResumed: [String]
  /// The tensors written by a lossless repack, in plan order (none of a resumed file).
  public var repacked: [RepackedTensor] = []
}

/// A GGUF tensor whose source codes and scales were moved rather than requantized, and the blocks the target
/// type could not hold exactly.
public struct RepackedTensor: Sendable, Equatable {
  public var name: String
  public var repack: GGUFRepack
  /// Blocks whose source scale the target rounds (a Q4_0 `d` is F16; a BF16 scale outside F16's range or
  /// precision is rounded to nearest even): 0 when the tensor is bit-exact.
  public var inexactBlocks: Int
  /// The first such block.
  public var firstInexact: SourceBlock?

  /// A block of a source weight: its index, row-major, 32 elements each.
  public struct SourceBlock: Sendable, Equatable {
    public var source: String
    public var block: Int
  }
}

/// Executes a `GGUFConversionPlan`, streaming: every tensor is cut into pieces of about `chunkElements`
/// source elements (row ranges of one weight; one expert of a stacked `*_exps` tensor at a time; one head of
/// an MLA half), and the workers take pieces in file order, each decoding its rows through the registry,
/// encoding them with the ggml kernels and writing them at their planned offset. Memory is a few pieces per
/// worker whatever the model's size: no tensor, layer or expert stack is ever held whole.
///
/// Each file is written under a temporary name, fsynced and renamed when complete. `--resume` reuses the
/// files of a split set that an earlier run of the same plan completed (`.<name>.smelt-progress.json` next
/// to the output records them with their SHA-256).
public final class GGUFConversionRunner: Sendable {
  public let plan: GGUFConversionPlan
  public let checkpoint: Checkpoint
  let chunkElements: Int
  let workerCount: Int
  /// Per repacked tensor (index into `plan.tensors`): inexact blocks so far, and the first (source, block).
  private let repackTallies = Mutex<[Int: (count: Int, first: RepackedTensor.SourceBlock?)]>([:])

  /// A runner of `plan` over `checkpoint`, the checkpoint it was planned from (its source weights and their
  /// geometry come from the plan).
  public init(plan: GGUFConversionPlan, checkpoint: Checkpoint, chunkElements: Int = 1 << 20, workerCount: Int = Parallel.defaultThreadCount) {
    self.plan = plan
    self.checkpoint = checkpoint
    self.chunkElements = max(1, chunkElements)
    self.workerCount = max(1, workerCount)
  }

  /// A unit of work: source rows of one output tensor.
  struct Piece {
    enum Kind {
      /// Rows `rows` of source `name`, written as they are, or with value heads reordered (`GGUFTensorPlan.Source.tiledValueHeads`).
      case rows(String, Range<Int>, HeadReorder?)
      /// Head `head` of an MLA `kv_b_proj`: its key rows transposed, or its value rows.
      case mlaHead(String, head: Int, key: Bool, nope: Int, value: Int)
      /// All of source `name`, its codes and scales moved by the tensor's `repack`.
      case repack(String)
      /// Expert `expert` of a fused expert source (`GGUFTensorPlan.Source.fusedExperts`): its selected rows,
      /// requantized or (with the tensor's `repack`) moved.
      case fusedExpert(String, expert: Int, stride: Int, offset: Int, inputMajor: Bool)
      /// All of integer source `name` (DeepSeek-V4's I64 hash-routing table), each value narrowed to the
      /// tensor's integer type.
      case integers(String)
    }
    var tensor: Int
    var kind: Kind
    /// Where the piece's blocks start within the output tensor.
    var byteOffset: Int
    /// Which `ne[2]` plane (expert, head) it lies in: the importance vector it uses.
    var plane: Int
    var elementCount: Int
  }

  /// A stable description of the plan and its inputs, for `--resume` and the parts of a split job.
  public func fingerprint() -> String {
    var hasher = SHA256()
    for layout in plan.layouts { hasher.update(layout.headerBytes) }
    for tensor in plan.tensors {
      hasher.update(Array("\(tensor.source)|\(tensor.transform?.rawValue ?? "")|\(tensor.importance?.count ?? -1)|\(tensor.repack?.rawValue ?? "");".utf8))
    }
    if let importance = plan.options.importance {
      for name in importance.entries.keys.sorted() {
        hasher.update(Array(name.utf8))
        importance.entries[name]!.withUnsafeBytes { hasher.update(Array($0)) }
      }
    }
    hasher.update(Array(checkpoint.inputFingerprint().utf8))
    return SHA256.hexString(hasher.finalize())
  }

  static func journalPath(for output: String) -> String {
    let (directory, name) = FileSystem.split(output)
    return FileSystem.join(directory, ".\(name).smelt-progress.json")
  }

  /// Writes every file of the plan.
  /// - Parameter progress: called with output bytes finished since the last call (from worker threads).
  public func run(resume: Bool, progress: @Sendable (Int) -> Void) throws -> GGUFConversionReport {
    let clock = ContinuousClock()
    let start = clock.now
    let journal = ResumeJournal(
      path: Self.journalPath(for: plan.paths[0]), planFingerprint: fingerprint(), inputStamps: checkpoint.inputStamps(), commandLine: [])
    if resume, let reason = journal.mismatch() { throw ConversionError.cannotResume(output: plan.paths[0], reason: reason) }
    let completed = resume ? journal.completed().mapValues(\.sha256) : [:]
    if !resume { journal.reset() }
    var written: [String] = []
    var resumed: [String] = []
    var repacked: [RepackedTensor] = []
    do {
      for (f, layout) in plan.layouts.enumerated() {
        let path = plan.paths[f]
        let name = FileSystem.split(path).name
        if let digest = completed[name], FileSystem.exists(path), (try? FileSystem.byteCount(of: path)) == layout.fileByteCount,
          (try? FileDigest.sha256(of: path)) == digest
        {
          resumed.append(path)
          progress(layout.fileByteCount)
          continue
        }
        let writer = try GGUFFileWriter(path: path, layout: layout)
        do {
          progress(layout.dataOffset)
          try write(tensors: plan.tensors.indices.filter { plan.tensors[$0].file == f }, progress: progress) { index, bytes, offset in
            try writer.write(tensor: index, bytes, at: offset)
          }
          try checkpoint.checkInputsUnchanged()
          try writer.commit()
        } catch {
          writer.abandon()
          throw error
        }
        if plan.layouts.count > 1 { journal.record(PartOutput(path: name, byteCount: layout.fileByteCount, sha256: try FileDigest.sha256(of: path))) }
        written.append(path)
        repacked += repackReport(of: plan.tensors.indices.filter { plan.tensors[$0].file == f })
      }
    } catch {
      // A problem of the input (NaN in a weight, a misshaped tensor) cannot be fixed by --resume: remove
      // every file of this plan. I/O failures keep completed files for --resume.
      if !(error is SystemError) {
        for path in written + resumed { try? FileSystem.remove(path) }
        journal.remove()
      }
      throw error
    }
    journal.remove()
    let elapsed = (clock.now - start).components
    return GGUFConversionReport(
      tensorCount: plan.tensors.count, sourceByteCount: plan.sourceByteCount, outputByteCount: plan.outputByteCount,
      seconds: Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18, filesWritten: written, filesResumed: resumed,
      repacked: repacked)
  }

  /// The pieces of output tensor `index`.
  func pieces(ofTensor index: Int) -> [Piece] {
    let tensor = plan.tensors[index]
    let info = tensor.info
    let rowLength = info.rowLength
    let rowBytes = info.type.rowByteCount(elementCount: rowLength) ?? 0
    let rowsPerPiece = max(1, chunkElements / max(1, rowLength))
    func rowPieces(_ name: String, rows: Int, plane: Int, baseRow: Int, reorder: HeadReorder? = nil) -> [Piece] {
      stride(from: 0, to: rows, by: rowsPerPiece).map { first in
        let range = first..<min(rows, first + rowsPerPiece)
        return Piece(
          tensor: index, kind: .rows(name, range, reorder), byteOffset: (baseRow + first) * rowBytes, plane: plane,
          elementCount: range.count * rowLength)
      }
    }
    let rows = info.elementCount / max(1, rowLength)
    if info.type.isInteger, case .tensor(let name) = tensor.source {
      return [Piece(tensor: index, kind: .integers(name), byteOffset: 0, plane: 0, elementCount: info.elementCount)]
    }
    if case .fusedExperts(let name, let stride, let offset, let inputMajor) = tensor.source {
      // One piece per expert (the outermost dimension): a fused source is decoded an expert at a time.
      let experts = max(1, info.dimensions.last ?? 1)
      let perExpert = rows / experts
      return (0..<experts).map { e in
        Piece(
          tensor: index, kind: .fusedExpert(name, expert: e, stride: stride, offset: offset, inputMajor: inputMajor),
          byteOffset: e * perExpert * rowBytes, plane: e, elementCount: perExpert * rowLength)
      }
    }
    if tensor.repack != nil {
      // A repack reads its source whole (codes and scales of one weight: one expert of a stack).
      let names = tensor.source.tensorNames
      let perWeight = rows / max(1, names.count)
      return names.enumerated().map { e, name in
        Piece(tensor: index, kind: .repack(name), byteOffset: e * perWeight * rowBytes, plane: e, elementCount: perWeight * rowLength)
      }
    }
    switch tensor.source {
    case .tensor(let name):
      return rowPieces(name, rows: rows, plane: 0, baseRow: 0)
    case .tiledValueHeads(let name, let reorder):
      return rowPieces(name, rows: rows, plane: 0, baseRow: 0, reorder: reorder)
    case .stacked(let names):
      let perExpert = rows / max(1, names.count)
      return names.enumerated().flatMap { e, name in rowPieces(name, rows: perExpert, plane: e, baseRow: e * perExpert) }
    case .fusedExperts:
      preconditionFailure("fused expert pieces are cut above")
    case .mlaKeyHalf(let name, let heads, let nope, let value), .mlaValueHalf(let name, let heads, let nope, let value):
      let key: Bool
      if case .mlaKeyHalf = tensor.source { key = true } else { key = false }
      let perHead = rows / max(1, heads)
      return (0..<heads).map { head in
        Piece(
          tensor: index, kind: .mlaHead(name, head: head, key: key, nope: nope, value: value),
          byteOffset: head * perHead * rowBytes, plane: head, elementCount: perHead * rowLength)
      }
    }
  }

  /// Where a piece's bytes go: `(tensor index in its file, bytes, offset within the tensor)`.
  typealias Sink = @Sendable (Int, UnsafeRawBufferPointer, Int) throws -> Void

  /// Converts `tensors` (indices into `plan.tensors`, all of one file) on the workers into `sink`.
  func write(tensors: [Int], progress: @Sendable (Int) -> Void, into sink: Sink) throws {
    let pieces = tensors.flatMap { self.pieces(ofTensor: $0) }
    let cursor = Mutex(0)
    let failure = Mutex<(any Error)?>(nil)
    DispatchQueue.concurrentPerform(iterations: max(1, min(workerCount, pieces.count))) { _ in
      while failure.withLock({ $0 == nil }) {
        let next = cursor.withLock { value -> Int in
          defer { value += 1 }
          return value
        }
        guard next < pieces.count else { return }
        do {
          let bytes = try encode(pieces[next], sink: sink)
          try checkpoint.checkInputsUnchanged(thorough: false)
          progress(bytes)
        } catch {
          failure.withLock { if $0 == nil { $0 = error } }
        }
      }
    }
    if let error = failure.withLock({ $0 }) { throw error }
  }

  /// Decodes, checks, encodes and writes one piece; returns the bytes written.
  private func encode(_ piece: Piece, sink: Sink) throws -> Int {
    let tensor = plan.tensors[piece.tensor]
    let info = tensor.info
    // Every kind below writes all of the piece's elements: no zero fill first (it was 5% of a Q8_0 run).
    var values = [Float](unsafeUninitializedCapacity: piece.elementCount) { _, count in count = piece.elementCount }
    let sourceName: String
    switch piece.kind {
    case .repack(let name):
      return try repack(piece, source: name, sink: sink)
    case .integers(let name):
      return try integers(piece, source: name, sink: sink)
    case .fusedExpert(let name, let expert, let stride, let offset, let inputMajor):
      sourceName = name
      let (group, geometry) = try source(name)
      if let repack = tensor.repack {
        let blocks = try repack.blocks(ofExpert: expert, stride: stride, offset: offset, group: group, geometry: geometry, in: checkpoint)
        try blocks.bytes.withUnsafeBytes { try sink(tensor.indexInFile, $0, piece.byteOffset) }
        return blocks.bytes.count
      }
      var whole = [Float](repeating: 0, count: geometry.columns)
      try whole.withUnsafeMutableBufferPointer { out in
        try decodeRows(group: group, geometry: geometry, rows: expert..<(expert + 1), into: out)
      }
      // Output row j of the expert is source row stride·j + offset (a bias: one row of single entries).
      let columns = info.dimensions.count >= 3 ? info.dimensions[0] : 1
      let picked = piece.elementCount / columns
      let sourceRows = whole.count / columns
      for j in 0..<picked {
        let row = stride * j + offset
        for c in 0..<columns {
          values[j * columns + c] = inputMajor ? whole[c * sourceRows + row] : whole[row * columns + c]
        }
      }
    case .rows(let name, let rows, let reorder):
      sourceName = name
      let (group, geometry) = try source(name)
      switch reorder?.axis {
      case nil:
        try values.withUnsafeMutableBufferPointer { out in
          try decodeRows(group: group, geometry: geometry, rows: rows, into: out)
        }
      case .rows:
        // Output rows gathered from runs of consecutive source rows (a value head each).
        let columns = geometry.columns
        for run in reorder!.sourceRuns(of: rows) {
          try values.withUnsafeMutableBufferPointer { out in
            let start = (run.output - rows.lowerBound) * columns
            try decodeRows(
              group: group, geometry: geometry, rows: run.source..<(run.source + run.count),
              into: UnsafeMutableBufferPointer(rebasing: out[start..<(start + run.count * columns)]))
          }
        }
      case .columns:
        var decoded = [Float](repeating: 0, count: piece.elementCount)
        try decoded.withUnsafeMutableBufferPointer { out in
          try decodeRows(group: group, geometry: geometry, rows: rows, into: out)
        }
        let columns = geometry.columns
        let from = (0..<columns).map(reorder!.sourceIndex(of:))
        for r in 0..<rows.count {
          for c in 0..<columns { values[r * columns + c] = decoded[r * columns + from[c]] }
        }
      }
    case .mlaHead(let name, let head, let key, let nope, let value):
      sourceName = name
      let (group, geometry) = try source(name)
      let kv = geometry.columns
      let first = head * (nope + value)
      var rows = [Float](repeating: 0, count: (nope + value) * kv)
      try rows.withUnsafeMutableBufferPointer { out in
        try decodeRows(group: group, geometry: geometry, rows: first..<(first + nope + value), into: out)
      }
      if key {
        // attn_k_b: ne = [nope, kv, heads]; element (h, r, c) = W[h·(nope+v) + c, r].
        for r in 0..<kv { for c in 0..<nope { values[r * nope + c] = rows[c * kv + r] } }
      } else {
        // attn_v_b: ne = [kv, v, heads]; the value rows as they are.
        values.replaceSubrange(0..<(value * kv), with: rows[(nope * kv)...])
      }
    }
    tensor.transform?.apply(&values)
    if let bad = values.withUnsafeBufferPointer({ NonFinite.scan($0).first }) {
      throw ConversionError.numeric(
        tensor: sourceName,
        reason: "\(values[bad]) in the source (piece of '\(info.name)' at output element \(piece.byteOffset / max(1, info.type.rowByteCount(elementCount: info.rowLength) ?? 1) * info.rowLength + bad)); GGUF quantizers have no encoding for NaN/Inf — repair the checkpoint")
    }
    guard let kernels = GGMLKernels.forType(info.type), let rowBytes = info.type.rowByteCount(elementCount: info.rowLength) else {
      throw ConversionError.unsupported(tensor: info.name, reason: "no ggml kernel writes \(info.type.name)")
    }
    let byteCount = piece.elementCount / info.rowLength * rowBytes
    let output = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
    defer { output.deallocate() }
    let importance = tensor.importance.map { $0[min(piece.plane, $0.count - 1)] }
    do {
      try values.withUnsafeBufferPointer { rows in
        if let importance {
          try importance.withUnsafeBufferPointer { weights in
            try kernels.quantize(rows, rowLength: info.rowLength, importance: weights, into: output)
          }
        } else {
          try kernels.quantize(rows, rowLength: info.rowLength, into: output)
        }
      }
    } catch {
      throw ConversionError.numeric(tensor: info.name, reason: "\(error)")
    }
    try sink(tensor.indexInFile, UnsafeRawBufferPointer(output), piece.byteOffset)
    return byteCount
  }

  /// Rows `rows` of a source weight as llama.cpp's converter dequantizes them: through the weight-format registry,
  /// except symmetric int4 groups (compressed-tensors `pack-quantized`, Kimi K2-Thinking / K2.5's experts), which
  /// the converter keeps as the exact F32 product `(code − 8) · scale` where compressed-tensors' decompressor (the
  /// registry's decoder) rounds it to the BF16 scale dtype.
  private func decodeRows(
    group: WeightGroup, geometry: WeightGeometry, rows: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>
  ) throws {
    guard group.format.storesSymmetricInt4Groups(group), geometry.shape.count == 2,
      let groups = try group.format.symmetricInt4Groups(
        WeightDecoding.packedTensors(of: group, in: checkpoint), geometry: geometry, module: group.modulePath),
      groups.rowCount == geometry.rows, groups.columnCount == geometry.columns, rows.upperBound <= groups.rowCount,
      destination.count == rows.count * groups.columnCount
    else {
      try WeightDecoding.decodeRows(group: group, in: checkpoint, geometry: geometry, rows: rows, into: destination)
      return
    }
    let columns = groups.columnCount, perRow = columns / groups.groupSize
    for (i, row) in rows.enumerated() {
      for c in 0..<columns {
        destination[i * columns + c] = (Float(groups.offsetCodes[row * columns + c]) - 8) * groups.scales[row * perRow + c / groups.groupSize]
      }
    }
  }

  /// Moves one source weight's codes and scales into its blocks of a repacked tensor.
  private func repack(_ piece: Piece, source name: String, sink: Sink) throws -> Int {
    let tensor = plan.tensors[piece.tensor]
    guard let repack = tensor.repack else { preconditionFailure("a repack piece of a tensor the plan does not repack") }
    let (group, geometry) = try source(name)
    let blocks = try repack.blocks(of: group, geometry: geometry, in: checkpoint)
    let expected = (tensor.info.type.rowByteCount(elementCount: tensor.info.rowLength) ?? 0) * (piece.elementCount / tensor.info.rowLength)
    guard blocks.bytes.count == expected else {
      throw ConversionError.unsupported(
        tensor: name, reason: "repacks to \(blocks.bytes.count) bytes, but its part of '\(tensor.info.name)' is \(expected)")
    }
    if let first = blocks.inexactBlocks.first {
      repackTallies.withLock { tallies in
        var tally = tallies[piece.tensor] ?? (0, nil)
        tally.count += blocks.inexactBlocks.count
        // Pieces finish in any order: keep the first in stacking order.
        if tally.first == nil || piece.plane < (tensor.source.tensorNames.firstIndex(of: tally.first!.source) ?? 0) {
          tally.first = RepackedTensor.SourceBlock(source: name, block: first)
        }
        tallies[piece.tensor] = tally
      }
    }
    try blocks.bytes.withUnsafeBytes { try sink(tensor.indexInFile, $0, piece.byteOffset) }
    return blocks.bytes.count
  }

  /// Copies an integer source into its integer tensor, narrowing each value (I64 → I32); a value the type cannot
  /// hold is an error naming where it is.
  private func integers(_ piece: Piece, source name: String, sink: Sink) throws -> Int {
    let tensor = plan.tensors[piece.tensor]
    let (group, _) = try source(name)
    guard let part = group.parts["weight"] ?? group.parts.values.first else { throw GGUFConversionPlan.Failure.unknownSource(name) }
    let entry = try checkpoint.requireEntry(part)
    guard tensor.info.type == .i32, entry.elementCount == piece.elementCount else {
      throw ConversionError.unsupported(
        tensor: name, reason: "\(entry.dtype) \(entry.shape) cannot be written as \(tensor.info.type.name) \(tensor.info.dimensions)")
    }
    let bytes = try checkpoint.bytes(of: part)
    defer { bytes.releasePages() }
    var values = [Int32](repeating: 0, count: piece.elementCount)
    try bytes.withUnsafeBytes { raw in
      for i in 0..<piece.elementCount {
        let wide: Int64
        switch entry.dtype {
        case .int64: wide = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
        case .int32: wide = Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
        default:
          throw ConversionError.unsupported(tensor: name, reason: "\(entry.dtype) is not an integer table Smelt writes as I32")
        }
        guard let narrow = Int32(exactly: wide) else {
          throw ConversionError.numeric(tensor: name, reason: "element \(i) is \(wide), which I32 cannot hold")
        }
        values[i] = narrow.littleEndian
      }
    }
    try values.withUnsafeBytes { try sink(tensor.indexInFile, $0, piece.byteOffset) }
    return values.count * 4
  }

  /// What the repacks of `tensors` (indices into `plan.tensors`) found, in plan order.
  func repackReport(of tensors: some Sequence<Int>) -> [RepackedTensor] {
    let tallies = repackTallies.withLock { $0 }
    return tensors.compactMap { index in
      guard let repack = plan.tensors[index].repack else { return nil }
      let tally = tallies[index]
      return RepackedTensor(
        name: plan.tensors[index].info.name, repack: repack, inexactBlocks: tally?.count ?? 0, firstInexact: tally?.first)
    }
  }

  private func source(_ name: String) throws -> (WeightGroup, WeightGeometry) {
    guard let found = plan.sourceWeights[name] else { throw GGUFConversionPlan.Failure.unknownSource(name) }
    return found
  }
}

extension GGUFConversionPlan {
  /// The `--to` names of the GGUF presets: `gguf-` and llama-quantize's name in lower case (`gguf-q4_k_m`).
  public static let targetNames = LlamaFileType.allCases.map { "gguf-" + $0.name.lowercased() }

  /// The preset of a `--to` value (`gguf-q4_k_m`, also llama-quantize's aliases `gguf-q4_k`), or nil.
  public static func preset(forTarget name: String) -> LlamaFileType? {
    guard name.hasPrefix("gguf-") else { return nil }
    return LlamaFileType(name: String(name.dropFirst(5)))
  }
}
