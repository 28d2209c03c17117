import GGML

/// A GGUF file (or a plan for one) that breaks the format: what is wrong, where (file, byte offset, key or
/// tensor), and what the limit is. Messages follow gguf.cpp's checks, so a file Smelt accepts loads in
/// llama.cpp and a file it rejects would be rejected there too (or is out of bounds, which llama.cpp only
/// finds when it reads the tensor).
public struct GGUFError: Error, Sendable, Equatable, CustomStringConvertible {
  public enum Kind: Sendable, Equatable {
    /// The file ends inside `what`.
    case truncated(what: String, needed: Int, available: Int)
    case badMagic([UInt8])
    case unsupportedVersion(UInt32)
    /// A count in the header cannot fit in the rest of the file.
    case countTooLarge(what: String, count: UInt64, limit: Int)
    case emptyKey(index: Int)
    case duplicateKey(String)
    case invalidValueType(key: String, type: UInt32)
    case nestedArray(key: String)
    case stringTooLong(length: UInt64, limit: Int)
    case invalidUTF8(what: String)
    case arrayTooLong(key: String, count: UInt64, limit: Int)
    /// `general.alignment` must be a u32 power of two.
    case badAlignment(String)
    case tensorNameTooLong(name: String, length: Int)
    case duplicateTensor(String)
    case tooManyDimensions(tensor: String, count: UInt32)
    case negativeDimension(tensor: String, index: Int, value: Int64)
    case sizeOverflow(tensor: String)
    case unknownTensorType(tensor: String, type: UInt32)
    /// A type Smelt knows by id but ggml no longer sizes (removed repacked formats).
    case unsizedTensorType(tensor: String, type: UInt32)
    case rowNotBlockMultiple(tensor: String, type: GGMLType, rowLength: Int)
    /// Tensors must lie back to back in info order, each padded to the alignment.
    case misplacedTensor(tensor: String, offset: UInt64, expected: Int)
    case dataOutOfBounds(tensor: String, end: Int, fileSize: Int)
    /// A tensor plan that cannot be written (no dimensions, a dimension of zero where not allowed, ...).
    case invalidTensor(tensor: String, reason: String)
    case missingKey(String)
    case wrongKeyType(key: String, expected: String, found: GGUFValueType)
    case missingTensor(String)
    /// A write outside the tensor's bytes.
    case writeOutOfRange(tensor: String, offset: Int, count: Int, byteCount: Int)
    /// A split set that is inconsistent (`split.no`, `split.count`, file names).
    case badSplit(String)
  }

  public var kind: Kind
  /// Absolute byte offset in the file where the problem was found, when it is about the file's bytes.
  public var offset: Int?
  public var path: String?

  public init(_ kind: Kind, offset: Int? = nil, path: String? = nil) {
    self.kind = kind
    self.offset = offset
    self.path = path
  }

  public var description: String {
    var text = "invalid GGUF"
    if let path { text += " '\(path)'" }
    if let offset { text += " at byte \(offset)" }
    return text + ": " + reason
  }

  public var reason: String {
    switch kind {
    case .truncated(let what, let needed, let available):
      return "the file ends inside \(what) (needs \(needed) bytes, \(available) left); the file is truncated or not GGUF"
    case .badMagic(let bytes):
      let shown = bytes.map { (32...126).contains($0) ? String(UnicodeScalar($0)) : "?" }.joined()
      return "magic is '\(shown)', expected 'GGUF'"
    case .unsupportedVersion(let version):
      if version & 0xFFFF == 0 {
        return "version \(version) is extremely large: a big-endian file? Smelt reads little-endian GGUF only"
      }
      return version == 1 ? "GGUF v1 is no longer supported (re-convert the model)" : "version \(version) is not supported (2 and 3 are)"
    case .countTooLarge(let what, let count, let limit):
      return "\(count) \(what) cannot fit in the rest of the file (at most \(limit))"
    case .emptyKey(let index):
      return "key \(index) is empty"
    case .duplicateKey(let key):
      return "duplicate key '\(key)'"
    case .invalidValueType(let key, let type):
      return "key '\(key)' has invalid value type \(type) (valid: 0...12)"
    case .nestedArray(let key):
      return "key '\(key)' is an array of arrays, which GGUF does not allow"
    case .stringTooLong(let length, let limit):
      return "string of \(length) bytes exceeds the limit of \(limit)"
    case .invalidUTF8(let what):
      return "\(what) is not valid UTF-8"
    case .arrayTooLong(let key, let count, let limit):
      return "array '\(key)' has \(count) elements, more than the \(limit) the file can hold"
    case .badAlignment(let detail):
      return "general.alignment \(detail)"
    case .tensorNameTooLong(let name, let length):
      return "tensor name '\(name.prefix(80))' is \(length) bytes; ggml allows at most \(GGUFTensorInfo.maximumNameLength)"
    case .duplicateTensor(let name):
      return "duplicate tensor name '\(name)'"
    case .tooManyDimensions(let tensor, let count):
      return "tensor '\(tensor)' has \(count) dimensions; ggml allows at most \(GGUFTensorInfo.maximumDimensions)"
    case .negativeDimension(let tensor, let index, let value):
      return "tensor '\(tensor)' dimension \(index) is \(value)"
    case .sizeOverflow(let tensor):
      return "tensor '\(tensor)' has a shape whose element or byte count overflows 64 bits"
    case .unknownTensorType(let tensor, let type):
      return "tensor '\(tensor)' has unknown ggml type \(type)"
    case .unsizedTensorType(let tensor, let type):
      return "tensor '\(tensor)' has ggml type \(type), a removed repacked format (repack it as Q4_0 / IQ4_NL)"
    case .rowNotBlockMultiple(let tensor, let type, let rowLength):
      return "tensor '\(tensor)' of type \(type) has \(rowLength) elements per row, not a multiple of its block size \(type.blockSize)"
    case .misplacedTensor(let tensor, let offset, let expected):
      return "tensor '\(tensor)' has data offset \(offset), expected \(expected) (tensors must be back to back, each padded to the alignment)"
    case .dataOutOfBounds(let tensor, let end, let fileSize):
      return "tensor '\(tensor)' data ends at byte \(end), beyond the file's \(fileSize) bytes"
    case .invalidTensor(let tensor, let reason):
      return "tensor '\(tensor)': \(reason)"
    case .missingKey(let key):
      return "required key '\(key)' is missing"
    case .wrongKeyType(let key, let expected, let found):
      return "key '\(key)' is \(found.name), expected \(expected)"
    case .missingTensor(let name):
      return "no tensor named '\(name)'"
    case .writeOutOfRange(let tensor, let offset, let count, let byteCount):
      return "write of \(count) bytes at \(offset) is outside tensor '\(tensor)' (\(byteCount) bytes)"
    case .badSplit(let detail):
      return "split set: \(detail)"
    }
  }
}
