import GGML
import GGUF
import SystemIO
import TestSupport
import Testing

@testable import GGUFModel

@Suite("importance matrix files")
struct ImportanceMatrixTests {
  /// Writes an imatrix GGUF the way llama-imatrix lays it out: `<name>.in_sum2` {ne0, experts} and
  /// `<name>.counts` {1, experts}, F32.
  static func write(_ entries: [(String, [Float], [Float])], metadata: Bool = true, to path: String) throws {
    var m = GGUFMetadata([GGUFKeyValue("general.type", .string("imatrix"))])
    if metadata {
      m.set("imatrix.datasets", .array(.string(["wiki.train.raw"])))
      m.set("imatrix.chunk_count", .uint32(12))
      m.set("imatrix.chunk_size", .uint32(512))
    }
    var tensors: [GGUFTensorInfo] = []
    var data: [[Float]] = []
    for (name, sums, counts) in entries {
      tensors.append(GGUFTensorInfo(name: name + ".in_sum2", dimensions: [sums.count / counts.count, counts.count], type: .f32))
      tensors.append(GGUFTensorInfo(name: name + ".counts", dimensions: [1, counts.count], type: .f32))
      data += [sums, counts]
    }
    let layout = try GGUFLayout(metadata: m, tensors: tensors)
    let writer = try GGUFFileWriter(path: path, layout: layout)
    for (index, values) in data.enumerated() { try values.withUnsafeBytes { try writer.write(tensor: index, $0) } }
    try writer.commit()
  }

  @Test("sums are divided by the per-expert counts (1 where a count is 0), metadata becomes quantize.imatrix.*")
  func gguf() throws {
    let path = try TestPaths.scratchDirectory("imatrix") + "/m.gguf"
    try Self.write([
      ("blk.0.ffn_down.weight", [2, 4, 6, 8], [2]),
      ("blk.1.ffn_up_exps.weight", [3, 6, 9, 12, 5, 5], [3, 0, 1.4]),
    ], to: path)
    let matrix = try ImportanceMatrix(path: path)
    #expect(!matrix.isLegacy && matrix.chunkCount == 12 && matrix.chunkSize == 512 && matrix.datasets == ["wiki.train.raw"])
    #expect(matrix.entries["blk.0.ffn_down.weight"] == [1, 2, 3, 4])
    #expect(matrix.entries["blk.1.ffn_up_exps.weight"] == [1, 2, 1, 1, 5, 5], "count 1.4 rounds to 1, count 0 gives 1")
    #expect(try matrix.vectors(for: "blk.1.ffn_up_exps.weight", rowLength: 2, experts: 3) == [[1, 2], [1, 1], [5, 5]])
    #expect(try matrix.vectors(for: "blk.9.missing.weight", rowLength: 2, experts: 1) == nil)
    #expect(throws: ImportanceMatrix.Failure.sizeMismatch(tensor: "blk.0.ffn_down.weight", expected: 8, actual: 4)) {
      try matrix.vectors(for: "blk.0.ffn_down.weight", rowLength: 8, experts: 1)
    }
    #expect(matrix.metadata(filePath: path).map(\.key) == [
      "quantize.imatrix.file", "quantize.imatrix.dataset", "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count",
    ])
  }

  @Test("a GGUF without the imatrix metadata is refused, as llama-quantize refuses it")
  func missingMetadata() throws {
    let path = try TestPaths.scratchDirectory("imatrix-nometa") + "/m.gguf"
    try Self.write([("w.weight", [1, 2], [1])], metadata: false, to: path)
    #expect(throws: ImportanceMatrix.Failure.missingMetadata(path)) { try ImportanceMatrix(path: path) }
  }

  @Test("the legacy binary format divides by ncall")
  func legacy() throws {
    var bytes: [UInt8] = []
    func i32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    i32(1)
    i32(8)
    bytes += Array("w.weight".utf8)
    i32(4)
    i32(2)
    for v: Float in [8, 2] { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
    i32(7)
    i32(4)
    bytes += Array("wiki".utf8)
    let path = try TestPaths.scratchDirectory("imatrix-legacy") + "/m.dat"
    try FileSystem.writeFileAtomically(bytes, to: path)
    let matrix = try ImportanceMatrix(path: path)
    #expect(matrix.isLegacy && matrix.entries["w.weight"] == [2, 0.5] && matrix.chunkCount == 7 && matrix.datasets == ["wiki"])
    try FileSystem.writeFileAtomically(Array(bytes.prefix(20)), to: path)
    #expect(throws: ImportanceMatrix.Failure.truncated(path)) { try ImportanceMatrix(path: path) }
  }
}
