import GGML
import SystemIO
import TestSupport
import Testing

@testable import GGUF

/// The reader and writer against a file written by gguf.cpp itself (Tests/GGMLTests/Golden/golden.gguf,
/// made by scripts/make-golden-ggml).
@Suite("GGUF container")
struct GGUFContainerTests {
  static let goldenPath = TestPaths.repositoryRoot + "/Tests/GGMLTests/Golden/golden.gguf"

  static func golden() throws -> [UInt8] { try FileSystem.readFile(goldenPath) }

  static func parse(_ bytes: [UInt8]) throws(GGUFError) -> GGUFHeader { try parseResult(bytes).get() }

  static func parseResult(_ bytes: [UInt8]) -> Result<GGUFHeader, GGUFError> {
    bytes.withUnsafeBytes { buffer in Result { () throws(GGUFError) in try GGUFParser.parse(buffer) } }
  }

  @Test("reads every value type, array and tensor gguf.cpp wrote")
  func readsGoldenFile() throws {
    let file = try GGUFFile(path: Self.goldenPath)
    let m = file.metadata
    #expect(file.header.version == 3)
    #expect(m.keys.first == "general.architecture" && m.keys.last == "general.alignment")
    #expect(m["general.architecture"] == .string("smelt-golden"))
    #expect(m["test.u8"] == .uint8(200))
    #expect(m["test.i8"] == .int8(-100))
    #expect(m["test.u16"] == .uint16(65000))
    #expect(m["test.i16"] == .int16(-32000))
    #expect(m["test.u32"] == .uint32(4_000_000_000))
    #expect(m["test.i32"] == .int32(-2_000_000_000))
    #expect(m["test.f32"] == .float32(0.1))
    #expect(m["test.u64"] == .uint64(18_000_000_000_000_000_000))
    #expect(m["test.i64"] == .int64(-9_000_000_000_000_000_000))
    #expect(m["test.f64"] == .float64(-2.5e-300))
    #expect(m["test.bool"] == .bool(true))
    #expect(m["test.string"] == .string("héllo\n\"world\""))
    #expect(m["test.empty_string"] == .string(""))
    #expect(m["test.array.i32"] == .array(.int32([1, -2, 3, -4, 5])))
    #expect(m["test.array.f32"] == .array(.float32([1.5, -0.0, 1e-45])))
    #expect(m["test.array.bool"] == .array(.bool([true, false, true, true])))
    #expect(m["test.array.string"] == .array(.string(["a", "", "<|end|>"])))
    #expect(m["test.array.empty_u64"] == .array(.uint64([])))
    #expect(file.header.alignment == 32)

    let t = file.tensors
    #expect(t.map(\.name).first == "a.norm.weight")
    #expect(t.map(\.type) == [.f32, .f16, .q4_K, .q8_0, .i32])
    #expect(t[0].dimensions == [7] && t[1].dimensions == [3, 5] && t[2].dimensions == [256, 2, 3])
    #expect(t[3].dimensions == [64], "gguf.cpp writes ggml_n_dims: the trailing 1 of {64, 1} is dropped")
    #expect(t[4].dimensions == [1, 2, 1, 2])
    #expect(t[2].name.utf8.count == GGUFTensorInfo.maximumNameLength)
    #expect(file.header.dataOffset % 32 == 0)
    for (index, tensor) in t.enumerated() where index > 0 {
      #expect(tensor.offset == GGUFParser.padded(t[index - 1].offset + t[index - 1].byteCount, to: 32))
    }
    let a = Array(file.bytes(ofTensor: 0))
    #expect(a.count == 28)
    #expect(a.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } == [-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    let c = Array(try file.bytes(ofTensor: t[2].name))
    #expect(c.count == 6 * 144 && c.indices.allSatisfy { c[$0] == UInt8(truncatingIfNeeded: $0 * 37 + 11) })
    #expect(file.header.dataOffset + file.header.dataByteCount == file.byteCount)
  }

