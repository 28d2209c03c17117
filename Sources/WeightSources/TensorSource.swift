import Checkpoint
import SafeTensors
import SystemIO
import TensorCore
import WeightFormats
import JSON

/// Where `CheckpointWeightProvider` reads from: a `TensorStore` (tensors by their original names, bytes by
/// range) that is a checkpoint or a `smelt shard` output directory reassembled through its `manifest.json`,
/// with its parsed config.
public protocol TensorSource: TensorStore {
  /// The path the source was opened from.
  var directory: String { get }
  /// The parsed `config.json`, when there is one.
  var config: ModelConfig? { get }
  /// The entry of `name`, or `nil`.
  func entry(_ name: String) -> TensorEntry?
  /// Source tensors deliberately left out (a shard layout that drops the MTP layer).
  var skippedTensors: Set<String> { get }
  /// Whether a reference tensor `name` is absent from this source by design (in `skippedTensors`, or the MTP
  /// block of a GGUF written without it).
  func leavesOut(_ name: String) -> Bool
  /// Every file read from: weights, index, config, manifest (no output may replace one of them).
  var inputFilePaths: [String] { get }
  /// For a tensor the source computes from other stored tensors (a GGUF's `kv_b_proj`, rebuilt in F32 from its
  /// quantized MLA halves), how those are stored; `nil` for a tensor stored as such.
  func sourceStorages(of name: String) -> [(storage: WeightStorage, dtype: DType)]?
  /// Throws, naming the file, if a mapped file changed while it was read (truncated, rewritten or
  /// replaced): results computed from it are void. Commands call it before reporting.
  func checkUnchanged() throws
}

extension TensorSource {
  public var skippedTensors: Set<String> { [] }
  public func leavesOut(_ name: String) -> Bool { skippedTensors.contains(name) }
  public func sourceStorages(of name: String) -> [(storage: WeightStorage, dtype: DType)]? { nil }
  public var storePath: String { directory }
  public var configObject: JSONObject? { config?.raw }
  public func storedEntry(_ name: String) -> TensorEntry? { entry(name) }
}

/// A checkpoint read through its index (`Checkpoint`).
public struct CheckpointTensorSource: TensorSource {
  public let checkpoint: Checkpoint

  public init(_ checkpoint: Checkpoint) { self.checkpoint = checkpoint }

  public var directory: String { checkpoint.directory }
  public var config: ModelConfig? { checkpoint.config }
  public var entries: [TensorEntry] { checkpoint.entries }
  public func entry(_ name: String) -> TensorEntry? { checkpoint.location(of: name)?.entry }
  public func checkUnchanged() throws { try checkpoint.checkInputsUnchanged() }
  public var inputFilePaths: [String] { (try? checkpoint.inputFilePaths()) ?? checkpoint.files.map(\.path) }

  public func bytes(of name: String, range: Range<Int>) throws -> TensorBytes {
    let view = try checkpoint.tensor(name)
    guard range.lowerBound >= 0, range.upperBound <= view.entry.byteCount else {
      throw WeightSourceError.badShape(
        tensor: name, shape: view.shape, expected: "bytes \(range.lowerBound)..<\(range.upperBound) inside \(view.entry.byteCount)")
    }
    return TensorBytes(view: view, range: range)
  }
}
