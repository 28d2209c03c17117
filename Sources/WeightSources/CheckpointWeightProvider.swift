import Checkpoint
import GGUFModel
import JSON
import Quantization
import ReferenceModel
import SafeTensors
import SystemIO
import TensorCore
import WeightFormats

/// Weights for the reference model (and for comparisons) read lazily from a checkpoint in any format Smelt
/// reads, dequantized to F32 one tensor (or a range of rows) at a time by the one weight decoder
/// (`WeightDecoding`, the format registry), exactly as `convert` dequantizes them.
///
/// Names are *logical weight names*: what the forward pass asks for (`model.layers.3.mlp.experts.7.up_proj.weight`),
/// whatever the storage. A quantized weight's companions (`weight_scale_inv`, `weight_scale`, ...) are resolved
/// through the checkpoint's index, so they may live in another file than the weight. The source is a checkpoint
/// (`CheckpointTensorSource`) or a `smelt shard` output directory (`ShardedTensorSource`: experts found through
/// the manifest, tensor-parallel slices stitched). Nothing is cached: memory stays at the tensors the caller
/// holds, and mapped pages are released after decoding.
public final class CheckpointWeightProvider: WeightProvider, Sendable {
  /// Where the tensors come from.
  public let source: any TensorSource
  /// Every logical weight, in checkpoint order (companions folded into their weight).
  public let logicalNames: [String]
  private let groups: [String: WeightGroup]
  /// The (Hugging Face prefix, release prefix) pairs of a multimodal wrapper whose language model this
  /// checkpoint is (Kimi K2.5's `language_model.model.*`); empty for a plain language model.
  public let wrapperPrefixes: [(canonical: String, release: String)]
  /// True when the source holds only the language model of the wrapper `wrapperPrefixes` names (a GGUF of
  /// Kimi K2.5), under Hugging Face names.
  private let languageModelOnly: Bool
  /// The source's family's view of its tensor names (which are fused experts, held which way round).
  private let classifier: TensorClassifier

  /// A provider over `checkpoint`; reads no tensor data.
  public convenience init(checkpoint: Checkpoint) {
    self.init(source: CheckpointTensorSource(checkpoint))
  }

  /// A provider over any tensor source; reads no tensor data.
  ///
  /// - Parameter wrapper: the `wrapperPrefixes` of a multimodal wrapper whose language model `source` holds
  ///   under Hugging Face names (a GGUF): the weights also answer to the wrapper's names
  ///   (`language_model.model.*`), and its other weights (vision tower, projector) are left out by design.
  public init(source: any TensorSource, standingForWrapper wrapper: [(canonical: String, release: String)] = []) {
    self.source = source
    var groups: [String: WeightGroup] = [:]
    var names: [String] = []
    for group in WeightGrouping.groups(of: source.entries) {
      let name = WeightDecoding.logicalName(of: group)
      if groups.updateValue(group, forKey: name) == nil { names.append(name) }
    }
    // A wrapper's language model (Kimi K2.5's `language_model.model.*`) answers to the Hugging Face names too.
    let family = ModelFamily.detect(source.config)
    let ownPrefixes = family.naming.languageModelPrefixes(usedBy: names)
    for (canonical, release) in ownPrefixes {
      for name in names where name.hasPrefix(release) {
        let alias = canonical + name.dropFirst(release.count)
        if groups[alias] == nil { groups[alias] = groups[name] }
      }
    }
    // ... and a GGUF of such a wrapper answers to its names.
    for (canonical, release) in wrapper {
      for name in names where name.hasPrefix(canonical) {
        let alias = release + name.dropFirst(canonical.count)
        if groups[alias] == nil { groups[alias] = groups[name] }
      }
    }
    self.wrapperPrefixes = wrapper.isEmpty ? ownPrefixes : wrapper
    self.languageModelOnly = !wrapper.isEmpty
    self.groups = groups
    self.logicalNames = names
    self.classifier = TensorClassifier(family: family, trunkLayerCount: nil)
  }

