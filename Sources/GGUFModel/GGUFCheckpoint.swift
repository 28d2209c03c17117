import GGML
import GGUF
import JSON
import SafeTensors
import Synchronization
import SystemIO
import TensorCore
import WeightFormats

/// A GGUF of a readable architecture (`GGUFArchitectures.readable`), one file or a
/// `-0000N-of-0000M.gguf` split set, read as the Hugging Face checkpoint it holds: a `TensorStore` whose tensors
/// carry Hugging Face names (the mapping's `storedTensors`) and whose `config.json` is rebuilt from the metadata
/// (its `huggingFaceConfig`), so `validate`, `forward` and
/// the one weight decoder read a GGUF exactly as a safetensors checkpoint.
///
/// F32/F16/BF16 tensors are plain tensors; a quantized weight `<module>.weight` is the U8 tensor
/// `<module>.weight:<type>` decoded by its ggml registry entry (`GGMLWeightFormat`); stacked experts are
/// zero-copy slabs of the stacked tensor; `kv_b_proj` is rebuilt in F32 from `attn_k_b` and `attn_v_b`, and
/// gpt-oss's fused experts expert by expert from the gate/up/down stacks, when read. Everything is
/// memory-mapped and lazy.
public final class GGUFCheckpoint: TensorStore, Sendable {
  public let path: String
  /// The split set's files (one for a single file), in order.
  public let files: [GGUFFile]
  /// The first file's metadata.
  public var metadata: GGUFMetadata { files[0].metadata }
  /// Every GGUF tensor with the index of its file, in file order.
  public let tensorInfos: [(file: Int, info: GGUFTensorInfo)]
  /// The rebuilt `config.json`.
  public let config: JSONObject
  public let entries: [TensorEntry]
  private let locations: [String: Location]
  private let ggufIndex: [String: (file: Int, tensor: Int)]

  enum Location: Sendable {
    /// Absolute bytes of file `file`.
    case file(Int, Range<Int>)
    /// `kv_b_proj` rebuilt from the MLA halves.
    case mlaKeyValue(key: String, value: String, heads: Int, nope: Int, valueHead: Int)
    /// A fused expert tensor rebuilt from stacks (`GGUFStoredTensor.Layout.fusedExperts`), `expertBytes` per expert.
    case fusedExperts([String], count: Int, expertBytes: Int)

    /// The GGUF tensors a rebuilt tensor is computed from; empty for stored bytes.
    var sources: [String] {
      switch self {
      case .file: []
      case .mlaKeyValue(let key, let value, _, _, _): [key, value]
      case .fusedExperts(let sources, _, _): sources
      }
    }
  }

  public enum Failure: Error, CustomStringConvertible {
    /// A tensor type Smelt has no decoder for.
    case unsupportedType(tensor: String, type: GGMLType)
    case mapping(DeepSeek2.Failure, path: String)

    public var description: String {
      switch self {
      case .unsupportedType(let tensor, let type):
        "GGUF tensor '\(tensor)' is \(type.name), which Smelt cannot decode (it reads \(GGMLKernels.supportedTypes.map(\.name).joined(separator: ", ")))"
      case .mapping(let failure, let path): "\(path): \(failure)"
      }
    }
  }

