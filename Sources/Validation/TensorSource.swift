import Checkpoint
import SafeTensors
import SystemIO

/// Where `CheckpointWeightProvider` reads tensor bytes from: a checkpoint (one file or a directory of shards
/// with an index) or a `smelt shard` output directory reassembled through its `manifest.json`.
public protocol TensorSource: Sendable {
  /// The path the source was opened from.
  var directory: String { get }
  /// The parsed `config.json`, when there is one.
  var config: ModelConfig? { get }
  /// Every tensor under its original (Hugging Face) name, in a stable order. Data offsets are meaningful only
  /// within the file they come from; use `bytes(of:range:)` to read.
  var entries: [TensorEntry] { get }
  /// The entry of `name`, or `nil`.
  func entry(_ name: String) -> TensorEntry?
  /// Bytes `range` (within the tensor's row-major data) of tensor `name`.
  func bytes(of name: String, range: Range<Int>) throws -> TensorBytes
  /// Source tensors deliberately left out (a shard layout that drops the MTP layer).
  var skippedTensors: Set<String> { get }
  /// Every file read from: weights, index, config, manifest (no output may replace one of them).
  var inputFilePaths: [String] { get }
  /// Throws, naming the file, if a mapped file changed while it was read (truncated, rewritten or
  /// replaced): results computed from it are void. Commands call it before reporting.
  func checkUnchanged() throws
}

extension TensorSource {
  public var skippedTensors: Set<String> { [] }
}

/// Tensor bytes: a zero-copy window into a mapped file, or an owned buffer assembled from pieces.
public struct TensorBytes: Sendable {
  enum Storage: Sendable {
    case mapped(TensorView, Range<Int>)
    case owned([UInt8])
  }
  let storage: Storage

  /// A window of `view`'s bytes.
  public init(view: TensorView, range: Range<Int>) { storage = .mapped(view, range) }
  /// Owned bytes.
  public init(_ bytes: [UInt8]) { storage = .owned(bytes) }

  /// The byte count.
  public var count: Int {
    switch storage {
    case .mapped(_, let range): range.count
    case .owned(let bytes): bytes.count
    }
  }

  /// Calls `body` with the bytes (any alignment).
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    switch storage {
    case .mapped(let view, let range):
      // `view` keeps its file's mapping alive while `self` exists.
      return try body(UnsafeRawBufferPointer(rebasing: view.bytes[range]))
    case .owned(let bytes):
      return try bytes.withUnsafeBytes(body)
    }
  }

  /// A copy of the bytes.
  public func copy() -> [UInt8] { withUnsafeBytes { Array($0) } }

  /// Drops the mapped pages of a large window from this process once decoded, so streaming through a 700 GB
  /// checkpoint does not grow the resident set with file pages (the page cache keeps them; a later read maps
  /// them again). No-op for owned bytes and small windows.
  public func releasePages() {
    guard case .mapped(let view, let range) = storage, range.count >= 1 << 16 else { return }
    let mapping = view.owner.mapping
    guard let start = view.bytes.baseAddress, let base = mapping.bytes.baseAddress else { return }
    let offset = start - base + range.lowerBound
    mapping.advise(.dontNeed, range: offset..<(offset + range.count))
  }
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
      throw ValidationError.badShape(
        tensor: name, shape: view.shape, expected: "bytes \(range.lowerBound)..<\(range.upperBound) inside \(view.entry.byteCount)")
    }
    return TensorBytes(view: view, range: range)
  }
}
