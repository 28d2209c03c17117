import JSON
import TensorCore

extension SafeTensorsHeader {
  /// Reads N from the first 8 bytes and checks it the way the reference crate does first (rules 1-4):
  /// the file has the 8 length bytes, N ≤ 100,000,000 and 8 + N ≤ the file's size.
  ///
  /// - Parameters:
  ///   - firstBytes: at least the file's first 8 bytes (or the whole file when it is shorter).
  ///   - fileByteCount: the size of the whole file.
  /// - Returns: N, the header's byte count; the caller then reads `8 + N` bytes for `parse`.
  public static func headerByteCount(firstBytes: UnsafeRawBufferPointer, fileByteCount: Int) throws(SafeTensorsError)
    -> Int
  {
    guard fileByteCount >= 8 else { throw .headerTooSmall(fileByteCount: fileByteCount) }
    precondition(firstBytes.count >= 8, "pass at least the first 8 bytes of the file")
    let n = UInt64(littleEndian: firstBytes.loadUnaligned(as: UInt64.self))
    guard n <= UInt64(maximumHeaderByteCount) else {
      throw .headerTooLarge(headerByteCount: n, looksLike: ForeignFileKind.sniff(firstBytes))
    }
    // n ≤ 1e8, so 8 + n cannot overflow.
    guard 8 + Int(n) <= fileByteCount else {
      throw .invalidHeaderLength(headerByteCount: n, fileByteCount: fileByteCount)
    }
    return Int(n)
  }

  /// Parses and validates a header, enforcing every rule of the reference crate in its order, plus
  /// Smelt's stricter ones (see `formats/safetensors.md`).
  ///
  /// Never traps on hostile input: all arithmetic on header numbers is checked.
  /// - Parameters:
  ///   - prefix: the file's bytes from offset 0, at least `8 + N` of them (see `headerByteCount`); more
  ///     (such as a whole mapped file) is fine.
  ///   - fileByteCount: the size of the whole file, which the tensors must cover exactly.
  public static func parse(prefix: UnsafeRawBufferPointer, fileByteCount: Int) throws(SafeTensorsError)
    -> SafeTensorsHeader
  {
    try parse(prefix: prefix, fileByteCount: fileByteCount, fastPath: true)
  }

  /// `parse(prefix:fileByteCount:)`, optionally without the fast decoder (tests compare the two paths).
  static func parse(prefix: UnsafeRawBufferPointer, fileByteCount: Int, fastPath: Bool) throws(SafeTensorsError)
    -> SafeTensorsHeader
  {
    let n = try headerByteCount(firstBytes: prefix, fileByteCount: fileByteCount)
    precondition(prefix.count >= 8 + n, "pass at least the first 8 + N bytes of the file")
    let json = UnsafeRawBufferPointer(rebasing: prefix[8..<(8 + n)])

    if fastPath, let decoded = HeaderDecoder.decode(json) {
      return try validate(
        decoded.entries, metadata: decoded.metadata, names: decoded.names, headerByteCount: n,
        fileByteCount: fileByteCount)
    }
    // The strict path: the input is malformed or unusual. It applies the rules in the crate's order and
    // names the first one broken.

    // Rule 5: the whole header must be UTF-8 before it is JSON.
    if let bad = UTF8Validation.firstInvalidByteOffset(in: json) { throw .invalidUTF8(fileOffset: 8 + bad) }

    // Rule 6: JSON syntax and types.
    let value: JSONValue
    do {
      value = try JSONParser.parse(json)
    } catch {
      if case .duplicateKey(let key, let offset, depth: 1) = error, key != "__metadata__" {
        throw .duplicateTensor(name: key, fileOffset: 8 + offset)
      }
      throw .invalidJSON(error)
    }
    guard case .object(let object) = value else { throw .headerNotObject(found: value.kindDescription) }

    var metadata: [String: String]? = nil
    var raw: [RawEntry] = []
    raw.reserveCapacity(object.count)
    for (key, member) in object {
      if key == "__metadata__" {
        metadata = try parseMetadata(member)
      } else {
        raw.append(try RawEntry(name: key, value: member, order: raw.count))
      }
    }
    return try validate(raw, metadata: metadata, names: nil, headerByteCount: n, fileByteCount: fileByteCount)
  }