  /// Opens the checkpoint at `path`: a directory, a `.safetensors` file, a `smelt shard` output directory
  /// (recognised by its `manifest.json`), or a deepseek2 GGUF (by its magic; any file of a split set).
  ///
  /// - Parameter reference: the checkpoint this one is compared with; a GGUF made from a multimodal wrapper
  ///   answers to the wrapper's names (see `init(source:standingForWrapper:)`).
  public convenience init(path: String, comparedWith reference: CheckpointWeightProvider? = nil) throws {
    if GGUFCheckpoint.isGGUF(path) {
      self.init(source: try GGUFTensorSource(path: path), standingForWrapper: reference?.wrapperPrefixes ?? [])
    } else if ShardedTensorSource.isShardOutput(path) {
      self.init(source: try ShardedTensorSource(directory: path))
    } else {
      self.init(checkpoint: try Checkpoint.open(path))
    }
  }

  /// The source's path.
  public var directory: String { source.directory }

  /// The reference model's configuration from the checkpoint's `config.json`.
  public func modelConfiguration() throws -> ModelConfiguration {
    guard let config = source.config else { throw WeightSourceError.missingConfig(checkpoint: source.directory) }
    return try ModelConfiguration(checkpointConfig: config)
  }

  // MARK: - WeightProvider

  public func contains(_ name: String) -> Bool { groups[name] != nil }

  /// Whether the source lacks `name` by design (`TensorSource.leavesOut`; for a GGUF of a multimodal
  /// wrapper, every weight outside its language model: llama.cpp reads a vision tower from an mmproj file).
  public func leavesOut(_ name: String) -> Bool {
    guard languageModelOnly else { return source.leavesOut(name) }
    guard let (canonical, release) = wrapperPrefixes.first(where: { name.hasPrefix($0.release) }) else { return true }
    return source.leavesOut(canonical + name.dropFirst(release.count))
  }

  /// True when `name` is stored in a quantized format (not plain F32/F16/BF16 values).
  public func isQuantized(_ name: String) -> Bool { (storage(of: name) ?? .plain) != .plain }

  /// True when `name` is a fused expert tensor this source holds input-major, `[E, in, out]` (gpt-oss's plain
  /// BF16 experts), where its quantized forms are `[E, out, in]`.
  public func holdsInputMajorExperts(_ name: String) -> Bool {
    guard !isQuantized(name), let shape = try? shape(of: name) else { return false }
    return classifier.holdsInputMajorExperts(name, shape: shape)
  }

  /// How the weight `name` is stored, or `nil` when absent.
  public func storage(of name: String) -> WeightStorage? { groups[name]?.storage }

  /// The dtype of the tensor holding `name`'s values (the quantized codes for a quantized weight).
  public func storedDType(of name: String) -> DType? {
    guard let group = groups[name], let main = group.parts[group.format.mainRole] else { return nil }
    return source.entry(main)?.dtype
  }

  /// The storages `name` is judged by (thresholds, gate presets): its own, or for a weight the source
  /// rebuilds from other stored tensors (a GGUF's `kv_b_proj`, F32 from its quantized MLA halves), theirs.
  /// Empty when `name` is absent.
  public func judgedStorages(of name: String) -> [(storage: WeightStorage, dtype: DType?)] {
    guard let group = groups[name] else { return [] }
    if let sources = rebuiltFrom(group) { return sources.map { ($0.storage, $0.dtype) } }
    return [(group.storage, storedDType(of: name))]
  }

  /// `name`'s storage and dtype as reports print them (`ggml-q4_K U8`; a rebuilt weight also names what it
  /// was rebuilt from: `plain F32 from ggml-q5_0 U8, ggml-q5_0 U8`), or `missing`.
  public func storageDescription(of name: String) -> String {
    guard let group = groups[name] else { return "missing" }
    let own = "\(group.storage.rawValue) \(storedDType(of: name)?.rawValue ?? "?")"
    guard let sources = rebuiltFrom(group) else { return own }
    return own + " from " + sources.map { "\($0.storage.rawValue) \($0.dtype.rawValue)" }.joined(separator: ", ")
  }

  /// How the tensors `group`'s weight is rebuilt from are stored; `nil` for a weight stored as such.
  private func rebuiltFrom(_ group: WeightGroup) -> [(storage: WeightStorage, dtype: DType)]? {
    guard let main = group.parts[group.format.mainRole], let sources = source.sourceStorages(of: main), !sources.isEmpty
    else { return nil }
    return sources
  }

  /// The bytes `name` occupies in the checkpoint (its tensors and companions); 0 when absent.
  public func storedByteCount(of name: String) -> Int {
    guard let group = groups[name] else { return 0 }
    return group.parts.values.reduce(0) { $0 + (source.entry($1)?.byteCount ?? 0) }
  }

