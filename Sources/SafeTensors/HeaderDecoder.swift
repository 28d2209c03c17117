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
        if scanner.consume(literal: "\"__metadata__\"") {
          if sawMetadata { throw Unhandled() }
          sawMetadata = true
          try separator()
          try decodeMetadata()
        } else {
          guard scanner.current == UInt8(ascii: "\"") else { throw Unhandled() }
          let key = try scanner.readStringToken()
          // An escaped name might spell `__metadata__`: the strict path tells.
          guard !key.hasEscapes else { throw Unhandled() }
          let name = scanner.string(of: key)
          let nameBytes = UnsafeRawBufferPointer(rebasing: scanner.bytes[key.contentRange])
          try separator()
          try decodeEntry(name: name, bytes: nameBytes)
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
  mutating func decodeEntry(name: String, bytes nameBytes: UnsafeRawBufferPointer) throws {
    var dtype: DType?
    var shape: InternedShape?
    var offsets: (UInt64, UInt64)?
    if let compact = try decodeCompactEntry() {
      (dtype, shape, offsets) = (compact.dtype, compact.shape, (compact.begin, compact.end))
    } else {
      try decodeSpacedEntry(&dtype, &shape, &offsets)
    }
    guard let dtype, let shape, let offsets else { throw Unhandled() }
    let position = entries.count
    entries.append(
      RawEntry(
        name: name, dtype: dtype, shape: shape.dimensions, intShape: shape.intDimensions, begin: offsets.0,
        end: offsets.1, order: position))
    if names.insert(utf8: nameBytes, position: position, nameAt: { entries[$0].name }) != nil { throw Unhandled() }
  }

  /// The entry exactly as the official writers lay it out, `{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}`
  /// (no whitespace, fields in that order), matched literal by literal; `nil` (nothing consumed) for any
  /// other spelling, which `decodeSpacedEntry` reads.
  mutating func decodeCompactEntry() throws -> (dtype: DType, shape: InternedShape, begin: UInt64, end: UInt64)? {
    let start = scanner.position
    guard scanner.consume(literal: "{\"dtype\":") else { return nil }
    let dtype = try decodeDType()
    guard scanner.consume(literal: ",\"shape\":[") else {
      scanner.position = start
      return nil
    }
    dimensions.removeAll(keepingCapacity: true)
    var fingerprint: UInt64 = 0
    if !scanner.consume(UInt8(ascii: "]")) {
      while true {
        let dimension = try unsignedInteger()
        dimensions.append(dimension)
        fingerprint = (fingerprint ^ dimension) &* 0x9E37_79B9_7F4A_7C15 &+ 1
        if scanner.consume(UInt8(ascii: ",")) { continue }
        guard scanner.consume(UInt8(ascii: "]")) else {
          scanner.position = start
          return nil
        }
        break
      }
    }
    guard scanner.consume(literal: ",\"data_offsets\":[") else {
      scanner.position = start
      return nil
    }
    let begin = try unsignedInteger()
    guard scanner.consume(UInt8(ascii: ",")) else {
      scanner.position = start
      return nil
    }
    let end = try unsignedInteger()
    guard scanner.consume(UInt8(ascii: "]")), scanner.consume(UInt8(ascii: "}")) else {
      scanner.position = start
      return nil
    }
    return (dtype, shapes.intern(dimensions, fingerprint: fingerprint), begin, end)
  }

  /// The fields in any order with any whitespace.
  mutating func decodeSpacedEntry(_ dtype: inout DType?, _ shape: inout InternedShape?, _ offsets: inout (UInt64, UInt64)?)
    throws
  {
    try expect(UInt8(ascii: "{"))
    scanner.skipWhitespace()
    while true {
      // The three keys as written (any other key, or one spelled with escapes, is for the strict path).
      if dtype == nil, scanner.consume(literal: "\"dtype\"") {
        try separator()
        dtype = try decodeDType()
      } else if shape == nil, scanner.consume(literal: "\"shape\"") {
        try separator()
        shape = try decodeShape()
      } else if offsets == nil, scanner.consume(literal: "\"data_offsets\"") {
        try separator()
        offsets = try decodeOffsets()
      } else {
        throw Unhandled()
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

  mutating func decodeDType() throws -> DType {
    guard scanner.current == UInt8(ascii: "\"") else { throw Unhandled() }
    let token = try scanner.readStringToken()
    guard !token.hasEscapes else { throw Unhandled() }
    let bytes = UnsafeRawBufferPointer(rebasing: scanner.bytes[token.contentRange])
    // Neighbouring tensors mostly share a dtype.
    if let lastDType, lastDType.name.withUnsafeBytes({ NameIndex.bytesEqual($0, bytes) }) { return lastDType.dtype }
    guard let dtype = DType(safetensorsName: String(decoding: bytes, as: UTF8.self)) else { throw Unhandled() }
    lastDType = (Array(bytes), dtype)
    return dtype
  }

  /// `[d0, d1, ...]` of non-negative integers below 2^64.
  mutating func decodeShape() throws -> InternedShape {
    try expect(UInt8(ascii: "["))
    dimensions.removeAll(keepingCapacity: true)
    var fingerprint: UInt64 = 0
    scanner.skipWhitespace()
    if !scanner.consume(UInt8(ascii: "]")) {
      while true {
        let dimension = try unsignedInteger()
        dimensions.append(dimension)
        fingerprint = (fingerprint ^ dimension) &* 0x9E37_79B9_7F4A_7C15 &+ 1
        scanner.skipWhitespace()
        if scanner.consume(UInt8(ascii: ",")) {
          scanner.skipWhitespace()
          continue
        }
        try expect(UInt8(ascii: "]"))
        break
      }
    }
    return shapes.intern(dimensions, fingerprint: fingerprint)
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

  @inline(__always) mutating func unsignedInteger() throws -> UInt64 {
    if let value = scanner.readPlainUnsignedInteger() { return value }
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
  /// A fingerprint of each known shape (compared first), parallel to `known`.
  private var fingerprints: [UInt64] = []
  private var known: [InternedShape] = []
  private var next = 0
  static let capacity = 32

  /// The shared arrays for `dimensions`, whose fingerprint (any function of the dimensions that is equal
  /// for equal shapes) is `fingerprint`.
  mutating func intern(_ dimensions: [UInt64], fingerprint: UInt64) -> InternedShape {
    for k in fingerprints.indices where fingerprints[k] == fingerprint && known[k].dimensions == dimensions {
      return known[k]
    }
    // A copy, so that the caller's buffer stays uniquely referenced (and reusable).
    let shape = ShapeInterner.make(Array(dimensions))
    if known.count < ShapeInterner.capacity {
      known.append(shape)
      fingerprints.append(fingerprint)
    } else {
      known[next] = shape
      fingerprints[next] = fingerprint
      next = (next + 1) % ShapeInterner.capacity
    }
    return shape
  }

  /// The two forms of `dimensions`. Dimensions above Int.max are refused later (rule 8); their Int form is
  /// never read.
  static func make(_ dimensions: [UInt64]) -> InternedShape {
    InternedShape(dimensions: dimensions, intDimensions: dimensions.map { Int(truncatingIfNeeded: $0) })
  }
}
