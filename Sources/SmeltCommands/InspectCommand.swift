import Checkpoint
import GGML
import GGUF
import GGUFModel
import CommandLineSupport
import JSON
import SafeTensors
import TensorCore
import WeightFormats

/// `smelt inspect PATH`: what a checkpoint holds, without reading tensor data.
struct InspectCommand: Command {
  static let configuration = CommandConfiguration(
    name: "inspect",
    abstract: "Summarize a checkpoint or GGUF: files, tensors, dtypes, architecture, quantization, MoE layout.",
    discussion: """
      PATH is a checkpoint directory (with model.safetensors.index.json or *.safetensors files), a single \
      .safetensors file, or a GGUF (any file of a split set: the whole set is read). Every header is \
      validated; no tensor data is read. For a GGUF the report lists every metadata key, and bytes and bits \
      per weight by ggml type. The JSON schema is in formats/inspect-json.md (GGUF: formats/gguf.md).
      """,
    arguments: [
      .positional("path", help: "A checkpoint directory, a .safetensors file or a .gguf file."),
      .flag("tensors", help: "List every tensor (name, dtype, shape, bytes, file)."),
      .option("filter", valueName: "glob", help: "With --tensors, only tensors whose name matches GLOB (e.g. '*.experts.0.*')."),
      .json, .jsonFile,
    ])

  var path: String
  var listTensors: Bool
  var filter: Glob?
  var json: Bool

  init(arguments: ParsedArguments) throws {
    path = try arguments.string("path")
    filter = arguments.optionalString("filter").map(Glob.init)
    listTensors = arguments.flag("tensors") || filter != nil
    json = arguments.flag("json")
  }

  func run(context: CommandContext) throws {
    if GGUFCheckpoint.isGGUF(path) {
      let summary = GGUFSummary(files: try GGUFFile.openSet(path))
      let rows = listTensors ? summary.tensors.filter { filter?.matches($0.name) ?? true } : nil
      if json {
        var report = summary
        report.tensors = rows ?? []
        context.stdout.line(JSONWriter(pretty: true).string(report.json(tensors: rows != nil)))
      } else {
        context.stdout.write(InspectReport.text(summary, tensors: rows))
      }
      return
    }
    let checkpoint = try Checkpoint.open(path)
    let summary = CheckpointSummary(checkpoint)
    var rows: [CheckpointSummary.TensorRow]?
    if listTensors {
      // In the checkpoint's order, by position (no lookup by name per tensor).
      rows = checkpoint.entries.enumerated().compactMap { position, entry in
        guard filter?.matches(entry.name) ?? true else { return nil }
        let file = checkpoint.fileNames[checkpoint.fileIndex(ofTensorAt: position)]
        return .init(name: entry.name, dtype: entry.dtype.rawValue, shape: entry.shape, byteCount: entry.byteCount, file: file)
      }
    }
    if json {
      context.stdout.line(JSONWriter(pretty: true).string(summary.json(tensors: rows)))
    } else {
      context.stdout.write(InspectReport.text(summary, tensors: rows))
    }
  }
}

