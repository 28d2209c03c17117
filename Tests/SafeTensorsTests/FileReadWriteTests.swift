import Dispatch
import SafeTensors
import SystemIO
import TensorCore
import Testing

@Suite("file reader and writer")
struct FileReadWriteTests {
  /// Deterministic bytes for tensor `index`.
  static func pattern(_ count: Int, seed: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ 1) } }

  @Test("writes every dtype to disk and reads identical bytes back through the mapping")
  func writeThenRead() throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let planned = DType.allCases.map { PlannedTensor(name: "tensor.\($0.rawValue)", dtype: $0, shape: [3, 4]) }
      + [PlannedTensor(name: "empty", dtype: .float32, shape: [0])]
    let layout = try SafeTensorsLayout(tensors: planned)
    let path = directory.file("model.safetensors")
    let writer = try SafeTensorsFileWriter(path: path, layout: layout)
    for (k, entry) in layout.entries.enumerated() {
      try writer.write(tensorNamed: entry.name, bytes: Self.pattern(entry.byteCount, seed: k))
    }
    #expect(!FileSystem.exists(path), "nothing appears under the final name before commit")
    try writer.commit()
    #expect(FileSystem.exists(path))
    #expect(!FileSystem.exists(AtomicOutputFile.temporaryPath(for: path)))

    let file = try SafeTensorsFile(path: path)
    #expect(file.header == layout.header)
    #expect(file.metadata == ["format": "pt"])
    for (k, entry) in layout.entries.enumerated() {
      let view = try #require(file.tensor(named: entry.name))
      #expect(view.copyBytes() == Self.pattern(entry.byteCount, seed: k), "\(entry.name)")
    }
    #expect(file.tensor(named: "missing") == nil)
    #expect(throws: SafeTensorsFileError(path: path, error: .tensorNotFound(name: "missing"))) {
      try file.requireTensor(named: "missing")
    }
  }

  @Test("typed copies and unaligned element loads")
  func typedAccess() throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    // No padding: a 61-byte header puts the data at file offset 69, deliberately unaligned.
    let values: [Float] = [1.5, -2, 3.25, 1e-3]
    let data = values.withUnsafeBytes { Array($0) }
    let json = #"{"f":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#
    var file: [UInt8] = []
    withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { file += $0 }
    file += Array(json.utf8) + data
    let path = directory.file("unaligned.safetensors")
    try FileSystem.writeFileAtomically(file, to: path)

    let opened = try SafeTensorsFile(path: path)
    #expect(opened.header.dataStart % 4 != 0)
    let view = try #require(opened.tensor(named: "f"))
    #expect(try view.copyElements(as: Float.self) == values)
    #expect(view.element(at: 2, as: Float.self) == 3.25)
    #expect(throws: SafeTensorsError.elementSizeMismatch(tensor: "f", dtype: .float32, requestedByteWidth: 2)) {
      try view.copyElements(as: UInt16.self)
    }
  }

  @Test("row-range chunks from several threads; overlaps and overruns are rejected")
  func chunkedParallelWrites() throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let rows = 64
    let rowBytes = 12
    let layout = try SafeTensorsLayout(tensors: [
      PlannedTensor(name: "w", dtype: .bfloat16, shape: [rows, rowBytes / 2]),
      PlannedTensor(name: "s", dtype: .float32, shape: [2]),
    ])
    let path = directory.file("chunks.safetensors")
    let writer = try SafeTensorsFileWriter(path: path, layout: layout)
    let expected = Self.pattern(rows * rowBytes, seed: 3)
    let source = SharedRawBuffer(UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer.allocate(byteCount: expected.count, alignment: 1)))
    defer { source.bytes.deallocate() }
    UnsafeMutableRawBufferPointer(mutating: source.bytes).copyBytes(from: expected)
    DispatchQueue.concurrentPerform(iterations: rows / 4) { chunk in
      let range = (chunk * 4 * rowBytes)..<((chunk + 1) * 4 * rowBytes)
      try? writer.write(
        tensorNamed: "w", atByteOffsetWithinTensor: range.lowerBound,
        bytes: UnsafeRawBufferPointer(rebasing: source.bytes[range]))
    }
    #expect(throws: SafeTensorsFileError(path: path, error: .overlappingWrite(tensor: "w", offsetWithinTensor: 10, byteCount: 4))) {
      try ([1, 2, 3, 4] as [UInt8]).withUnsafeBytes { try writer.write(tensorNamed: "w", atByteOffsetWithinTensor: 10, bytes: $0) }
    }
    #expect(throws: SafeTensorsFileError(path: path, error: .writeOutOfBounds(tensor: "s", offsetWithinTensor: 6, byteCount: 4, tensorByteCount: 8))) {
      try ([1, 2, 3, 4] as [UInt8]).withUnsafeBytes { try writer.write(tensorNamed: "s", atByteOffsetWithinTensor: 6, bytes: $0) }
    }
    #expect(throws: SafeTensorsFileError(path: path, error: .writeOutOfBounds(tensor: "s", offsetWithinTensor: 0, byteCount: 3, tensorByteCount: 8))) {
      try writer.write(tensorNamed: "s", bytes: [1, 2, 3])
    }
    #expect(throws: SafeTensorsFileError(path: path, error: .tensorNotFound(name: "x"))) {
      try writer.write(tensorNamed: "x", bytes: [])
    }
    try ([1, 2, 3, 4] as [UInt8]).withUnsafeBytes { try writer.write(tensorNamed: "s", atByteOffsetWithinTensor: 4, bytes: $0) }
    #expect(throws: SafeTensorsFileError(path: path, error: .incompleteTensor(tensor: "s", writtenByteCount: 4, expectedByteCount: 8, incompleteTensorCount: 1))) {
      try writer.commit()
    }
    try ([5, 6, 7, 8] as [UInt8]).withUnsafeBytes { try writer.write(tensorNamed: "s", atByteOffsetWithinTensor: 0, bytes: $0) }
    try writer.commit()
    let file = try SafeTensorsFile(path: path)
    #expect(file.tensor(named: "w")?.copyBytes() == expected)
    #expect(file.tensor(named: "s")?.copyBytes() == [5, 6, 7, 8, 1, 2, 3, 4])
  }

  @Test("an uncommitted writer leaves nothing behind")
  func abandonRemovesTemporary() throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let path = directory.file("gone.safetensors")
    let layout = try SafeTensorsLayout(tensors: [PlannedTensor(name: "a", dtype: .uint8, shape: [4])])
    do {
      let writer = try SafeTensorsFileWriter(path: path, layout: layout)
      try writer.write(tensorNamed: "a", bytes: [1, 2, 3, 4])
      #expect(FileSystem.exists(AtomicOutputFile.temporaryPath(for: path)))
    }
    #expect(!FileSystem.exists(AtomicOutputFile.temporaryPath(for: path)))
    #expect(!FileSystem.exists(path))
  }

  @Test("a missing file is an I/O error naming the path")
  func missingFile() {
    let error = openError("/nonexistent/x.safetensors")
    #expect(error?.error.rule == "io")
    #expect(error?.description.contains("/nonexistent/x.safetensors") == true)
  }
}
