import JSON
import TensorCore

/// A tensor to be written: name, element type and logical shape.
public struct PlannedTensor: Sendable, Hashable {
  public var name: String
  public var dtype: DType
  public var shape: [Int]

  public init(name: String, dtype: DType, shape: [Int]) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
  }
}

/// The complete layout of a safetensors file, computed before any tensor data exists.
///
/// Matches what the official writer (`safetensors` `prepare()`) produces: tensors sorted by dtype
/// descending in the crate's enum order (widest alignment first), ties by name (byte order), laid out back
/// to back from data offset 0; header JSON compact with `__metadata__` first (keys sorted), then tensors in
/// offset order with fields `dtype`, `shape`, `data_offsets`; padded with spaces to a multiple of 8 bytes.
/// Since the data section then starts 8-aligned and wider dtypes come first, every tensor starts aligned to
/// its element size.
public struct SafeTensorsLayout: Sendable, Equatable {
  /// `{"format": "pt"}`: transformers refuses files whose `__metadata__` lacks a known `format`, so
  /// writers emit it unless told otherwise.
  public static let defaultMetadata: [String: String] = ["format": "pt"]

  /// The validated header the file will have (entries in offset order, constant-time lookup).
  public let header: SafeTensorsHeader
  /// The file's first bytes: the 8-byte little-endian N, the header JSON and its space padding.
  public let headerBytes: [UInt8]

  /// Plans a file holding `tensors` (in any order).
  ///
  /// - Parameter metadata: the `__metadata__` map; `nil` omits it. Defaults to `{"format": "pt"}`.
  /// - Throws: `reservedTensorName`, `duplicateTensor`, `negativeDimension`, `validationOverflow`,
  ///   `misalignedSlice` (a sub-byte dtype whose element count is not a whole number of bytes) or
  ///   `headerTooLarge` (header over 100,000,000 bytes).
  public init(tensors: [PlannedTensor], metadata: [String: String]? = SafeTensorsLayout.defaultMetadata)
    throws(SafeTensorsError)
  {
    var seen = NameIndex(capacity: tensors.count)
    for (position, tensor) in tensors.enumerated() {
      guard tensor.name != "__metadata__" else { throw .reservedTensorName }
      guard seen.insert(tensor.name, position: position, nameAt: { tensors[$0].name }) == nil else {
        throw .duplicateTensor(name: tensor.name, fileOffset: nil)
      }
      guard tensor.shape.allSatisfy({ $0 >= 0 }) else { throw .negativeDimension(tensor: tensor.name, shape: tensor.shape) }
    }
    // Sorting indices moves Ints instead of structs holding a String and an Array.
    let ranks = tensors.map(\.dtype.crateOrder)
    let order = tensors.indices.sorted { l, r in
      if ranks[l] != ranks[r] { return ranks[l] > ranks[r] }
      return utf8Precedes(tensors[l].name, tensors[r].name)
    }
    let ordered = order.map { tensors[$0] }

    var entries: [TensorEntry] = []
    entries.reserveCapacity(ordered.count)
    var offset = 0
    for tensor in ordered {
      let shape64 = tensor.shape.map { UInt64($0) }
      guard let elementCount = ByteCount.elementCount(tensor.shape) else {
        throw .validationOverflow(tensor: tensor.name, dtype: tensor.dtype, shape: shape64)
      }
      let (bitCount, overflow) = elementCount.multipliedReportingOverflow(by: tensor.dtype.bitWidth)
      guard !overflow else { throw .validationOverflow(tensor: tensor.name, dtype: tensor.dtype, shape: shape64) }
      guard bitCount % 8 == 0 else {
        throw .misalignedSlice(tensor: tensor.name, dtype: tensor.dtype, elementCount: UInt64(elementCount))
      }
      let (end, endOverflow) = offset.addingReportingOverflow(bitCount / 8)
      guard !endOverflow else { throw .validationOverflow(tensor: tensor.name, dtype: tensor.dtype, shape: shape64) }
      entries.append(
        TensorEntry(
          validatedName: tensor.name, dtype: tensor.dtype, shape: tensor.shape, dataOffsets: offset..<end,
          elementCount: elementCount))
      offset = end
    }

    var json = SafeTensorsLayout.headerJSON(entries: entries, metadata: metadata)
    json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
    guard json.count <= SafeTensorsHeader.maximumHeaderByteCount else {
      throw .headerTooLarge(headerByteCount: UInt64(json.count), looksLike: nil)
    }
    guard offset <= Int.max - 8 - json.count else {
      throw .validationOverflow(tensor: ordered.last?.name ?? "", dtype: ordered.last?.dtype ?? .uint8, shape: [])
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(8 + json.count)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: json)
    self.headerBytes = bytes
    self.header = SafeTensorsHeader(headerByteCount: json.count, tensors: entries, metadata: metadata)
  }

  /// The entries in file order.
  public var entries: [TensorEntry] { header.tensors }

  /// The size of the finished file.
  public var fileByteCount: Int { header.fileByteCount }

  /// The entry named `name`.
  public func entry(named name: String) -> TensorEntry? { header.entry(named: name) }

  /// The file offset where tensor `name`'s bytes start, or `nil` for an unknown name.
  public func fileOffset(ofTensor name: String) -> Int? {
    header.entry(named: name).map { header.dataStart + $0.dataOffsets.lowerBound }
  }

  /// The compact header JSON, as serde_json writes the crate's `Metadata`.
  static func headerJSON(entries: [TensorEntry], metadata: [String: String]?) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(64 + entries.count * 96)
    out.append(UInt8(ascii: "{"))
    var first = true
    if let metadata {
      out.append(contentsOf: #""__metadata__":{"#.utf8)
      // The crate serializes a HashMap (arbitrary order); sorted keys make Smelt's output deterministic and
      // identical to the crate's whenever there is a single key.
      for (k, key) in metadata.keys.sorted(by: utf8Precedes).enumerated() {
        if k > 0 { out.append(UInt8(ascii: ",")) }
        JSONWriter.writeString(key, to: &out)
        out.append(UInt8(ascii: ":"))
        JSONWriter.writeString(metadata[key] ?? "", to: &out)
      }
      out.append(UInt8(ascii: "}"))
      first = false
    }
    for entry in entries {
      if !first { out.append(UInt8(ascii: ",")) }
      first = false
      JSONWriter.writeString(entry.name, to: &out)
      out.append(contentsOf: #":{"dtype":""#.utf8)
      out.append(contentsOf: entry.dtype.rawValue.utf8)
      out.append(contentsOf: #"","shape":["#.utf8)
      for (k, dim) in entry.shape.enumerated() {
        if k > 0 { out.append(UInt8(ascii: ",")) }
        out.append(contentsOf: String(dim).utf8)
      }
      out.append(contentsOf: #"],"data_offsets":["#.utf8)
      out.append(contentsOf: String(entry.dataOffsets.lowerBound).utf8)
      out.append(UInt8(ascii: ","))
      out.append(contentsOf: String(entry.dataOffsets.upperBound).utf8)
      out.append(contentsOf: "]}".utf8)
    }
    out.append(UInt8(ascii: "}"))
    return out
  }
}
