import JSON
import TensorCore

/// The fast path of header parsing: one pass over the JSON bytes, straight into `RawEntry`s.
///
/// Keys and dtype names are compared as bytes, numbers are read in place, each tensor costs one
/// allocation (its name; shapes are shared between tensors that have the same one), and tensor names are
/// indexed as they arrive. The decoder accepts only headers it fully understands — the three known fields
/// per entry, string metadata, any whitespace — and returns `nil` for anything else, malformed or merely
/// unusual (an unknown field, a duplicate). `SafeTensorsHeader.parse` then runs the strict tree-based
/// path, which names the exact problem, so the errors and their precedence are defined in one place.
///
/// Soundness: a `nil`-free result implies that the strict path accepts the same bytes with the same
/// entries. Every byte outside a string is ASCII JSON syntax, and strings are validated (control
/// characters, escapes, UTF-8) by `JSONScanner`, so rule 5 (the header is UTF-8) holds too.
struct HeaderDecoder {
  var scanner: JSONScanner
  var entries: [RawEntry] = []
  var names = NameIndex()
  var metadata: [String: String]? = nil
  var shapes = ShapeInterner()
  /// Reused buffer for the dimensions of the entry being read.
  var dimensions: [UInt64] = []
  var lastDType: (name: [UInt8], dtype: DType)? = nil

  /// A signal that the input is not one the fast path handles.
  struct Unhandled: Error {}

  /// Decodes `json` (the header JSON without the 8 length bytes), or `nil` when the strict path must.
  static func decode(_ json: UnsafeRawBufferPointer) -> HeaderDecoder? {
    var decoder = HeaderDecoder(scanner: JSONScanner(json))
    // ~130 bytes per tensor in a compact header.
    let expected = json.count / 128 + 1
    decoder.entries.reserveCapacity(expected)
    decoder.names = NameIndex(capacity: expected)
    do {
      try decoder.decodeDocument()
    } catch {
      return nil
    }
    return decoder
  }

  mutating func decodeDocument() throws {
    if scanner.startsWithByteOrderMark { throw Unhandled() }
    scanner.skipWhitespace()
    try expect(UInt8(ascii: "{"))
    scanner.skipWhitespace()
    if !scanner.consume(UInt8(ascii: "}")) {
      var sawMetadata = false
      while true {
        guard scanner.current == UInt8(ascii: "\"") else { throw Unhandled() }
        let key = try scanner.readStringToken()
        try separator()
        if scanner.withBytes(of: key, { HeaderDecoder.equals($0, "__metadata__") }) {
          if sawMetadata { throw Unhandled() }
          sawMetadata = true
          try decodeMetadata()
        } else {
          let name = scanner.string(of: key)
          try decodeEntry(name: name)
        }
        scanner.skipWhitespace()
        if scanner.consume(UInt8(ascii: ",")) {
          scanner.skipWhitespace()
          continue
        }
        try expect(UInt8(ascii: "}"))
        break
      }
    }
    scanner.skipWhitespace()
    guard scanner.isAtEnd else { throw Unhandled() }
  }

  /// `:` between a key and its value, with whitespace either side.
  mutating func separator() throws {
    scanner.skipWhitespace()
    try expect(UInt8(ascii: ":"))
    scanner.skipWhitespace()
  }

  mutating func expect(_ byte: UInt8) throws {
    guard scanner.consume(byte) else { throw Unhandled() }
  }

  /// `{"dtype": "...", "shape": [...], "data_offsets": [b, e]}` in any order, nothing else.
  mutating func decodeEntry(name: String) throws {
    try expect(UInt8(ascii: "{"))
    var dtype: DType?
    var shape: InternedShape?
    var offsets: (UInt64, UInt64)?
    scanner.skipWhitespace()
    while true {
      guard scanner.current == UInt8(ascii: "\"") else { throw Unhandled() }
      let key = try scanner.readStringToken()
      guard !key.hasEscapes else { throw Unhandled() }
      let field = UnsafeRawBufferPointer(rebasing: scanner.bytes[key.contentRange])
      try separator()
      if dtype == nil, HeaderDecoder.equals(field, "dtype") {
        dtype = try decodeDType()
      } else if shape == nil, HeaderDecoder.equals(field, "shape") {
        shape = try decodeShape()
      } else if offsets == nil, HeaderDecoder.equals(field, "data_offsets") {
        offsets = try decodeOffsets()
      } else {
        throw Unhandled()  // an unknown or repeated field
      }
      scanner.skipWhitespace()
      if scanner.consume(UInt8(ascii: ",")) {
        scanner.skipWhitespace()
        continue
      }
      try expect(UInt8(ascii: "}"))
      break
    }
    guard let dtype, let shape, let offsets else { throw Unhandled() }
    let position = entries.count
    entries.append(
      RawEntry(
        name: name, dtype: dtype, shape: shape.dimensions, intShape: shape.intDimensions, begin: offsets.0,
        end: offsets.1, order: position))
    if names.insert(name, position: position, nameAt: { entries[$0].name }) != nil { throw Unhandled() }
  }

