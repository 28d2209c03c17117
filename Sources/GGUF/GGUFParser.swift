import GGML

/// What a GGUF header says: metadata, tensor infos, alignment and where the data section starts.
public struct GGUFHeader: Sendable, Equatable {
  public var version: UInt32
  public var metadata: GGUFMetadata
  public var tensors: [GGUFTensorInfo]
  public var alignment: Int
  /// Absolute offset of the data section (the header padded to the alignment).
  public var dataOffset: Int
  /// Bytes of the data section: every tensor padded to the alignment.
  public var dataByteCount: Int

  /// The tensor named `name`.
  public func tensor(named name: String) -> GGUFTensorInfo? { tensors.first { $0.name == name } }
}

/// A strict GGUF v2/v3 header parser over bytes in memory (usually a mapped file).
///
/// It applies every check gguf.cpp's `gguf_init_from_file` makes, with the same limits, and adds that each
/// tensor's data must lie inside the file (llama.cpp checks that when loading). Counts and lengths are
/// validated against the bytes that remain before anything is allocated, so a hostile header cannot make
/// it allocate more than the file's size.
public enum GGUFParser {
  /// gguf.cpp's `GGUF_MAX_STRING_LENGTH` and `GGUF_MAX_ARRAY_ELEMENTS`.
  public static let maximumStringLength = 1 << 30
  public static let maximumArrayCount = 1 << 30
  static let defaultAlignment = 32
  /// ggml type ids that ggml still lists but can no longer size (removed repacked formats).
  static let removedTypeIDs: Set<UInt32> = [4, 5, 31, 32, 33, 36, 37, 38]

  /// Parses the header at the start of `bytes` (the whole file; `path` only names it in errors).
  public static func parse(_ bytes: UnsafeRawBufferPointer, path: String? = nil) throws(GGUFError) -> GGUFHeader {
    var reader = ByteReader(bytes: bytes, path: path)
    let magic = try reader.bytes(4, what: "the magic")
    guard magic == Array("GGUF".utf8) else { throw GGUFError(.badMagic(magic), offset: 0, path: path) }
    let version = try reader.uint32(what: "the version")
    guard version == 2 || version == 3 else { throw GGUFError(.unsupportedVersion(version), offset: 4, path: path) }
    let tensorCount = try reader.uint64(what: "the tensor count")
    let kvCount = try reader.uint64(what: "the key-value count")
    // Each key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes, each tensor info 8 + 4 + 4 + 8.
    try reader.checkCount(kvCount, minimumBytesEach: 13, what: "key-value pairs", at: 16)
    try reader.checkCount(tensorCount, minimumBytesEach: 24, what: "tensor infos", at: 8)

    var metadata = GGUFMetadata()
    var seenKeys = Set<String>()
    for index in 0..<Int(kvCount) {
      let keyOffset = reader.position
      let key = try reader.string(what: "key \(index)")
      guard !key.isEmpty else { throw GGUFError(.emptyKey(index: index), offset: keyOffset, path: path) }
      guard seenKeys.insert(key).inserted else { throw GGUFError(.duplicateKey(key), offset: keyOffset, path: path) }
      let value = try reader.value(key: key)
      metadata.set(key, value)
    }

    var alignment = defaultAlignment
    if let value = metadata["general.alignment"] {
      guard case .uint32(let declared) = value else {
        throw GGUFError(.badAlignment("must be u32, is \(value.type.name)"), path: path)
      }
      guard declared != 0, declared & (declared - 1) == 0 else {
        throw GGUFError(.badAlignment("\(declared) is not a power of 2"), path: path)
      }
      alignment = Int(declared)
    }

    var tensors: [GGUFTensorInfo] = []
    tensors.reserveCapacity(Int(tensorCount))
    var seenNames = Set<String>()
    for index in 0..<Int(tensorCount) {
      let infoOffset = reader.position
      let name = try reader.string(what: "the name of tensor \(index)")
      guard name.utf8.count <= GGUFTensorInfo.maximumNameLength else {
        throw GGUFError(.tensorNameTooLong(name: name, length: name.utf8.count), offset: infoOffset, path: path)
      }
      guard seenNames.insert(name).inserted else { throw GGUFError(.duplicateTensor(name), offset: infoOffset, path: path) }
      let dimensionCount = try reader.uint32(what: "the dimension count of '\(name)'")
      guard dimensionCount <= UInt32(GGUFTensorInfo.maximumDimensions) else {
        throw GGUFError(.tooManyDimensions(tensor: name, count: dimensionCount), offset: reader.position - 4, path: path)
      }
      var dimensions: [Int] = []
      for d in 0..<Int(dimensionCount) {
        let value = Int64(bitPattern: try reader.uint64(what: "dimension \(d) of '\(name)'"))
        guard value >= 0 else {
          throw GGUFError(.negativeDimension(tensor: name, index: d, value: value), offset: reader.position - 8, path: path)
        }
        dimensions.append(Int(value))
      }
      let typeOffset = reader.position
      let rawType = try reader.uint32(what: "the type of '\(name)'")
      guard let type = GGMLType(rawValue: rawType) else {
        let kind: GGUFError.Kind =
          removedTypeIDs.contains(rawType) ? .unsizedTensorType(tensor: name, type: rawType) : .unknownTensorType(tensor: name, type: rawType)
        throw GGUFError(kind, offset: typeOffset, path: path)
      }
      let info = GGUFTensorInfo(name: name, dimensions: dimensions, type: type)
      do throws(GGUFError) { try validateShape(info) } catch { throw GGUFError(error.kind, offset: infoOffset, path: path) }
      let offset = try reader.uint64(what: "the data offset of '\(name)'")
      guard offset <= UInt64(Int.max) else {
        throw GGUFError(.misplacedTensor(tensor: name, offset: offset, expected: 0), offset: reader.position - 8, path: path)
      }
      tensors.append(GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: Int(offset)))
    }

