import GGML
import GGUF
import SystemIO

/// An importance matrix as llama-quantize loads it (`common_imatrix_load` + `load_imatrix` in
/// tools/quantize): per weight tensor, the mean squared activation of each input column, per expert for
/// 3-D tensors. Reads llama-imatrix's GGUF format (`<tensor>.in_sum2` and `<tensor>.counts`, F32, with
/// `imatrix.datasets` / `imatrix.chunk_count` / `imatrix.chunk_size`) and the legacy binary `.dat` format.
public struct ImportanceMatrix: Sendable {
  /// `name → values`, `ne[0]·experts` per tensor: `in_sum2 / count` per expert (1 where the count is 0), or
  /// the legacy `sums / ncall`.
  public let entries: [String: [Float]]
  public let datasets: [String]
  public let chunkCount: Int
  public let chunkSize: Int
  public let isLegacy: Bool

  public enum Failure: Error, Equatable, CustomStringConvertible {
    case empty(String)
    case missingMetadata(String)
    case unpairedEntry(String)
    case notF32(String)
    case truncated(String)
    case malformed(String)
    case nonFinite(tensor: String)
    case sizeMismatch(tensor: String, expected: Int, actual: Int)

    public var description: String {
      switch self {
      case .empty(let path): "the importance matrix '\(path)' has no entries"
      case .missingMetadata(let path):
        "the importance matrix '\(path)' lacks imatrix.datasets / imatrix.chunk_count / imatrix.chunk_size (llama-quantize refuses it too)"
      case .unpairedEntry(let name): "importance matrix entry '\(name)' has sums without counts or counts without sums"
      case .notF32(let name): "importance matrix tensors for '\(name)' must be F32"
      case .truncated(let path): "the legacy importance matrix '\(path)' ends early"
      case .malformed(let detail): "malformed importance matrix: \(detail)"
      case .nonFinite(let tensor): "the importance matrix holds a non-finite value for '\(tensor)'"
      case .sizeMismatch(let tensor, let expected, let actual):
        "the importance matrix has \(actual) values for '\(tensor)', which needs \(expected) (ne[0] × experts): made for another model?"
      }
    }
  }

  /// Reads `path` (GGUF, else the legacy format, as llama.cpp tries them).
  public init(path: String) throws {
    let bytes = try FileSystem.readFile(path, limit: 1 << 34)
    let parsed: Result<GGUFHeader, GGUFError> = bytes.withUnsafeBytes { buffer in
      Result { () throws(GGUFError) in try GGUFParser.parse(buffer, path: path) }
    }
    switch parsed {
    case .success(let header): try self.init(gguf: header, bytes: bytes, path: path)
    case .failure(let error):
      guard bytes.count >= 4, Array(bytes[0..<4]) != Array("GGUF".utf8) else { throw error }
      try self.init(legacy: bytes, path: path)
    }
  }

  init(gguf header: GGUFHeader, bytes: [UInt8], path: String) throws(Failure) {
    guard !header.tensors.isEmpty else { throw .empty(path) }
    let m = header.metadata
    guard m["imatrix.datasets"] != nil, m["imatrix.chunk_count"] != nil, m["imatrix.chunk_size"] != nil else {
      throw .missingMetadata(path)
    }
    if case .array(.string(let names)) = m["imatrix.datasets"] { datasets = names } else { datasets = [] }
    chunkCount = Int(m["imatrix.chunk_count"]?.integerValue ?? 0)
    chunkSize = Int(m["imatrix.chunk_size"]?.integerValue ?? 0)
    isLegacy = false
    var sums: [String: GGUFTensorInfo] = [:]
    var counts: [String: GGUFTensorInfo] = [:]
    for tensor in header.tensors {
      if tensor.name.hasSuffix(".in_sum2") {
        sums[String(tensor.name.dropLast(8))] = tensor
      } else if tensor.name.hasSuffix(".counts") {
        counts[String(tensor.name.dropLast(7))] = tensor
      }
    }
    func floats(_ tensor: GGUFTensorInfo) -> [Float] {
      let start = header.dataOffset + tensor.offset
      return (0..<tensor.elementCount).map { i in
        Float(bitPattern: UInt32(bytes[start + 4 * i]) | UInt32(bytes[start + 4 * i + 1]) << 8
          | UInt32(bytes[start + 4 * i + 2]) << 16 | UInt32(bytes[start + 4 * i + 3]) << 24)
      }
    }
    var entries: [String: [Float]] = [:]
    for name in Set(sums.keys).union(counts.keys) {
      guard let sum = sums[name], let count = counts[name] else { throw .unpairedEntry(name) }
      guard sum.type == .f32, count.type == .f32 else { throw .notF32(name) }
      let values = floats(sum)
      // std::lround of the stored float count, then back to float for the division.
      let n = floats(count).map { Float(Int64(($0 as Float).rounded(.toNearestOrAwayFromZero))) }
      guard !n.isEmpty, values.count % n.count == 0 else {
        throw .malformed("'\(name)' has \(values.count) sums for \(n.count) counts")
      }
      let rowLength = values.count / n.count
      var normalized = [Float](repeating: 1, count: values.count)
      for expert in 0..<n.count where n[expert] > 0 {
        for i in 0..<rowLength { normalized[expert * rowLength + i] = values[expert * rowLength + i] / n[expert] }
      }
      guard normalized.allSatisfy(\.isFinite) else { throw .nonFinite(tensor: name) }
      entries[name] = normalized
    }
    self.entries = entries
  }