  @Test("the planner reproduces gguf.cpp's file byte for byte")
  func layoutReproducesGoldenFile() throws {
    let bytes = try Self.golden()
    let header = try Self.parse(bytes)
    let layout = try GGUFLayout(metadata: header.metadata, tensors: header.tensors)
    #expect(layout.fileByteCount == bytes.count)
    #expect(layout.headerBytes == Array(bytes[0..<header.dataOffset]))
    #expect(layout.tensors == header.tensors)

    let directory = try TestPaths.scratchDirectory("gguf-writer")
    let path = directory + "/copy.gguf"
    let writer = try GGUFFileWriter(path: path, layout: layout)
    // Out of order, in two pieces for one tensor: positions are planned, not appended.
    for index in layout.tensors.indices.reversed() {
      let start = header.dataOffset + header.tensors[index].offset
      let tensorBytes = Array(bytes[start..<start + header.tensors[index].byteCount])
      let half = tensorBytes.count / 2
      try tensorBytes[half...].withUnsafeBytes { try writer.write(tensor: index, $0, at: half) }
      try tensorBytes[..<half].withUnsafeBytes { try writer.write(tensor: index, $0) }
    }
    #expect(!FileSystem.exists(path) && FileSystem.exists(writer.temporaryPath))
    try writer.commit()
    #expect(try FileSystem.readFile(path) == bytes)
    #expect(!FileSystem.exists(writer.temporaryPath))
  }

  @Test("writes outside a tensor are refused, abandon leaves nothing")
  func writerBounds() throws {
    let layout = try GGUFLayout(
      metadata: GGUFMetadata([GGUFKeyValue("general.architecture", .string("x"))]),
      tensors: [GGUFTensorInfo(name: "w", dimensions: [32, 2], type: .q8_0)])
    let path = try TestPaths.scratchDirectory("gguf-bounds") + "/w.gguf"
    let writer = try GGUFFileWriter(path: path, layout: layout)
    let block = [UInt8](repeating: 1, count: 34)
    #expect(throws: GGUFError.self) { try block.withUnsafeBytes { try writer.write(tensor: 0, $0, at: 35) } }
    #expect(throws: GGUFError.self) { try block.withUnsafeBytes { try writer.write(tensor: 0, $0, at: -1) } }
    try block.withUnsafeBytes { try writer.write(tensor: 0, $0, at: 34) }
    writer.abandon()
    #expect(!FileSystem.exists(path) && !FileSystem.exists(writer.temporaryPath))
  }

  @Test("the planner rejects what gguf.cpp would reject")
  func plannerValidation() {
    func plan(_ tensors: [GGUFTensorInfo], _ metadata: [GGUFKeyValue] = []) -> GGUFError.Kind? {
      do {
        _ = try GGUFLayout(metadata: GGUFMetadata(metadata), tensors: tensors)
        return nil
      } catch { return error.kind }
    }
    let long = String(repeating: "n", count: 64)
    #expect(plan([GGUFTensorInfo(name: long, dimensions: [4], type: .f32)]) == .tensorNameTooLong(name: long, length: 64))
    #expect(plan([GGUFTensorInfo(name: "a", dimensions: [4], type: .f32), GGUFTensorInfo(name: "a", dimensions: [4], type: .f32)]) == .duplicateTensor("a"))
    #expect(plan([GGUFTensorInfo(name: "k", dimensions: [128, 2], type: .q4_K)]) == .rowNotBlockMultiple(tensor: "k", type: .q4_K, rowLength: 128))
    #expect(plan([GGUFTensorInfo(name: "d", dimensions: [1, 1, 1, 1, 1], type: .f32)]) != nil)
    #expect(plan([], [GGUFKeyValue("general.alignment", .uint32(48))]) == .badAlignment("48 is not a power of 2"))
    #expect(plan([], [GGUFKeyValue("general.alignment", .uint64(64))]) == .badAlignment("must be u32, is u64"))
    #expect(plan([], [GGUFKeyValue("", .bool(true))]) == .emptyKey(index: 0))
    #expect(plan([], [GGUFKeyValue("k", .bool(true)), GGUFKeyValue("k", .bool(false))]) == .duplicateKey("k"))
    #expect(plan([GGUFTensorInfo(name: "big", dimensions: [1 << 40, 1 << 30], type: .f32)]) == .sizeOverflow(tensor: "big"))
  }

  @Test("a custom alignment pads the header and every tensor")
  func customAlignment() throws {
    let layout = try GGUFLayout(
      metadata: GGUFMetadata([GGUFKeyValue("general.alignment", .uint32(64))]),
      tensors: [GGUFTensorInfo(name: "a", dimensions: [3], type: .f32), GGUFTensorInfo(name: "b", dimensions: [5], type: .f16)])
    #expect(layout.dataOffset % 64 == 0)
    #expect(layout.tensors.map(\.offset) == [0, 64])
    #expect(layout.fileByteCount == layout.dataOffset + 128)
    var file = layout.headerBytes + [UInt8](repeating: 0, count: layout.dataByteCount)
    file[layout.dataOffset] = 1
    let parsed = try Self.parse(file)
    #expect(parsed.alignment == 64 && parsed.tensors == layout.tensors)
  }
}
