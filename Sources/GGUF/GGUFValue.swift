/// The value types of GGUF metadata (`enum gguf_type` in gguf.h).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
  case uint8 = 0
  case int8 = 1
  case uint16 = 2
  case int16 = 3
  case uint32 = 4
  case int32 = 5
  case float32 = 6
  case bool = 7
  case string = 8
  case array = 9
  case uint64 = 10
  case int64 = 11
  case float64 = 12

  /// Bytes of one fixed-size element (nil for strings and arrays).
  public var elementByteCount: Int? {
    switch self {
    case .uint8, .int8, .bool: 1
    case .uint16, .int16: 2
    case .uint32, .int32, .float32: 4
    case .uint64, .int64, .float64: 8
    case .string, .array: nil
    }
  }

  /// gguf.cpp's short name (`gguf_type_name`): `u32`, `str`, `arr`, ...
  public var name: String {
    switch self {
    case .uint8: "u8"
    case .int8: "i8"
    case .uint16: "u16"
    case .int16: "i16"
    case .uint32: "u32"
    case .int32: "i32"
    case .float32: "f32"
    case .bool: "bool"
    case .string: "str"
    case .array: "arr"
    case .uint64: "u64"
    case .int64: "i64"
    case .float64: "f64"
    }
  }
}

/// One metadata value. Arrays are homogeneous and never nested (gguf.cpp rejects arrays of arrays).
public enum GGUFValue: Sendable, Equatable {
  case uint8(UInt8)
  case int8(Int8)
  case uint16(UInt16)
  case int16(Int16)
  case uint32(UInt32)
  case int32(Int32)
  case float32(Float)
  case bool(Bool)
  case string(String)
  case uint64(UInt64)
  case int64(Int64)
  case float64(Double)
  case array(GGUFArray)

  /// The type tag written before the value.
  public var type: GGUFValueType {
    switch self {
    case .uint8: .uint8
    case .int8: .int8
    case .uint16: .uint16
    case .int16: .int16
    case .uint32: .uint32
    case .int32: .int32
    case .float32: .float32
    case .bool: .bool
    case .string: .string
    case .uint64: .uint64
    case .int64: .int64
    case .float64: .float64
    case .array: .array
    }
  }

  /// The value as an integer if it is one of the integer types (or a bool), whatever its width.
  public var integerValue: Int64? {
    switch self {
    case .uint8(let v): Int64(v)
    case .int8(let v): Int64(v)
    case .uint16(let v): Int64(v)
    case .int16(let v): Int64(v)
    case .uint32(let v): Int64(v)
    case .int32(let v): Int64(v)
    case .uint64(let v): Int64(exactly: v)
    case .int64(let v): v
    case .bool(let v): v ? 1 : 0
    default: nil
    }
  }

  /// The value as a Double if it is numeric.
  public var doubleValue: Double? {
    switch self {
    case .float32(let v): Double(v)
    case .float64(let v): v
    default: integerValue.map(Double.init)
    }
  }

  public var stringValue: String? {
    if case .string(let text) = self { return text }
    return nil
  }

  public var boolValue: Bool? {
    if case .bool(let flag) = self { return flag }
    return nil
  }

  public var arrayValue: GGUFArray? {
    if case .array(let array) = self { return array }
    return nil
  }
}

/// A homogeneous metadata array.
public enum GGUFArray: Sendable, Equatable {
  case uint8([UInt8])
  case int8([Int8])
  case uint16([UInt16])
  case int16([Int16])
  case uint32([UInt32])
  case int32([Int32])
  case float32([Float])
  case bool([Bool])
  case string([String])
  case uint64([UInt64])
  case int64([Int64])
  case float64([Double])

  public var elementType: GGUFValueType {
    switch self {
    case .uint8: .uint8
    case .int8: .int8
    case .uint16: .uint16
    case .int16: .int16
    case .uint32: .uint32
    case .int32: .int32
    case .float32: .float32
    case .bool: .bool
    case .string: .string
    case .uint64: .uint64
    case .int64: .int64
    case .float64: .float64
    }
  }

  public var count: Int {
    switch self {
    case .uint8(let a): a.count
    case .int8(let a): a.count
    case .uint16(let a): a.count
    case .int16(let a): a.count
    case .uint32(let a): a.count
    case .int32(let a): a.count
    case .float32(let a): a.count
    case .bool(let a): a.count
    case .string(let a): a.count
    case .uint64(let a): a.count
    case .int64(let a): a.count
    case .float64(let a): a.count
    }
  }

  /// Element `index` as a scalar value.
  public func element(_ index: Int) -> GGUFValue {
    switch self {
    case .uint8(let a): .uint8(a[index])
    case .int8(let a): .int8(a[index])
    case .uint16(let a): .uint16(a[index])
    case .int16(let a): .int16(a[index])
    case .uint32(let a): .uint32(a[index])
    case .int32(let a): .int32(a[index])
    case .float32(let a): .float32(a[index])
    case .bool(let a): .bool(a[index])
    case .string(let a): .string(a[index])
    case .uint64(let a): .uint64(a[index])
    case .int64(let a): .int64(a[index])
    case .float64(let a): .float64(a[index])
    }
  }
}

/// One metadata key with its value.
public struct GGUFKeyValue: Sendable, Equatable {
  public var key: String
  public var value: GGUFValue

  public init(_ key: String, _ value: GGUFValue) {
    self.key = key
    self.value = value
  }
}

/// The metadata of a GGUF file: key-value pairs in file order (the order is part of the bytes).
public struct GGUFMetadata: Sendable, Equatable {
  public private(set) var entries: [GGUFKeyValue]

  public init(_ entries: [GGUFKeyValue] = []) { self.entries = entries }

  public subscript(key: String) -> GGUFValue? { entries.first { $0.key == key }?.value }

  /// Sets `key` the way gguf.cpp's `gguf_set_val_*` does: an existing entry is removed and the new one
  /// appended at the end.
  public mutating func set(_ key: String, _ value: GGUFValue) {
    entries.removeAll { $0.key == key }
    entries.append(GGUFKeyValue(key, value))
  }

  /// Sets `key` the way gguf-py's `GGUFWriter` does: an existing entry keeps its position and takes the new
  /// value.
  public mutating func replaceOrAppend(_ key: String, _ value: GGUFValue) {
    if let index = entries.firstIndex(where: { $0.key == key }) {
      entries[index].value = value
    } else {
      entries.append(GGUFKeyValue(key, value))
    }
  }

  /// Appends every pair (replacing in place, as `replaceOrAppend`).
  public mutating func append(contentsOf pairs: [GGUFKeyValue]) {
    for pair in pairs { replaceOrAppend(pair.key, pair.value) }
  }

  /// Removes `key` if present.
  public mutating func remove(_ key: String) { entries.removeAll { $0.key == key } }

  public var keys: [String] { entries.map(\.key) }
  public var count: Int { entries.count }
}
