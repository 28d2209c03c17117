import TensorCore

/// The validated header of a safetensors file: tensor entries in data order plus optional metadata.
///
/// Obtain one from `parse(prefix:fileByteCount:)` (reading) or `SafeTensorsLayout` (writing).
public struct SafeTensorsHeader: Sendable, Equatable {
  /// The largest header the reference crate accepts: 100,000,000 bytes (decimal), inclusive.
  public static let maximumHeaderByteCount = 100_000_000

  /// N: the length of the header JSON including padding (the file's first 8 bytes, little-endian).
  public let headerByteCount: Int
  /// The tensors sorted by data offset (ties, which only zero-size tensors can have, in header order).
  public let tensors: [TensorEntry]
  /// The `__metadata__` map, or `nil` when absent or `null`.
  public let metadata: [String: String]?
  /// Names → positions in `tensors`.
  private let names: NameIndex

  /// A header of `tensors`, whose names are distinct. `names`, when given, must index `tensors`.
  init(headerByteCount: Int, tensors: [TensorEntry], metadata: [String: String]?, names: NameIndex? = nil) {
    self.headerByteCount = headerByteCount
    self.tensors = tensors
    self.metadata = metadata
    if let names {
      self.names = names
    } else {
      var index = NameIndex(capacity: tensors.count)
      for position in tensors.indices { index.insert(tensors[position].name, position: position) { tensors[$0].name } }
      self.names = index
    }
  }

  public static func == (lhs: SafeTensorsHeader, rhs: SafeTensorsHeader) -> Bool {
    lhs.headerByteCount == rhs.headerByteCount && lhs.tensors == rhs.tensors && lhs.metadata == rhs.metadata
  }

  /// File offset of the data section: 8 + N.
  public var dataStart: Int { 8 + headerByteCount }

  /// Bytes of tensor data (the end of the last tensor).
  public var dataByteCount: Int { tensors.last?.dataOffsets.upperBound ?? 0 }

  /// The size of the whole file: 8 + N + data.
  public var fileByteCount: Int { dataStart + dataByteCount }

  /// The entry named `name`, in constant time.
  public func entry(named name: String) -> TensorEntry? { position(of: name).map { tensors[$0] } }

  /// The position in `tensors` of the entry named `name`, in constant time.
  public func position(of name: String) -> Int? {
    // The closures capture the entries alone: capturing `self` copies the whole header per lookup.
    let tensors = self.tensors
    return names.position(of: name) { tensors[$0].name }
  }

  /// The position in `tensors` of the entry whose name has the UTF-8 bytes `name`.
  public func position(ofUTF8 name: UnsafeRawBufferPointer) -> Int? {
    let tensors = self.tensors
    return names.position(ofUTF8: name) { tensors[$0].name }
  }

  /// The file offset range of `entry`'s bytes.
  public func fileRange(of entry: TensorEntry) -> Range<Int> {
    (dataStart + entry.dataOffsets.lowerBound)..<(dataStart + entry.dataOffsets.upperBound)
  }
}