  init(legacy bytes: [UInt8], path: String) throws(Failure) {
    var position = 0
    func int32() throws(Failure) -> Int32 {
      guard position + 4 <= bytes.count else { throw .truncated(path) }
      defer { position += 4 }
      return Int32(bitPattern: UInt32(bytes[position]) | UInt32(bytes[position + 1]) << 8 | UInt32(bytes[position + 2]) << 16 | UInt32(bytes[position + 3]) << 24)
    }
    let count = try int32()
    guard count >= 1 else { throw .empty(path) }
    var entries: [String: [Float]] = [:]
    for _ in 0..<count {
      let length = Int(try int32())
      guard length >= 0, position + length <= bytes.count else { throw .truncated(path) }
      let name = String(decoding: bytes[position..<position + length], as: UTF8.self)
      position += length
      let calls = try int32()
      let valueCount = Int(try int32())
      guard valueCount >= 1, valueCount <= (bytes.count - position) / 4 else { throw .truncated(path) }
      var values = [Float](repeating: 0, count: valueCount)
      for i in 0..<valueCount { values[i] = Float(bitPattern: UInt32(bitPattern: try int32())) }
      if calls > 0 { values = values.map { $0 / Float(calls) } }
      guard values.allSatisfy(\.isFinite) else { throw .nonFinite(tensor: name) }
      entries[name] = values
    }
    var datasets: [String] = []
    var chunks = 0
    if position + 4 <= bytes.count {
      chunks = Int(try int32())
      if position + 4 <= bytes.count {
        let length = Int(try int32())
        if length > 0, position + length <= bytes.count {
          datasets = [String(decoding: bytes[position..<position + length], as: UTF8.self)]
        }
      }
    }
    self.entries = entries
    self.datasets = datasets
    self.chunkCount = chunks
    self.chunkSize = 0
    self.isLegacy = true
  }

  /// The importance vectors for one weight: one per expert (a 2-D weight has one), each `rowLength` long;
  /// nil when the matrix has no entry for `tensor` (llama-quantize then quantizes it without one).
  /// - Throws: `.sizeMismatch` when the entry is not `rowLength · experts` values, as llama-quantize does
  ///   (except for the token embedding, which it quietly quantizes without).
  public func vectors(for tensor: String, rowLength: Int, experts: Int) throws(Failure) -> [[Float]]? {
    guard let values = entries[tensor] else { return nil }
    guard values.count == rowLength * experts else {
      if tensor == "token_embd.weight" || tensor == "per_layer_token_embd.weight" { return nil }
      throw .sizeMismatch(tensor: tensor, expected: rowLength * experts, actual: values.count)
    }
    return (0..<experts).map { Array(values[($0 * rowLength)..<(($0 + 1) * rowLength)]) }
  }

  /// The `quantize.imatrix.*` keys llama-quantize adds to its output (file name and dataset cut to 127
  /// bytes, as its `strncpy` does).
  public func metadata(filePath: String) -> [GGUFKeyValue] {
    func clipped(_ text: String) -> String {
      var bytes = Array(text.utf8.prefix(127))
      while String(validating: bytes, as: UTF8.self) == nil { bytes.removeLast() }
      return String(decoding: bytes, as: UTF8.self)
    }
    var pairs = [GGUFKeyValue("quantize.imatrix.file", .string(clipped(filePath)))]
    if let first = datasets.first { pairs.append(GGUFKeyValue("quantize.imatrix.dataset", .string(clipped(first)))) }
    pairs.append(GGUFKeyValue("quantize.imatrix.entries_count", .uint32(UInt32(entries.count))))
    if chunkCount > 0 { pairs.append(GGUFKeyValue("quantize.imatrix.chunks_count", .uint32(UInt32(chunkCount)))) }
    return pairs
  }
}