/// The human-readable `inspect` report: aligned tables.
enum InspectReport {
  static func text(_ s: CheckpointSummary, tensors: [CheckpointSummary.TensorRow]?) -> String {
    var out = ""
    func line(_ text: String = "") { out += text + "\n" }
    func count(_ n: Int) -> String { DisplayFormat.count(n, noun: "params") }
    line("Checkpoint  \(s.path)")
    line("Files       \(s.files.count) (\(ByteCount.formatted(s.files.reduce(0) { $0 + $1.fileByteCount })))")
    line("Tensors     \(s.tensorCount)")
    var parameterLine = "Parameters  \(count(s.parameterCount))"
    if s.parameterCountWithoutMTP != s.parameterCount {
      parameterLine += " (\(count(s.parameterCountWithoutMTP)) without the MTP layer)"
    }
    if let active = s.activeParameterCount { parameterLine += ", \(count(active)) active per token" }
    line(parameterLine)
    line("Data        \(ByteCount.formatted(s.tensorByteCount))")
    if let config = s.config {
      line()
      line("Architecture")
      let arch = config.architectures.first ?? config.modelType ?? "unknown"
      var rows: [[String]] = [["model", arch], ["family", s.family.isGeneric ? "none recognised (generic view)" : s.family.name]]
      func add(_ label: String, _ value: CustomStringConvertible?) { if let value { rows.append([label, "\(value)"]) } }
      add("hidden size", config.hiddenSize)
      add("layers", config.numHiddenLayers)
      add("attention heads", config.numAttentionHeads)
      if config.usesMLA {
        rows.append(["MLA", "q_lora_rank \(config.qLoraRank.map(String.init) ?? "none"), kv_lora_rank \(config.kvLoraRank ?? 0), rope/nope/v \(config.qkRopeHeadDim ?? 0)/\(config.qkNopeHeadDim ?? 0)/\(config.vHeadDim ?? 0)"])
      }
      if let experts = config.routedExpertCount {
        var moe = "\(experts) routed"
        if let shared = config.nSharedExperts { moe += " + \(shared) shared" }
        if let k = config.numExpertsPerTok { moe += ", top-\(k)" }
        if let groups = config.nGroup, let top = config.topkGroup { moe += " (\(groups) groups, \(top) per token)" }
        if let dense = config.firstKDenseReplace { moe += ", first \(dense) layer(s) dense" }
        rows.append(["experts", moe])
      }
      add("vocabulary", config.vocabSize)
      if let scaling = config.ropeScaling {
        rows.append(["rope scaling", "\(scaling.type) factor \(scaling.factor.map { DisplayFormat.decimal($0) } ?? "?")"])
      }
      out += table(rows, indent: 2)
    }
    line()
    line("Bytes by dtype")
    out += table(
      [["dtype", "tensors", "elements", "bytes"]]
        + s.dtypes.map { [$0.dtype.rawValue, "\($0.tensorCount)", "\($0.elementCount)", ByteCount.formatted($0.byteCount)] },
      indent: 2, rightAligned: [1, 2, 3])
    line()
    if s.quantization.isEmpty {
      line("Quantization  none detected (plain floating-point weights)")
    } else {
      line("Quantization")
      out += table(s.quantization.map { [$0.storage.rawValue, "\($0.weightCount) weights", $0.detail] }, indent: 2)
    }
    let moeLayers = s.layers.filter { $0.kind == .moe }
    if !s.layers.isEmpty {
      line()
      let dense = s.layers.filter { $0.kind == .dense }.count
      var mtp = s.mtpLayerIndices.isEmpty ? "" : ", MTP layer \(s.mtpLayerIndices.map(String.init).joined(separator: ", "))"
      if s.hasUnnumberedMTPModules && s.mtpLayerIndices.isEmpty { mtp = ", MTP modules" }
      line("Layers      \(dense) dense, \(moeLayers.count) MoE\(mtp)")
      if let first = moeLayers.first {
        line("Experts     \(first.routedExpertCount) routed per MoE layer, \(ByteCount.formatted(first.bytesPerExpert ?? 0)) per expert")
        line("Expert data \(ByteCount.formatted(s.expertByteCount)) routed experts, \(ByteCount.formatted(s.nonExpertByteCount)) everything else")
      }
      if s.layers.count <= 16 {
        out += table(
          [["layer", "kind", "experts", "expert bytes", "other bytes"]]
            + s.layers.map { ["\($0.index)", $0.kind.rawValue, "\($0.routedExpertCount)", ByteCount.formatted($0.expertByteCount), ByteCount.formatted($0.nonExpertByteCount)] },
          indent: 2, rightAligned: [0, 2, 3, 4])
      }
    }
    if !s.warnings.isEmpty {
      line()
      for warning in s.warnings { line("Warning: \(warning)") }
    }
    if let tensors {
      line()
      out += table(
        [["tensor", "dtype", "shape", "bytes", "file"]]
          + tensors.map { [$0.name, $0.dtype, "[" + $0.shape.map(String.init).joined(separator: ", ") + "]", "\($0.byteCount)", $0.file] },
        indent: 0, rightAligned: [3])
    }
    return out
  }

  /// A GGUF: files, metadata, bytes and bits per weight by ggml type, optionally every tensor.
  static func text(_ s: GGUFSummary, tensors: [GGUFSummary.TensorRow]?) -> String {
    var out = ""
    func line(_ text: String = "") { out += text + "\n" }
    let total = s.files.reduce(0) { $0 + $1.byteCount }
    line("GGUF        \(s.files[0].path) (version \(s.version), \(s.files.count) file(s), \(ByteCount.formatted(total)))")
    if s.files.count > 1 {
      for file in s.files { line("            \(file.path): \(file.tensorCount) tensors, \(ByteCount.formatted(file.byteCount))") }
    }
    line("Model       \(s.architecture ?? "no general.architecture")\(s.fileType.map { ", file type \($0.name)" } ?? "")")
    line("Tensors     \(s.tensors.count)")
    line("Parameters  \(s.elementCount)")
    line("Data        \(ByteCount.formatted(s.dataByteCount)), \(DisplayFormat.decimal(s.bitsPerWeight)) bits per weight")
    line()
    line("Metadata (\(s.metadata.count) keys)")
    out += table(s.metadata.entries.map { [$0.key, $0.value.type.name, GGUFSummary.describe($0.value)] }, indent: 2)
    line()
    line("Bytes by type")
    out += table(
      [["type", "tensors", "elements", "bytes", "bits/weight"]]
        + s.types.map { [$0.type.name, "\($0.tensorCount)", "\($0.elementCount)", ByteCount.formatted($0.byteCount), DisplayFormat.decimal($0.bitsPerWeight)] },
      indent: 2, rightAligned: [1, 2, 3, 4])
    if let tensors {
      line()
      out += table(
        [["tensor", "type", "ne", "bytes", "file"]]
          + tensors.map { [$0.name, $0.type.name, "{" + $0.dimensions.map(String.init).joined(separator: ", ") + "}", "\($0.byteCount)", "\($0.file)"] },
        indent: 0, rightAligned: [3, 4])
    }
    return out
  }

  static func table(_ rows: [[String]], indent: Int, rightAligned: Set<Int> = []) -> String {
    TextTable.render(rows, indent: indent, rightAligned: rightAligned)
  }
}