    // gguf.cpp pads to the data section only when there are tensors.
    let dataOffset = tensors.isEmpty ? reader.position : padded(reader.position, to: alignment)
    if dataOffset > bytes.count {
      throw GGUFError(.truncated(what: "the padding before the data section", needed: dataOffset - reader.position,
        available: bytes.count - reader.position), offset: reader.position, path: path)
    }
    var expected = 0
    for tensor in tensors {
      guard tensor.offset == expected else {
        throw GGUFError(.misplacedTensor(tensor: tensor.name, offset: UInt64(tensor.offset), expected: expected), path: path)
      }
      let (end, overflow) = (dataOffset + expected).addingReportingOverflow(tensor.byteCount)
      guard !overflow, end <= bytes.count else {
        throw GGUFError(.dataOutOfBounds(tensor: tensor.name, end: overflow ? Int.max : end, fileSize: bytes.count), path: path)
      }
      expected += padded(tensor.byteCount, to: alignment)
    }
    return GGUFHeader(
      version: version, metadata: metadata, tensors: tensors, alignment: alignment, dataOffset: dataOffset,
      dataByteCount: expected)
  }

  /// gguf.cpp's shape checks: element and byte counts fit in 64 bits, the row is whole blocks.
  static func validateShape(_ info: GGUFTensorInfo) throws(GGUFError) {
    var elements = 1
    for dimension in info.dimensions {
      let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
      guard !overflow else { throw GGUFError(.sizeOverflow(tensor: info.name)) }
      elements = product
    }
    let rowLength = info.dimensions.first ?? 1
    guard rowLength % info.type.blockSize == 0 else {
      throw GGUFError(.rowNotBlockMultiple(tensor: info.name, type: info.type, rowLength: rowLength))
    }
    let (bytes, overflow) = (elements / info.type.blockSize).multipliedReportingOverflow(by: info.type.blockByteCount)
    guard !overflow, bytes <= Int.max - 4096 else { throw GGUFError(.sizeOverflow(tensor: info.name)) }
  }

  static func padded(_ value: Int, to alignment: Int) -> Int { (value + alignment - 1) / alignment * alignment }
}

/// A bounds-checked little-endian cursor.
struct ByteReader {
  let bytes: UnsafeRawBufferPointer
  let path: String?
  var position = 0

  init(bytes: UnsafeRawBufferPointer, path: String?) {
    self.bytes = bytes
    self.path = path
  }

  var remaining: Int { bytes.count - position }

  mutating func need(_ count: Int, what: String) throws(GGUFError) {
    guard count <= remaining else {
      throw GGUFError(.truncated(what: what, needed: count, available: remaining), offset: position, path: path)
    }
  }

  mutating func bytes(_ count: Int, what: String) throws(GGUFError) -> [UInt8] {
    try need(count, what: what)
    defer { position += count }
    return Array(UnsafeRawBufferPointer(rebasing: bytes[position..<position + count]))
  }

  mutating func load<T: FixedWidthInteger>(_: T.Type, what: String) throws(GGUFError) -> T {
    try need(MemoryLayout<T>.size, what: what)
    defer { position += MemoryLayout<T>.size }
    return T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
  }

  mutating func uint32(what: String) throws(GGUFError) -> UInt32 { try load(UInt32.self, what: what) }
  mutating func uint64(what: String) throws(GGUFError) -> UInt64 { try load(UInt64.self, what: what) }

  func checkCount(_ count: UInt64, minimumBytesEach: Int, what: String, at offset: Int) throws(GGUFError) {
    let limit = remaining / minimumBytesEach
    guard count <= UInt64(limit) else { throw GGUFError(.countTooLarge(what: what, count: count, limit: limit), offset: offset, path: path) }
  }

