import GGML

/// A GGUF file planned before any tensor data exists: the serialized header (padded to the data section),
/// each tensor's offset, and the total size. Byte for byte what gguf.cpp's `gguf_write_to_file` produces for
/// the same metadata and tensor list: version 3, KV pairs in order, tensor infos with the given dimensions,
/// tensors back to back in info order, each padded with zeros to the alignment (the last one too).
public struct GGUFLayout: Sendable, Equatable {
  public let metadata: GGUFMetadata
  /// Tensor infos with their data offsets assigned.
  public let tensors: [GGUFTensorInfo]
  public let alignment: Int
  /// Magic through the padding before the data section.
  public let headerBytes: [UInt8]

  /// Absolute offset of the data section.
  public var dataOffset: Int { headerBytes.count }
  /// The whole file's size.
  public var fileByteCount: Int { dataOffset + dataByteCount }
  /// The data section's size (every tensor padded).
  public let dataByteCount: Int

  /// Plans a file. `tensors` carry names, dimensions (ggml order, written as given: use
  /// `GGUFTensorInfo.ggmlDimensions` to drop trailing 1s as gguf.cpp does) and types; their offsets are
  /// ignored and assigned here. The alignment is `general.alignment` if the metadata sets it, else 32.
  ///
  /// - Throws: `GGUFError` for anything gguf.cpp's reader would reject: long or duplicate names, more than
  ///   four dimensions, rows that are not whole blocks, an alignment that is not a u32 power of two, empty or
  ///   duplicate keys, nested arrays.
  public init(metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) throws(GGUFError) {
    var alignment = GGUFParser.defaultAlignment
    if let value = metadata["general.alignment"] {
      guard case .uint32(let declared) = value else { throw GGUFError(.badAlignment("must be u32, is \(value.type.name)")) }
      guard declared != 0, declared & (declared - 1) == 0 else { throw GGUFError(.badAlignment("\(declared) is not a power of 2")) }
      alignment = Int(declared)
    }
    var seenKeys = Set<String>()
    for (index, entry) in metadata.entries.enumerated() {
      guard !entry.key.isEmpty else { throw GGUFError(.emptyKey(index: index)) }
      guard seenKeys.insert(entry.key).inserted else { throw GGUFError(.duplicateKey(entry.key)) }
    }
    var placed: [GGUFTensorInfo] = []
    placed.reserveCapacity(tensors.count)
    var seenNames = Set<String>()
    var offset = 0
    for tensor in tensors {
      guard tensor.name.utf8.count <= GGUFTensorInfo.maximumNameLength else {
        throw GGUFError(.tensorNameTooLong(name: tensor.name, length: tensor.name.utf8.count))
      }
      guard seenNames.insert(tensor.name).inserted else { throw GGUFError(.duplicateTensor(tensor.name)) }
      guard (1...GGUFTensorInfo.maximumDimensions).contains(tensor.dimensions.count) else {
        throw GGUFError(.invalidTensor(tensor: tensor.name, reason: "needs 1 to 4 dimensions, has \(tensor.dimensions.count)"))
      }
      if let index = tensor.dimensions.firstIndex(where: { $0 < 0 }) {
        throw GGUFError(.negativeDimension(tensor: tensor.name, index: index, value: Int64(tensor.dimensions[index])))
      }
      try GGUFParser.validateShape(tensor)
      placed.append(GGUFTensorInfo(name: tensor.name, dimensions: tensor.dimensions, type: tensor.type, offset: offset))
      offset += GGUFParser.padded(tensor.byteCount, to: alignment)
    }
    var encoder = GGUFEncoder()
    encoder.header(metadata: metadata, tensors: placed)
    encoder.pad(to: alignment)
    self.metadata = metadata
    self.tensors = placed
    self.alignment = alignment
    self.headerBytes = encoder.bytes
    self.dataByteCount = offset
  }

  /// The absolute file offset of tensor `index`'s first byte.
  public func fileOffset(ofTensor index: Int) -> Int { dataOffset + tensors[index].offset }

  /// The index of the tensor named `name`.
  public func index(of name: String) -> Int? { tensors.firstIndex { $0.name == name } }
}

/// Serializes GGUF header fields as gguf.cpp's `gguf_writer_base` does (little-endian; strings as u64 length
/// plus bytes; bools as one byte; type tags as 32-bit integers).
struct GGUFEncoder {
  var bytes: [UInt8] = []

  mutating func integer<T: FixedWidthInteger>(_ value: T) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
  }

  mutating func string(_ text: String) {
    integer(UInt64(text.utf8.count))
    bytes.append(contentsOf: text.utf8)
  }

  mutating func header(metadata: GGUFMetadata, tensors: [GGUFTensorInfo]) {
    bytes.append(contentsOf: Array("GGUF".utf8))
    integer(UInt32(3))
    integer(Int64(tensors.count))
    integer(Int64(metadata.count))
    for entry in metadata.entries {
      string(entry.key)
      value(entry.value)
    }
    for tensor in tensors {
      string(tensor.name)
      integer(UInt32(tensor.dimensions.count))
      for dimension in tensor.dimensions { integer(Int64(dimension)) }
      integer(Int32(tensor.type.rawValue))
      integer(UInt64(tensor.offset))
    }
  }

  mutating func value(_ value: GGUFValue) {
    integer(Int32(value.type.rawValue))
    switch value {
    case .uint8(let v): integer(v)
    case .int8(let v): integer(v)
    case .uint16(let v): integer(v)
    case .int16(let v): integer(v)
    case .uint32(let v): integer(v)
    case .int32(let v): integer(v)
    case .float32(let v): integer(v.bitPattern)
    case .bool(let v): integer(UInt8(v ? 1 : 0))
    case .string(let v): string(v)
    case .uint64(let v): integer(v)
    case .int64(let v): integer(v)
    case .float64(let v): integer(v.bitPattern)
    case .array(let array):
      integer(Int32(array.elementType.rawValue))
      integer(UInt64(array.count))
      switch array {
      case .uint8(let a): bytes.append(contentsOf: a)
      case .int8(let a): for v in a { integer(v) }
      case .uint16(let a): for v in a { integer(v) }
      case .int16(let a): for v in a { integer(v) }
      case .uint32(let a): for v in a { integer(v) }
      case .int32(let a): for v in a { integer(v) }
      case .float32(let a): for v in a { integer(v.bitPattern) }
      case .bool(let a): for v in a { integer(UInt8(v ? 1 : 0)) }
      case .string(let a): for v in a { string(v) }
      case .uint64(let a): for v in a { integer(v) }
      case .int64(let a): for v in a { integer(v) }
      case .float64(let a): for v in a { integer(v.bitPattern) }
      }
    }
  }

  mutating func pad(to alignment: Int) {
    let target = GGUFParser.padded(bytes.count, to: alignment)
    bytes.append(contentsOf: repeatElement(0, count: target - bytes.count))
  }
}