  /// Rules 7-11 over entries that passed the JSON and type checks, in the crate's order; builds the header.
  ///
  /// - Parameter names: an index of `raw`'s names by position, when the caller built one while decoding.
  private static func validate(
    _ entries: [RawEntry], metadata: [String: String]?, names: NameIndex?, headerByteCount n: Int, fileByteCount: Int
  ) throws(SafeTensorsError) -> SafeTensorsHeader {
    // Rules 7-10, per tensor in (begin, end) order, exactly as the crate interleaves them. Writers lay
    // tensors out in header order, so the sort is usually skipped.
    func precedes(_ l: RawEntry, _ r: RawEntry) -> Bool { (l.begin, l.end, l.order) < (r.begin, r.end, r.order) }
    var sorted = true
    for position in entries.indices.dropFirst() {
      // Field by field (no copies of the entries).
      let (l, r) = (position - 1, position)
      if (entries[l].begin, entries[l].end, entries[l].order) < (entries[r].begin, entries[r].end, entries[r].order) { continue }
      sorted = false
      break
    }
    let raw = sorted ? entries : entries.sorted(by: precedes)
    // One pass: rules 7-10 per tensor, building the entries (discarded if a later rule fails).
    var tensors: [TensorEntry] = []
    tensors.reserveCapacity(raw.count)
    var expectedBegin: UInt64 = 0
    for position in raw.indices {
      let begin = raw[position].begin
      let end = raw[position].end
      guard begin == expectedBegin, end >= begin else {
        throw .invalidOffset(
          tensor: raw[position].name, begin: begin, end: end, expectedBegin: expectedBegin,
          previousTensor: position > 0 ? raw[position - 1].name : nil, dataStart: 8 + n)
      }
      expectedBegin = end
      let elementCount = try RawEntry.validateSize(
        name: raw[position].name, dtype: raw[position].dtype, shape: raw[position].shape, begin: begin, end: end)
      // Offsets within the file (checked below) and dimensions ≤ Int.max make the Int conversions exact;
      // until rule 11 passes they are clamped, and the entries are thrown away on failure.
      tensors.append(
        TensorEntry(
          validatedName: raw[position].name, dtype: raw[position].dtype,
          shape: raw[position].intShape ?? raw[position].shape.map { Int($0) },
          dataOffsets: Int(clamping: begin)..<Int(clamping: end),
          elementCount: Int(elementCount)))
    }

    // Rule 11: the data section ends exactly at the end of the file.
    let (dataEnd, overflow) = expectedBegin.addingReportingOverflow(UInt64(8 + n))
    guard !overflow, dataEnd == UInt64(fileByteCount) else {
      throw .metadataIncompleteBuffer(dataEndFileOffset: overflow ? nil : dataEnd, fileByteCount: fileByteCount)
    }
    // The decoder's index holds header positions, which are the offset-order positions when unsorted.
    return SafeTensorsHeader(
      headerByteCount: n, tensors: tensors, metadata: metadata, names: sorted ? names : nil)
  }

  /// Parses a complete file held in memory.
  public static func parse(fileBytes: UnsafeRawBufferPointer) throws(SafeTensorsError) -> SafeTensorsHeader {
    try parse(prefix: fileBytes, fileByteCount: fileBytes.count)
  }

  /// Parses a complete file held in memory.
  public static func parse(fileBytes: [UInt8]) throws(SafeTensorsError) -> SafeTensorsHeader {
    let result: Result<SafeTensorsHeader, SafeTensorsError> = fileBytes.withUnsafeBytes { bytes in
      Result { () throws(SafeTensorsError) -> SafeTensorsHeader in try parse(fileBytes: bytes) }
    }
    return try result.get()
  }

  private static func parseMetadata(_ value: JSONValue) throws(SafeTensorsError) -> [String: String]? {
    switch value {
    case .null:
      return nil
    case .object(let object):
      var metadata = [String: String](minimumCapacity: object.count)
      for (key, member) in object {
        guard case .string(let string) = member else {
          throw .invalidMetadata(key: key, found: member.kindDescription)
        }
        metadata[key] = string
      }
      return metadata
    default:
      throw .invalidMetadata(key: nil, found: value.kindDescription)
    }
  }
}

/// A tensor entry after the JSON type checks, before the offset and size rules. Numbers stay `UInt64`
/// (the crate's `usize`) so that the rules see exactly the values the crate sees.
struct RawEntry {
  let name: String
  let dtype: DType
  let shape: [UInt64]
  /// `shape` as `Int`s when the decoder already has them (shared between tensors).
  var intShape: [Int]? = nil
  let begin: UInt64
  let end: UInt64
  /// Position in the header, to keep the sort stable.
  let order: Int