  mutating func string(what: String) throws(GGUFError) -> String {
    let start = position
    let length = try uint64(what: "the length of \(what)")
    guard length <= UInt64(GGUFParser.maximumStringLength) else {
      throw GGUFError(.stringTooLong(length: length, limit: GGUFParser.maximumStringLength), offset: start, path: path)
    }
    try need(Int(length), what: what)
    let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<position + Int(length)])
    position += Int(length)
    guard let text = String(validating: slice, as: UTF8.self) else {
      throw GGUFError(.invalidUTF8(what: what), offset: start + 8, path: path)
    }
    return text
  }

  mutating func value(key: String) throws(GGUFError) -> GGUFValue {
    let typeOffset = position
    let rawType = try uint32(what: "the type of '\(key)'")
    guard let type = GGUFValueType(rawValue: rawType) else {
      throw GGUFError(.invalidValueType(key: key, type: rawType), offset: typeOffset, path: path)
    }
    if type == .array { return .array(try array(key: key)) }
    return try scalar(type, key: key)
  }

  mutating func scalar(_ type: GGUFValueType, key: String) throws(GGUFError) -> GGUFValue {
    let what = "the value of '\(key)'"
    switch type {
    case .uint8: return .uint8(try load(UInt8.self, what: what))
    case .int8: return .int8(try load(Int8.self, what: what))
    case .uint16: return .uint16(try load(UInt16.self, what: what))
    case .int16: return .int16(try load(Int16.self, what: what))
    case .uint32: return .uint32(try load(UInt32.self, what: what))
    case .int32: return .int32(try load(Int32.self, what: what))
    case .float32: return .float32(Float(bitPattern: try load(UInt32.self, what: what)))
    case .bool: return .bool(try load(Int8.self, what: what) != 0)
    case .string: return .string(try string(what: what))
    case .uint64: return .uint64(try load(UInt64.self, what: what))
    case .int64: return .int64(try load(Int64.self, what: what))
    case .float64: return .float64(Double(bitPattern: try load(UInt64.self, what: what)))
    case .array: throw GGUFError(.nestedArray(key: key), offset: position - 4, path: path)
    }
  }

  mutating func array(key: String) throws(GGUFError) -> GGUFArray {
    let typeOffset = position
    let rawType = try uint32(what: "the element type of '\(key)'")
    guard let type = GGUFValueType(rawValue: rawType) else {
      throw GGUFError(.invalidValueType(key: key, type: rawType), offset: typeOffset, path: path)
    }
    guard type != .array else { throw GGUFError(.nestedArray(key: key), offset: typeOffset, path: path) }
    let countOffset = position
    let count = try uint64(what: "the element count of '\(key)'")
    // Strings take at least their 8-byte length each.
    let limit = Swift.min(GGUFParser.maximumArrayCount, remaining / (type.elementByteCount ?? 8))
    guard count <= UInt64(limit) else {
      throw GGUFError(.arrayTooLong(key: key, count: count, limit: limit), offset: countOffset, path: path)
    }
    let n = Int(count)
    let what = "array '\(key)'"
    switch type {
    case .uint8: return .uint8(try elements(n, UInt8.self, what: what))
    case .int8: return .int8(try elements(n, Int8.self, what: what))
    case .uint16: return .uint16(try elements(n, UInt16.self, what: what))
    case .int16: return .int16(try elements(n, Int16.self, what: what))
    case .uint32: return .uint32(try elements(n, UInt32.self, what: what))
    case .int32: return .int32(try elements(n, Int32.self, what: what))
    case .float32: return .float32(try elements(n, UInt32.self, what: what).map { Float(bitPattern: $0) })
    case .bool: return .bool(try elements(n, Int8.self, what: what).map { $0 != 0 })
    case .uint64: return .uint64(try elements(n, UInt64.self, what: what))
    case .int64: return .int64(try elements(n, Int64.self, what: what))
    case .float64: return .float64(try elements(n, UInt64.self, what: what).map { Double(bitPattern: $0) })
    case .string:
      var strings: [String] = []
      strings.reserveCapacity(n)
      for index in 0..<n { strings.append(try string(what: "element \(index) of array '\(key)'")) }
      return .string(strings)
    case .array: throw GGUFError(.nestedArray(key: key), offset: typeOffset, path: path)
    }
  }

  mutating func elements<T: FixedWidthInteger>(_ count: Int, _: T.Type, what: String) throws(GGUFError) -> [T] {
    try need(count * MemoryLayout<T>.size, what: what)
    let base = position
    position += count * MemoryLayout<T>.size
    return (0..<count).map { T(littleEndian: bytes.loadUnaligned(fromByteOffset: base + $0 * MemoryLayout<T>.size, as: T.self)) }
  }
}