  /// True when `path` names a GGUF file (by its magic; false for directories and unreadable paths).
  public static func isGGUF(_ path: String) -> Bool {
    guard !FileSystem.isDirectory(path), (try? FileSystem.byteCount(of: path)) ?? 0 >= 4,
      let file = try? FileDescriptor.open(path, .readOnly)
    else { return false }
    defer { file.close() }
    var magic = [UInt8](repeating: 0, count: 4)
    guard (try? magic.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }) != nil else { return false }
    return magic == Array("GGUF".utf8)
  }

  /// Opens `path` and, when its metadata says it is one file of a split set, every file of the set.
  ///
  /// - Throws: `SystemError`/`GGUFError` for unreadable or invalid files, `Failure` for an incomplete split
  ///   set, an architecture Smelt does not read back (`GGUFArchitectures.readable`), an unknown tensor name or a
  ///   type Smelt cannot decode.
  public init(path: String) throws {
    self.path = path
    let files = try GGUFFile.openSet(path)
    self.files = files
    var infos: [(file: Int, info: GGUFTensorInfo)] = []
    var index: [String: (file: Int, tensor: Int)] = [:]
    for (f, file) in files.enumerated() {
      for (t, info) in file.tensors.enumerated() {
        infos.append((f, info))
        index[info.name] = (f, t)
      }
    }
    tensorInfos = infos
    ggufIndex = index
    let all = infos.map(\.info)
    let stored: [GGUFStoredTensor]
    do {
      let mapping = try GGUFArchitectures.reader(for: files[0].metadata["general.architecture"]?.stringValue)
      config = try mapping.huggingFaceConfig(files[0].metadata, tensors: all)
      stored = try mapping.storedTensors(all)
    } catch {
      throw Failure.mapping(error, path: path)
    }

    var entries: [TensorEntry] = []
    var locations: [String: Location] = [:]
    for tensor in stored {
      switch tensor.layout {
      case .whole(let name), .expert(let name, _, _):
        guard let (f, t) = index[name] else { continue }
        let info = files[f].tensors[t]
        var range = files[f].fileRange(ofTensor: t)
        if case .expert(_, let expert, let count) = tensor.layout {
          let slab = range.count / count
          range = (range.lowerBound + expert * slab)..<(range.lowerBound + (expert + 1) * slab)
        }
        let (name, dtype, shape) = try Self.presentation(of: tensor, type: info.type, byteCount: range.count)
        guard let entry = TensorEntry(name: name, dtype: dtype, shape: shape, dataOffsets: range) else {
          throw Failure.mapping(.inconsistentGGUFTensor(info.name, reason: "\(range.count) bytes do not hold \(tensor.shape)"), path: path)
        }
        entries.append(entry)
        locations[name] = .file(f, range)
      case .mlaKeyValue, .fusedExperts:
        let location: Location
        switch tensor.layout {
        case .mlaKeyValue(let key, let value, let heads, let nope, let valueHead):
          location = .mlaKeyValue(key: key, value: value, heads: heads, nope: nope, valueHead: valueHead)
        case .fusedExperts(let sources, let count):
          // The mapping checked the whole tensor's byte count fits (GptOss.storedTensors), so an expert's does.
          location = .fusedExperts(sources, count: count, expertBytes: tensor.shape.dropFirst().reduce(4, *))
        case .whole, .expert:
          preconditionFailure("stored layouts are handled above")
        }
        for source in location.sources {
          guard let (f, t) = index[source] else { continue }
          let type = files[f].tensors[t].type
          guard GGMLKernels.forType(type) != nil else { throw Failure.unsupportedType(tensor: source, type: type) }
        }
        let byteCount = tensor.shape.reduce(4, *)
        guard let entry = TensorEntry(name: tensor.name, dtype: .float32, shape: tensor.shape, dataOffsets: 0..<byteCount) else { continue }
        entries.append(entry)
        locations[tensor.name] = location
      }
    }
    self.entries = entries
    self.locations = locations
    lookup = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
  }

  private let lookup: [String: TensorEntry]
  /// The last `kv_b_proj` (expert: nil) or fused expert rebuilt (a validator reads a weight in several row
  /// ranges; the forward pass reads a fused tensor expert by expert).
  private let rebuilt = Mutex<(name: String, expert: Int?, bytes: [UInt8])?>(nil)

  /// The GGML types stored as plain safetensors dtypes (the rest are quantized U8 blocks).
  private static let plainDTypes: [GGMLType: DType] = [
    .f32: .float32, .f16: .float16, .bf16: .bfloat16, .i8: .int8, .i16: .int16, .i32: .int32, .i64: .int64, .f64: .float64,
  ]

  /// How the stored tensors a tensor is computed from are stored (`kv_b_proj`: its quantized `attn_k_b` and
  /// `attn_v_b`, in that order; a gpt-oss fused expert tensor: its stacks); `nil` for a tensor stored as such. A
  /// validator judges the rebuilt F32 weight by these, not as a lossless F32 tensor.
  public func sourceStorages(of name: String) -> [(storage: WeightStorage, dtype: DType)]? {
    guard let sources = locations[name]?.sources, !sources.isEmpty else { return nil }
    return sources.compactMap { source in
      guard let (f, t) = ggufIndex[source] else { return nil }
      let type = files[f].tensors[t].type
      if let dtype = Self.plainDTypes[type] { return (.plain, dtype) }
      return GGMLWeightFormat(type).map { ($0.storage, .uint8) }
    }
  }

  /// The store's name, dtype and shape for a Hugging Face tensor stored as `type`.
  private static func presentation(of tensor: GGUFStoredTensor, type: GGMLType, byteCount: Int) throws
    -> (String, DType, [Int])
  {
    if let dtype = plainDTypes[type] { return (tensor.name, dtype, tensor.shape) }
    guard GGMLWeightFormat(type) != nil else { throw Failure.unsupportedType(tensor: tensor.name, type: type) }
    let rows = tensor.shape.count >= 2 ? tensor.shape.dropLast().reduce(1, *) : 1
    return (GGMLWeightFormat.storedName(weight: tensor.name, type: type), .uint8, [rows, byteCount / max(1, rows)])
  }

  /// The split set's file paths (no output may replace one of them).
  public var inputFilePaths: [String] { files.map(\.path) }

  /// Throws, naming the file, if a mapped file changed while it was read: results computed from it are void.
  public func checkUnchanged() throws { for file in files { try file.mapping.checkUnchanged() } }

  // MARK: TensorStore

  public var storePath: String { path }
  public var configObject: JSONObject? { config }
  public func storedEntry(_ name: String) -> TensorEntry? { lookup[name] }

  public func bytes(of name: String, range: Range<Int>) throws -> TensorBytes {
    guard let entry = lookup[name], let location = locations[name] else {
      throw WeightDecodingError.missingTensor(name: name, store: path)
    }
    guard range.lowerBound >= 0, range.upperBound <= entry.byteCount else {
      throw WeightDecodingError.badRowRange(
        module: name, range: range, rows: entry.byteCount, reason: "byte range outside the tensor's \(entry.byteCount) bytes")
    }
    switch location {
    case .file(let file, let bytes):
      return TensorBytes(mapping: files[file].mapping, range: (bytes.lowerBound + range.lowerBound)..<(bytes.lowerBound + range.upperBound))
    case .mlaKeyValue(let key, let value, let heads, let nope, let valueHead):
      let bytes = try cachedRebuild(name, expert: nil) {
        try rebuildKeyValue(key: key, value: value, heads: heads, nope: nope, valueHead: valueHead)
      }
      return TensorBytes(Array(bytes[range]))
    case .fusedExperts(let sources, let count, let expertBytes):
      guard !range.isEmpty else { return TensorBytes([]) }
      // Only the experts the range touches are rebuilt (one expert's F32 at a time, not the layer's).
      var bytes: [UInt8] = []
      let first = range.lowerBound / expertBytes, last = (range.upperBound - 1) / expertBytes
      for expert in first...last {
        let whole = try cachedRebuild(name, expert: expert) { try rebuildExpert(expert, of: sources, count: count) }
        let base = expert * expertBytes
        bytes += whole[(max(range.lowerBound, base) - base)..<(min(range.upperBound, base + expertBytes) - base)]
      }
      return TensorBytes(bytes)
    }
  }

  /// The bytes `rebuild` makes of `name` (one `expert` of it), reusing the last rebuilt ones.
  private func cachedRebuild(_ name: String, expert: Int?, _ rebuild: () throws -> [UInt8]) rethrows -> [UInt8] {
    if let cached = rebuilt.withLock({ $0 }), cached.name == name, cached.expert == expert { return cached.bytes }
    let bytes = try rebuild()
    rebuilt.withLock { $0 = (name, expert, bytes) }
    return bytes
  }

  /// Expert `expert` of a fused tensor in F32, input-major: element `(c, k·j + s)` is element `(j, c)` of
  /// expert `expert` of stack `sources[s]` (`[rows, columns]`; a bias stack is one column).
  private func rebuildExpert(_ expert: Int, of sources: [String], count: Int) throws -> [UInt8] {
    let k = sources.count
    let slabs = try sources.map { try decodeSlab(expert, of: count, of: $0) }
    guard let first = sources.first, let (f, t) = ggufIndex[first] else {
      throw WeightDecodingError.missingTensor(name: sources.first ?? "(no source)", store: path)
    }
    let dimensions = files[f].tensors[t].dimensions
    let (columns, rows) = dimensions.count == 3 ? (dimensions[0], dimensions[1]) : (1, dimensions[0])
    var out = [Float](repeating: 0, count: columns * k * rows)
    for (s, slab) in slabs.enumerated() {
      for j in 0..<rows {
        for c in 0..<columns { out[c * k * rows + k * j + s] = slab[j * columns + c] }
      }
    }
    return out.withUnsafeBytes { Array($0) }
  }

  /// Expert `expert` of the `count` stacked in GGUF tensor `name`, as F32 (ggml's own dequantization).
  private func decodeSlab(_ expert: Int, of count: Int, of name: String) throws -> [Float] {
    guard let (f, t) = ggufIndex[name] else { throw WeightDecodingError.missingTensor(name: name, store: path) }
    let info = files[f].tensors[t]
    guard let kernels = GGMLKernels.forType(info.type) else { throw Failure.unsupportedType(tensor: name, type: info.type) }
    let bytes = files[f].bytes(ofTensor: t)
    let slab = bytes.count / count
    var values = [Float](repeating: 0, count: info.elementCount / count)
    try values.withUnsafeMutableBufferPointer { out in
      try kernels.dequantize(UnsafeRawBufferPointer(rebasing: bytes[(expert * slab)..<((expert + 1) * slab)]), rowLength: info.rowLength, into: out)
    }
    return values
  }

  /// `kv_b_proj` in F32: per head `h`, row `c < nope` is column `c` of `attn_k_b` head `h` (`{nope, kv}`),
  /// row `nope + r` is row `r` of `attn_v_b` head `h` (`{kv, v}`).
  private func rebuildKeyValue(key: String, value: String, heads: Int, nope: Int, valueHead: Int) throws -> [UInt8] {
    let k = try decodeWhole(key)
    let v = try decodeWhole(value)
    let kv = k.count / (heads * nope)
    var out = [Float](repeating: 0, count: heads * (nope + valueHead) * kv)
    for h in 0..<heads {
      let base = h * (nope + valueHead) * kv
      for r in 0..<kv {
        for c in 0..<nope { out[base + c * kv + r] = k[(h * kv + r) * nope + c] }
      }
      for r in 0..<valueHead {
        for c in 0..<kv { out[base + (nope + r) * kv + c] = v[(h * valueHead + r) * kv + c] }
      }
    }
    return out.withUnsafeBytes { Array($0) }
  }

  /// All of GGUF tensor `name` as F32 (ggml's own dequantization).
  private func decodeWhole(_ name: String) throws -> [Float] { try decodeSlab(0, of: 1, of: name) }
}