  mutating func decodeDType() throws -> DType {
    guard scanner.current == UInt8(ascii: "\"") else { throw Unhandled() }
    let token = try scanner.readStringToken()
    guard !token.hasEscapes else { throw Unhandled() }
    let bytes = UnsafeRawBufferPointer(rebasing: scanner.bytes[token.contentRange])
    if let lastDType, bytes.elementsEqual(lastDType.name) { return lastDType.dtype }
    guard let dtype = DType(safetensorsName: String(decoding: bytes, as: UTF8.self)) else { throw Unhandled() }
    lastDType = (Array(bytes), dtype)
    return dtype
  }

  /// `[d0, d1, ...]` of non-negative integers below 2^64.
  mutating func decodeShape() throws -> InternedShape {
    try expect(UInt8(ascii: "["))
    dimensions.removeAll(keepingCapacity: true)
    scanner.skipWhitespace()
    if !scanner.consume(UInt8(ascii: "]")) {
      while true {
        dimensions.append(try unsignedInteger())
        scanner.skipWhitespace()
        if scanner.consume(UInt8(ascii: ",")) {
          scanner.skipWhitespace()
          continue
        }
        try expect(UInt8(ascii: "]"))
        break
      }
    }
    return shapes.intern(dimensions)
  }

  /// `[begin, end]`.
  mutating func decodeOffsets() throws -> (UInt64, UInt64) {
    try expect(UInt8(ascii: "["))
    scanner.skipWhitespace()
    let begin = try unsignedInteger()
    scanner.skipWhitespace()
    try expect(UInt8(ascii: ","))
    scanner.skipWhitespace()
    let end = try unsignedInteger()
    scanner.skipWhitespace()
    try expect(UInt8(ascii: "]"))
    return (begin, end)
  }

  mutating func unsignedInteger() throws -> UInt64 {
    guard let byte = scanner.current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"),
      let value = try scanner.readUnsignedInteger()
    else { throw Unhandled() }
    return value
  }

  /// `null`, or an object of string values with distinct keys.
  mutating func decodeMetadata() throws {
    if scanner.current == UInt8(ascii: "n") {
      try scanner.readLiteral("null")
      return
    }
    try expect(UInt8(ascii: "{"))
    var map: [String: String] = [:]
    scanner.skipWhitespace()
    if !scanner.consume(UInt8(ascii: "}")) {
      while true {
        guard scanner.current == UInt8(ascii: "\"") else { throw Unhandled() }
        let key = try scanner.readString()
        try separator()
        guard scanner.current == UInt8(ascii: "\"") else { throw Unhandled() }
        let value = try scanner.readString()
        if map.updateValue(value, forKey: key) != nil { throw Unhandled() }
        scanner.skipWhitespace()
        if scanner.consume(UInt8(ascii: ",")) {
          scanner.skipWhitespace()
          continue
        }
        try expect(UInt8(ascii: "}"))
        break
      }
    }
    metadata = map
  }

  static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
    bytes.count == literal.utf8CodeUnitCount
      && bytes.elementsEqual(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
  }
}

/// A shape as the header wrote it and as `TensorEntry` keeps it, shared by every tensor with that shape.
struct InternedShape {
  let dimensions: [UInt64]
  let intDimensions: [Int]
}

/// Hands out one pair of arrays per distinct shape (a header has a few dozen shapes for ~1000 tensors), so
/// tensors do not allocate their shapes. Remembers a bounded number of shapes: beyond that, new shapes are
/// allocated per tensor, so hostile headers cost linear time.
struct ShapeInterner {
  private var known: [InternedShape] = []
  private var next = 0
  static let capacity = 32

  mutating func intern(_ dimensions: [UInt64]) -> InternedShape {
    for shape in known where shape.dimensions == dimensions { return shape }
    // Dimensions above Int.max are refused later (rule 8); their Int form is never read.
    let shape = InternedShape(dimensions: dimensions, intDimensions: dimensions.map { Int(truncatingIfNeeded: $0) })
    if known.count < ShapeInterner.capacity {
      known.append(shape)
    } else {
      known[next] = shape
      next = (next + 1) % ShapeInterner.capacity
    }
    return shape
  }
}
