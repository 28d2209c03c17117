import GGML
import TensorCore
import Testing

@testable import GGUF

/// Hand-built headers that break one rule each, and mutations of gguf.cpp's golden file: the parser answers
/// with the precise error (and byte offset), never a crash or a huge allocation.
@Suite("GGUF malformed input")
struct GGUFMalformedTests {
  /// Raw little-endian header fields, for writing what the planner would refuse.
  struct Raw {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) {
      u64(UInt64(s.utf8.count))
      bytes += Array(s.utf8)
    }
    mutating func header(tensors: UInt64, kvs: UInt64, version: UInt32 = 3) {
      bytes += Array("GGUF".utf8)
      u32(version)
      u64(tensors)
      u64(kvs)
    }
    mutating func tensor(_ name: String, _ dims: [Int64], type: UInt32, offset: UInt64) {
      string(name)
      u32(UInt32(dims.count))
      for d in dims { u64(UInt64(bitPattern: d)) }
      u32(type)
      u64(offset)
    }
    mutating func pad(_ extra: Int) { bytes += [UInt8](repeating: 0, count: extra) }
  }

  static func kind(_ bytes: [UInt8]) -> GGUFError.Kind? { error(bytes)?.kind }

  static func error(_ bytes: [UInt8]) -> GGUFError? {
    if case .failure(let error) = GGUFContainerTests.parseResult(bytes) { return error }
    return nil
  }

  @Test("header fields")
  func headerFields() {
    #expect(Self.kind(Array("GGUX".utf8) + [3, 0, 0, 0]) == .badMagic(Array("GGUX".utf8)))
    #expect(Self.kind(Array("GG".utf8)) == .truncated(what: "the magic", needed: 4, available: 2))
    var v1 = Raw()
    v1.header(tensors: 0, kvs: 0, version: 1)
    #expect(Self.kind(v1.bytes) == .unsupportedVersion(1))
    var bigEndian = Raw()
    bigEndian.header(tensors: 0, kvs: 0, version: 0x0300_0000)
    #expect(Self.error(bigEndian.bytes)?.reason.contains("big-endian") == true)
    var v2 = Raw()
    v2.header(tensors: 0, kvs: 0, version: 2)
    #expect(Self.kind(v2.bytes) == nil, "version 2 has the same layout and is accepted as gguf.cpp does")
    var hugeCount = Raw()
    hugeCount.header(tensors: 0, kvs: 1 << 60)
    #expect(Self.kind(hugeCount.bytes) == .countTooLarge(what: "key-value pairs", count: 1 << 60, limit: 0))
    var hugeTensors = Raw()
    hugeTensors.header(tensors: UInt64.max, kvs: 0)
    hugeTensors.pad(100)
    #expect(Self.kind(hugeTensors.bytes) == .countTooLarge(what: "tensor infos", count: UInt64.max, limit: 4))
  }

  @Test("key-value pairs")
  func keyValues() {
    func kv(_ body: (inout Raw) -> Void, count: UInt64 = 1) -> GGUFError.Kind? {
      var raw = Raw()
      raw.header(tensors: 0, kvs: count)
      body(&raw)
      raw.pad(64)
      return Self.kind(raw.bytes)
    }
    #expect(kv { $0.string(""); $0.u32(4); $0.u32(1) } == .emptyKey(index: 0))
    #expect(kv({ r in for _ in 0..<2 { r.string("k"); r.u32(4); r.u32(1) } }, count: 2) == .duplicateKey("k"))
    #expect(kv { $0.string("k"); $0.u32(13) } == .invalidValueType(key: "k", type: 13))
    #expect(kv { $0.string("k"); $0.u32(9); $0.u32(9); $0.u64(1) } == .nestedArray(key: "k"))
    #expect(kv { $0.string("k"); $0.u32(9); $0.u32(4); $0.u64(1 << 40) } == .arrayTooLong(key: "k", count: 1 << 40, limit: 16))
    #expect(kv { $0.string("k"); $0.u32(9); $0.u32(8); $0.u64(100) } == .arrayTooLong(key: "k", count: 100, limit: 8))
    #expect(kv { $0.string("k"); $0.u32(8); $0.u64(1 << 31) } == .stringTooLong(length: 1 << 31, limit: 1 << 30))
    #expect(kv { $0.u64(5); $0.bytes += [0x66, 0xFF, 0xFE, 0x67, 0x68]; $0.u32(4); $0.u32(1) } == .invalidUTF8(what: "key 0"))
    #expect(kv { $0.string("general.alignment"); $0.u32(5); $0.u32(32) } == .badAlignment("must be u32, is i32"))
    #expect(kv { $0.string("general.alignment"); $0.u32(4); $0.u32(0) } == .badAlignment("0 is not a power of 2"))
    let truncated = kv { $0.string("k"); $0.u32(8); $0.u64(1000) }
    #expect(truncated == .truncated(what: "the value of 'k'", needed: 1000, available: 64))
  }

  @Test("tensor infos")
  func tensorInfos() {
    func tensors(_ body: (inout Raw) -> Void, count: UInt64 = 1, data: Int = 4096) -> GGUFError.Kind? {
      var raw = Raw()
      raw.header(tensors: count, kvs: 0)
      body(&raw)
      raw.pad(data)
      return Self.kind(raw.bytes)
    }
    let long = String(repeating: "x", count: 64)
    #expect(tensors { $0.tensor(long, [4], type: 0, offset: 0) } == .tensorNameTooLong(name: long, length: 64))
    #expect(tensors({ r in r.tensor("a", [4], type: 0, offset: 0); r.tensor("a", [4], type: 0, offset: 32) }, count: 2) == .duplicateTensor("a"))
    #expect(tensors { $0.tensor("a", [1, 1, 1, 1, 1], type: 0, offset: 0) } == .tooManyDimensions(tensor: "a", count: 5))
    #expect(tensors { $0.tensor("a", [4, -1], type: 0, offset: 0) } == .negativeDimension(tensor: "a", index: 1, value: -1))
    #expect(tensors { $0.tensor("a", [1 << 40, 1 << 40], type: 0, offset: 0) } == .sizeOverflow(tensor: "a"))
    #expect(tensors { $0.tensor("a", [4], type: 43, offset: 0) } == .unknownTensorType(tensor: "a", type: 43))
    #expect(tensors { $0.tensor("a", [32], type: 31, offset: 0) } == .unsizedTensorType(tensor: "a", type: 31))
    #expect(tensors { $0.tensor("a", [128, 4], type: 12, offset: 0) } == .rowNotBlockMultiple(tensor: "a", type: .q4_K, rowLength: 128))
    #expect(tensors { $0.tensor("a", [4], type: 0, offset: 32) } == .misplacedTensor(tensor: "a", offset: 32, expected: 0))
    #expect(
      tensors({ r in r.tensor("a", [4], type: 0, offset: 0); r.tensor("b", [4], type: 0, offset: 16) }, count: 2)
        == .misplacedTensor(tensor: "b", offset: 16, expected: 32), "the previous tensor is padded to 32")
    let bounds = tensors({ $0.tensor("a", [1024], type: 0, offset: 0) }, data: 100)
    guard case .dataOutOfBounds(tensor: "a", end: _, fileSize: _) = bounds else {
      Issue.record("expected dataOutOfBounds, got \(String(describing: bounds))")
      return
    }
  }

  @Test("every truncation of gguf.cpp's file is a precise error, except of the last tensor's padding")
  func truncations() throws {
    let bytes = try GGUFContainerTests.golden()
    let header = try GGUFContainerTests.parse(bytes)
    let last = header.tensors[header.tensors.count - 1]
    // llama.cpp checks each tensor's unpadded extent, so a file missing only the final padding still loads.
    let dataEnd = header.dataOffset + last.offset + last.byteCount
    for length in 0..<bytes.count {
      guard let error = Self.error(Array(bytes[0..<length])) else {
        if length < dataEnd { Issue.record("a \(length)-byte prefix parsed") }
        continue
      }
      if length >= dataEnd { Issue.record("a \(length)-byte prefix (all data present) failed: \(error)") }
      switch error.kind {
      case .truncated, .dataOutOfBounds, .countTooLarge, .arrayTooLong: break
      default: Issue.record("prefix \(length): unexpected \(error)")
      }
    }
  }

  @Test("random byte mutations never crash")
  func mutations() throws {
    let original = try GGUFContainerTests.golden()
    var random = SplitMix64(seed: 11)
    var rejected = 0
    for _ in 0..<3000 {
      var bytes = original
      for _ in 0...(random.next() % 3) {
        let position = Int(random.next() % UInt64(bytes.count))
        bytes[position] = UInt8(truncatingIfNeeded: random.next())
      }
      if Self.kind(bytes) != nil { rejected += 1 }
    }
    #expect(rejected > 0)
  }
}
