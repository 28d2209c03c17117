import GGML
import GGUF
import JSON

/// What `smelt inspect X.gguf` reports, from headers only: the files of the set, every metadata key, the
/// tensors, bytes and bits per weight by ggml type.
public struct GGUFSummary: Sendable {
  public struct File: Sendable {
    public var path: String
    public var byteCount: Int
    public var tensorCount: Int
  }

  /// One ggml type's share of the tensors.
  public struct TypeRow: Sendable {
    public var type: GGMLType
    public var tensorCount: Int
    public var elementCount: Int
    public var byteCount: Int
    public var bitsPerWeight: Double { elementCount > 0 ? Double(byteCount) * 8 / Double(elementCount) : 0 }
  }

  public struct TensorRow: Sendable {
    public var name: String
    public var type: GGMLType
    /// ggml order (`ne[0]` first).
    public var dimensions: [Int]
    public var byteCount: Int
    /// Index into `files`.
    public var file: Int
  }

  public var files: [File]
  public var version: UInt32
  public var alignment: Int
  /// The first file's metadata (the model's).
  public var metadata: GGUFMetadata
  public var tensors: [TensorRow]
  /// By type, largest share of bytes first.
  public var types: [TypeRow]

  public init(files: [GGUFFile]) {
    self.files = files.map { File(path: $0.path, byteCount: $0.byteCount, tensorCount: $0.tensors.count) }
    version = files.first?.header.version ?? 3
    alignment = files.first?.header.alignment ?? 32
    metadata = files.first?.metadata ?? GGUFMetadata()
    tensors = files.enumerated().flatMap { index, file in
      file.tensors.map { TensorRow(name: $0.name, type: $0.type, dimensions: $0.dimensions, byteCount: $0.byteCount, file: index) }
    }
    var byType: [GGMLType: TypeRow] = [:]
    for tensor in tensors {
      var row = byType[tensor.type] ?? TypeRow(type: tensor.type, tensorCount: 0, elementCount: 0, byteCount: 0)
      row.tensorCount += 1
      row.elementCount += tensor.dimensions.reduce(1, *)
      row.byteCount += tensor.byteCount
      byType[tensor.type] = row
    }
    types = byType.values.sorted { ($0.byteCount, $1.type.rawValue) > ($1.byteCount, $0.type.rawValue) }
  }

  public var elementCount: Int { types.reduce(0) { $0 + $1.elementCount } }
  public var dataByteCount: Int { types.reduce(0) { $0 + $1.byteCount } }
  /// Tensor bytes × 8 / elements over the whole model.
  public var bitsPerWeight: Double { elementCount > 0 ? Double(dataByteCount) * 8 / Double(elementCount) : 0 }
  public var architecture: String? { metadata["general.architecture"]?.stringValue }
  /// `general.file_type` as llama.cpp's preset, when it is one Smelt knows.
  public var fileType: LlamaFileType? {
    metadata["general.file_type"]?.integerValue.flatMap { UInt32(exactly: $0) }.flatMap(LlamaFileType.init(rawValue:))
  }

  /// A metadata value in one line: scalars as written, strings quoted and cut at `limit` characters, arrays
  /// as their element type, count and first few elements.
  public static func describe(_ value: GGUFValue, limit: Int = 60) -> String {
    func quoted(_ text: String) -> String {
      let escaped = text.unicodeScalars.map { $0 == "\n" ? "\\n" : $0 == "\"" ? "\\\"" : String($0) }.joined()
      return escaped.count > limit ? "\"\(escaped.prefix(limit))…\" (\(text.utf8.count) bytes)" : "\"\(escaped)\""
    }
    switch value {
    case .string(let text): return quoted(text)
    case .bool(let flag): return flag ? "true" : "false"
    case .float32(let v): return "\(v)"
    case .float64(let v): return "\(v)"
    case .array(let array):
      let head = (0..<min(3, array.count)).map { describe(array.element($0), limit: 20) }
      return "[\(array.elementType.name) × \(array.count)]" + (head.isEmpty ? "" : " " + head.joined(separator: ", ") + (array.count > 3 ? ", …" : ""))
    default: return value.integerValue.map { "\($0)" } ?? "?"
    }
  }

  /// The JSON report (`inspect --json` on a GGUF); `tensors` adds the tensor list.
  public func json(tensors listTensors: Bool) -> JSONValue {
    func value(_ v: GGUFValue) -> JSONValue {
      switch v {
      case .string(let text): return .string(text)
      case .bool(let flag): return .bool(flag)
      case .float32(let f): return JSONNumber(Double(f)).map { .number($0) } ?? .string("\(f)")
      case .float64(let f): return JSONNumber(f).map { .number($0) } ?? .string("\(f)")
      case .array(let array):
        let head = (0..<min(8, array.count)).map { value(array.element($0)) }
        return ["type": .string(array.elementType.name), "count": .number(JSONNumber(array.count)), "head": .array(head)]
      default: return v.integerValue.map { .number(JSONNumber(Int($0))) } ?? .null
      }
    }
    var object = JSONObject()
    object["schema"] = .string(DocumentSchema.inspectGGUF)
    object["format"] = "gguf"
    object["version"] = .number(JSONNumber(Int(version)))
    object["files"] = .array(files.map { ["path": .string($0.path), "bytes": .number(JSONNumber($0.byteCount)), "tensors": .number(JSONNumber($0.tensorCount))] })
    object["architecture"] = architecture.map { .string($0) } ?? .null
    object["file_type"] = fileType.map { .string($0.name) } ?? .null
    object["tensor_count"] = .number(JSONNumber(tensors.count))
    object["parameter_count"] = .number(JSONNumber(elementCount))
    object["tensor_bytes"] = .number(JSONNumber(dataByteCount))
    object["bits_per_weight"] = JSONNumber((bitsPerWeight * 1000).rounded() / 1000).map { .number($0) } ?? .null
    object["metadata"] = .array(metadata.entries.map { ["key": .string($0.key), "type": .string($0.value.type.name), "value": value($0.value)] })
    object["types"] = .array(types.map { row in
      [
        "type": .string(row.type.name), "tensors": .number(JSONNumber(row.tensorCount)), "elements": .number(JSONNumber(row.elementCount)),
        "bytes": .number(JSONNumber(row.byteCount)),
        "bits_per_weight": JSONNumber((row.bitsPerWeight * 1000).rounded() / 1000).map { .number($0) } ?? .null,
      ]
    })
    if listTensors {
      object["tensors"] = .array(tensors.map { t in
        [
          "name": .string(t.name), "type": .string(t.type.name), "ne": .array(t.dimensions.map { .number(JSONNumber($0)) }),
          "bytes": .number(JSONNumber(t.byteCount)), "file": .number(JSONNumber(t.file)),
        ]
      })
    }
    return .object(object)
  }
}
