import JSON
import SafeTensors
import SystemIO
import TensorCore

/// Where the one weight decoder reads tensors from: a checkpoint (one file or a directory of shards with an
/// index), or a `smelt shard` output directory reassembled through its manifest.
public protocol TensorStore: Sendable {
  /// The path the store was opened from (for messages).
  var storePath: String { get }
  /// The raw `config.json` object, when there is one (formats read `quantization_config`, `quantization`,
  /// `torch_dtype` from it).
  var configObject: JSONObject? { get }
  /// What formats read from `configObject` (default: read on each call; a store that can keeps one).
  var formatConfig: FormatConfig { get }
  /// Every tensor under its original name, in a stable order. Data offsets are meaningful only within the
  /// file they come from; read through `bytes(of:range:)`.
  var entries: [TensorEntry] { get }
  /// The entry of `name`, or `nil`.
  func storedEntry(_ name: String) -> TensorEntry?
  /// Bytes `range` (within the tensor's row-major data) of tensor `name`.
  func bytes(of name: String, range: Range<Int>) throws -> TensorBytes
}

extension TensorStore {
  public var formatConfig: FormatConfig { FormatConfig(configObject) }

  /// The entry of `name`, or `WeightDecodingError.missingTensor`.
  public func requireEntry(_ name: String) throws(WeightDecodingError) -> TensorEntry {
    guard let entry = storedEntry(name) else { throw .missingTensor(name: name, store: storePath) }
    return entry
  }

  /// All of tensor `name`.
  public func bytes(of name: String) throws -> TensorBytes {
    try bytes(of: name, range: 0..<requireEntry(name).byteCount)
  }
}

/// Tensor bytes: a zero-copy window into a mapped file, or an owned buffer assembled from pieces.
public struct TensorBytes: Sendable {
  enum Storage: Sendable {
    case mapped(TensorView, Range<Int>)
    case file(MappedFile, Range<Int>)
    case owned([UInt8])
  }
  let storage: Storage

  /// A window of `view`'s bytes.
  public init(view: TensorView, range: Range<Int>) { storage = .mapped(view, range) }
  /// Bytes `range` of a mapped file (another container's tensor data: a GGUF).
  public init(mapping: MappedFile, range: Range<Int>) { storage = .file(mapping, range) }
  /// Owned bytes.
  public init(_ bytes: [UInt8]) { storage = .owned(bytes) }

  /// The byte count.
  public var count: Int {
    switch storage {
    case .mapped(_, let range), .file(_, let range): range.count
    case .owned(let bytes): bytes.count
    }
  }

  /// Calls `body` with the bytes (any alignment).
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    switch storage {
    case .mapped(let view, let range):
      // `view` keeps its file's mapping alive while `self` exists.
      return try body(UnsafeRawBufferPointer(rebasing: view.bytes[range]))
    case .file(let mapping, let range):
      defer { withExtendedLifetime(mapping) {} }
      return try body(UnsafeRawBufferPointer(rebasing: mapping.bytes[range]))
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
    if case .file(let mapping, let range) = storage, range.count >= 1 << 16 {
      mapping.advise(.dontNeed, range: range)
      return
    }
    guard case .mapped(let view, let range) = storage, range.count >= 1 << 16 else { return }
    let mapping = view.owner.mapping
    guard let start = view.bytes.baseAddress, let base = mapping.bytes.baseAddress else { return }
    let offset = start - base + range.lowerBound
    mapping.advise(.dontNeed, range: offset..<(offset + range.count))
  }
}

/// What formats read from `config.json`, read once (a checkpoint keeps one for all its weights: planning a 671B
/// release asks for the FP8 block shape of each of its 92k weights).
public struct FormatConfig: Sendable {
  public let raw: JSONObject?
  /// `quantization_config`.
  public let quantization: JSONObject?
  /// The model's floating dtype from `torch_dtype` (BF16 when absent or unknown).
  public let modelDType: DType
  /// A two-element positive block shape: `quantization_config.weight_block_size`, else the first
  /// compressed-tensors `config_groups.*.weights.block_structure`.
  public let blockShape: (rows: Int, columns: Int)?

  public init(_ raw: JSONObject?) {
    self.raw = raw
    let quantization = raw?["quantization_config"]?.objectValue
    self.quantization = quantization
    switch raw?["torch_dtype"]?.stringValue {
    case "float16": modelDType = .float16
    case "float32": modelDType = .float32
    default: modelDType = .bfloat16
    }
    blockShape = quantization.flatMap(Self.blockShape(in:))
  }

  private static func blockShape(in quantization: JSONObject) -> (rows: Int, columns: Int)? {
    func pair(_ value: JSONValue?) -> (Int, Int)? {
      guard let items = value?.arrayValue?.compactMap(\.intValue), items.count == 2, items[0] > 0, items[1] > 0 else { return nil }
      return (items[0], items[1])
    }
    if let block = pair(quantization["weight_block_size"]) { return block }
    for (_, group) in quantization["config_groups"]?.objectValue ?? JSONObject() {
      if let block = pair(group["weights"]?["block_structure"]) { return block }
    }
    return nil
  }
}