  /// The logical (dequantized) shape of `name`.
  public func shape(of name: String) throws -> [Int] { try geometry(name).1.shape }

  public func weight(_ name: String) throws -> FloatTensor {
    let (group, geometry) = try geometry(name)
    let values = try decode(name, group, geometry, rows: 0..<geometry.rows)
    return try FloatTensor(shape: geometry.shape, values: values)
  }

  /// FP8-block and BF16 weights in their stored encoding (1 or 2 bytes per element), which the matmul
  /// dequantizes per tile; other formats decoded to F32.
  public func linearWeight(_ name: String) throws -> LinearWeight {
    let (group, geometry) = try geometry(name)
    if geometry.shape.count == 2 {
      let encoded: EncodedMatrix?
      do { encoded = try group.format.encodedMatrix(group, geometry: geometry, in: source) } catch { throw sourceError(error, name) }
      let rows = geometry.shape[0], columns = geometry.shape[1]
      switch encoded {
      case .bfloat16(let bits)?:
        return try LinearWeight(storage: .bfloat16(bits), outputCount: rows, inputCount: columns)
      case .float8Block(let codes, let scales, let blockRows, let blockColumns)?:
        return try LinearWeight(
          storage: .float8Block(codes: codes, scales: scales, blockRows: blockRows, blockColumns: blockColumns),
          outputCount: rows, inputCount: columns)
      case nil:
        break
      }
    }
    return try LinearWeight(try weight(name))
  }

  /// Rows `rows` of `name` (dimension 0; the remaining dimensions flattened into columns): only the needed
  /// bytes are read and dequantized, so an embedding lookup or an `lm_head` slice never loads the whole matrix.
  public func weightRows(_ name: String, rows: Range<Int>) throws -> FloatTensor {
    let (group, geometry) = try geometry(name)
    guard geometry.shape.count == 1 else {
      return try FloatTensor(shape: [rows.count, geometry.columns], values: try decode(name, group, geometry, rows: rows))
    }
    // A 1-D tensor (a norm, a bias) is one decoder row; here each element is a row.
    let count = geometry.shape[0]
    guard rows.lowerBound >= 0, rows.upperBound <= count else {
      throw WeightSourceError.rowsOutOfRange(tensor: name, rows: rows, rowCount: count)
    }
    let values = try decode(name, group, geometry, rows: 0..<1)
    return try FloatTensor(shape: [rows.count, 1], values: Array(values[rows]))
  }

  // MARK: - Decoding

  private func geometry(_ name: String) throws -> (WeightGroup, WeightGeometry) {
    guard let group = groups[name] else { throw WeightSourceError.missingWeight(name: name, checkpoint: source.directory) }
    do { return (group, try WeightDecoding.geometry(of: group, in: source)) } catch { throw sourceError(error, name) }
  }

  private func decode(_ name: String, _ group: WeightGroup, _ geometry: WeightGeometry, rows: Range<Int>) throws -> [Float] {
    guard rows.lowerBound >= 0, rows.upperBound <= geometry.rows else {
      throw WeightSourceError.rowsOutOfRange(tensor: name, rows: rows, rowCount: geometry.rows)
    }
    let count = rows.count * geometry.columns
    do {
      return try [Float](unsafeUninitializedCapacity: count) { out, initialized in
        try WeightDecoding.decodeRows(group: group, in: source, geometry: geometry, rows: rows, into: out)
        initialized = count
      }
    } catch {
      throw sourceError(error, name)
    }
  }

  /// The decoder's errors in this module's terms (a source's own `WeightSourceError`s pass through).
  private func sourceError(_ error: any Error, _ name: String) -> any Error {
    guard let error = error as? WeightDecodingError else { return error }
    switch error {
    case .nonFiniteScale(let tensor, let index): return WeightSourceError.nonFiniteScale(tensor: tensor, index: index)
    case .missingTensor(let tensor, _): return WeightSourceError.missingWeight(name: tensor, checkpoint: source.directory)
    case .badRowRange(_, let range, let rows, _): return WeightSourceError.rowsOutOfRange(tensor: name, rows: range, rowCount: rows)
    case .unsupported(_, let storage, let reason): return WeightSourceError.unsupportedStorage(weight: name, storage: "\(storage) (\(reason))")
    case .badLayout, .format: return WeightSourceError.undecodable(weight: name, reason: "\(error)")
    }
  }
}