  init(name: String, dtype: DType, shape: [UInt64], intShape: [Int]?, begin: UInt64, end: UInt64, order: Int) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.intShape = intShape
    self.begin = begin
    self.end = end
    self.order = order
  }

  init(name: String, value: JSONValue, order: Int) throws(SafeTensorsError) {
    guard case .object(let fields) = value else {
      throw .invalidEntry(
        tensor: name, reason: "expected an object with dtype, shape and data_offsets, found \(value.kindDescription)")
    }
    // Unknown fields are ignored, as the crate does.
    guard let dtypeValue = fields["dtype"] else { throw .missingField(tensor: name, field: "dtype") }
    guard case .string(let dtypeName) = dtypeValue else {
      throw .invalidEntry(tensor: name, reason: "dtype must be a string, found \(dtypeValue.kindDescription)")
    }
    guard let dtype = DType(safetensorsName: dtypeName) else { throw .unknownDType(tensor: name, dtype: dtypeName) }

    guard let shapeValue = fields["shape"] else { throw .missingField(tensor: name, field: "shape") }
    guard case .array(let dims) = shapeValue else {
      throw .invalidShape(tensor: name, reason: "expected an array of non-negative integers, found \(shapeValue.kindDescription)")
    }
    var shape: [UInt64] = []
    shape.reserveCapacity(dims.count)
    for (axis, dim) in dims.enumerated() {
      guard let size = RawEntry.unsignedInteger(dim) else {
        throw .invalidShape(tensor: name, reason: "dimension \(axis) is \(RawEntry.describe(dim)), expected a non-negative integer below 2^64")
      }
      shape.append(size)
    }

    guard let offsetsValue = fields["data_offsets"] else { throw .missingField(tensor: name, field: "data_offsets") }
    guard case .array(let offsets) = offsetsValue else {
      throw .invalidDataOffsets(tensor: name, reason: "expected [begin, end], found \(offsetsValue.kindDescription)")
    }
    guard offsets.count == 2 else {
      throw .invalidDataOffsets(tensor: name, reason: "expected exactly 2 integers [begin, end], found \(offsets.count) elements")
    }
    guard let begin = RawEntry.unsignedInteger(offsets[0]), let end = RawEntry.unsignedInteger(offsets[1]) else {
      let bad = RawEntry.unsignedInteger(offsets[0]) == nil ? offsets[0] : offsets[1]
      throw .invalidDataOffsets(tensor: name, reason: "\(RawEntry.describe(bad)) is not a non-negative integer below 2^64")
    }
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.begin = begin
    self.end = end
    self.order = order
  }

  /// A non-negative integer written without fraction or exponent that fits `UInt64`, like serde's `usize`.
  static func unsignedInteger(_ value: JSONValue) -> UInt64? {
    guard case .number(let number) = value else { return nil }
    return number.uint64
  }

  static func describe(_ value: JSONValue) -> String {
    if case .number(let number) = value { return "`\(number.text)`" }
    return value.kindDescription
  }

  /// Rules 8-10 for one tensor whose offsets passed rule 7; returns its element count.
  static func validateSize(name: String, dtype: DType, shape: [UInt64], begin: UInt64, end: UInt64)
    throws(SafeTensorsError) -> UInt64
  {
    // Rule 8: the crate folds left with checked multiplication (a zero stops later overflow).
    // Stricter than the crate: every partial product must also fit `Int` (as `ByteCount.elementCount`
    // folds), so `[2^32-1, 2^32, 0]`, which the crate accepts as empty, is refused rather than accepted
    // here and then refused by Smelt's writer and size helpers (found by fuzzing).
    var elementCount: UInt64 = 1
    for dim in shape {
      let (product, overflow) = elementCount.multipliedReportingOverflow(by: dim)
      guard !overflow, product <= UInt64(Int.max) else { throw .validationOverflow(tensor: name, dtype: dtype, shape: shape) }
      elementCount = product
    }
    let (bitCount, overflow) = elementCount.multipliedReportingOverflow(by: UInt64(dtype.bitWidth))
    // Stricter than the crate: Smelt keeps dimensions and counts in Int, so a dimension above Int.max
    // (possible only next to a zero dimension, in an empty tensor) is an overflow too.
    guard !overflow, elementCount <= UInt64(Int.max), shape.allSatisfy({ $0 <= UInt64(Int.max) }) else {
      throw .validationOverflow(tensor: name, dtype: dtype, shape: shape)
    }
    // Rule 9.
    guard bitCount % 8 == 0 else { throw .misalignedSlice(tensor: name, dtype: dtype, elementCount: elementCount) }
    // Rule 10 (end >= begin holds after rule 7).
    let byteCount = bitCount / 8
    guard end - begin == byteCount else {
      throw .tensorInvalidInfo(
        tensor: name, dtype: dtype, shape: shape.map { Int($0) }, expectedByteCount: Int(clamping: byteCount),
        begin: begin, end: end)
    }
    return elementCount
  }
}
