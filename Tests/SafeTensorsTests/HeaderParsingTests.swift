import JSON
import SafeTensors
import TensorCore
import Testing

@Suite("header parsing")
struct HeaderParsingTests {
  static let validFile = makeFile(
    #"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}"#,
    data: Array(0..<24))

  @Test("parses a valid file: entries in offset order, metadata, constant-time lookup")
  func parsesValid() throws {
    let header = try SafeTensorsHeader.parse(fileBytes: Self.validFile)
    #expect(header.metadata == ["format": "pt"])
    #expect(header.tensors.map(\.name) == ["w", "b"])
    #expect(header.dataStart == 8 + header.headerByteCount)
    #expect(header.dataStart % 8 == 0)
    #expect(header.fileByteCount == Self.validFile.count)
    let b = try #require(header.entry(named: "b"))
    #expect(b.dtype == .bfloat16 && b.shape == [4] && b.dataOffsets == 16..<24 && b.byteCount == 8 && b.elementCount == 4)
    #expect(header.entry(named: "nope") == nil)
  }

  @Test("every prefix of a valid file is rejected without crashing; the whole file parses")
  func truncation() throws {
    let file = Self.validFile
    for length in 0..<file.count {
      let error = parseError(Array(file[0..<length]))
      let rule = try #require(error?.rule)
      let expected =
        length < 8 ? "headerTooSmall" : length < file.count - 24 ? "invalidHeaderLength" : "metadataIncompleteBuffer"
      #expect(rule == expected, "prefix of \(length) bytes")
    }
    #expect(parseError(file) == nil)
  }

  @Test("the caller can check the 8 length bytes before reading the header")
  func lengthFirst() throws {
    try Self.validFile.withUnsafeBytes { bytes in
      let n = try SafeTensorsHeader.headerByteCount(
        firstBytes: UnsafeRawBufferPointer(rebasing: bytes[0..<8]), fileByteCount: bytes.count)
      let header = try SafeTensorsHeader.parse(
        prefix: UnsafeRawBufferPointer(rebasing: bytes[0..<(8 + n)]), fileByteCount: bytes.count)
      #expect(header.headerByteCount == n)
    }
    #expect(throws: SafeTensorsError.headerTooLarge(headerByteCount: 100_000_001, looksLike: nil)) {
      try ([0x01, 0xE1, 0xF5, 0x05, 0, 0, 0, 0] as [UInt8]).withUnsafeBytes {
        try SafeTensorsHeader.headerByteCount(firstBytes: $0, fileByteCount: 1 << 40)
      }
    }
    // Exactly 100,000,000 is allowed (the file is then too short, which is the next rule).
    #expect(throws: SafeTensorsError.invalidHeaderLength(headerByteCount: 100_000_000, fileByteCount: 16)) {
      try ([0x00, 0xE1, 0xF5, 0x05, 0, 0, 0, 0] as [UInt8]).withUnsafeBytes {
        try SafeTensorsHeader.headerByteCount(firstBytes: $0, fileByteCount: 16)
      }
    }
  }

  @Test("an offset error names the tensors, offsets and data section start")
  func offsetMessage() {
    let file = makeFile(
      #"{"x":{"dtype":"U8","shape":[4],"data_offsets":[4096,4100]},"prev":{"dtype":"U8","shape":[4000],"data_offsets":[0,4000]}}"#,
      data: Array(repeating: 0, count: 4100))
    let error = parseError(file)
    let dataStart = file.count - 4100
    #expect(
      error
        == .invalidOffset(tensor: "x", begin: 4096, end: 4100, expectedBegin: 4000, previousTensor: "prev", dataStart: dataStart))
    let wrapped = SafeTensorsFileError(path: "model-00002.safetensors", error: error ?? .writerClosed)
    #expect(
      wrapped.description
        == "model-00002.safetensors: invalid offset for tensor 'x': starts at byte 4096 of the data section but the"
        + " previous tensor 'prev' ends at 4000, leaving a gap of 96 bytes (data section starts at file offset \(dataStart))"
    )
  }

  @Test("specific context in errors")
  func errorContext() {
    #expect(
      parseError(makeFile(#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#, data: Array(repeating: 0, count: 12)))
        == .tensorInvalidInfo(tensor: "a", dtype: .float32, shape: [2, 2], expectedByteCount: 16, begin: 0, end: 12))
    #expect(
      parseError(makeFile(#"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))?.description
        .contains("did you mean F32?") == true)
    #expect(
      parseError(makeFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8.0]}}"#, data: [0, 0, 0, 0]))
        == .invalidDataOffsets(tensor: "a", reason: "`8.0` is not a non-negative integer below 2^64"))
    #expect(
      parseError(makeFile(#"{"a":{"dtype":"F32","shape":[1e3],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        == .invalidShape(tensor: "a", reason: "dimension 0 is `1e3`, expected a non-negative integer below 2^64"))
    let duplicate = makeFile(
      #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
      data: [0])
    #expect(parseError(duplicate) == .duplicateTensor(name: "a", fileOffset: 8 + 53))
    #expect(
      parseError(makeFile(#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#, data: [0, 0]))
        == .misalignedSlice(tensor: "a", dtype: .float4E2M1, elementCount: 3))
    var nulPadded = makeFile("{}")
    nulPadded[10] = 0
    #expect(parseError(nulPadded) == .invalidJSON(.trailingCharacters(byteOffset: 2, found: 0)))
    #expect(parseError(nulPadded)?.description == "invalid JSON in header: trailing characters after the JSON value, starting with NUL (0x00) at file offset 10")
    let trailing = Self.validFile + [1, 2, 3]
    #expect(
      parseError(trailing)?.description
        == "tensor data ends at file offset \(Self.validFile.count) but the file is \(trailing.count) bytes: 3 trailing bytes not covered by any tensor")
  }

  @Test("zero-size tensors may share offsets; scalars hold one element")
  func zeroSizeAndScalars() throws {
    let file = makeFile(
      #"{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"e1":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},"e2":{"dtype":"I8","shape":[5,0],"data_offsets":[8,8]},"t":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}}"#,
      data: Array(repeating: 0, count: 9))
    let header = try SafeTensorsHeader.parse(fileBytes: file)
    #expect(header.tensors.map(\.name) == ["s", "e1", "e2", "t"])
    #expect(header.entry(named: "s")?.elementCount == 1)
    #expect(header.entry(named: "e2")?.byteCount == 0)
  }
}

@Suite("header parsing robustness")
struct HeaderRobustnessTests {
  @Test("thousands of deterministic byte mutations of a valid file throw or parse, never crash")
  func mutations() {
    let original = HeaderParsingTests.validFile
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next() -> UInt64 {
      state ^= state << 13
      state ^= state >> 7
      state ^= state << 17
      return state
    }
    let interesting: [UInt8] = [0, 0x20, 0x22, 0x2C, 0x2D, 0x2E, 0x30, 0x39, 0x5B, 0x5D, 0x7B, 0x7D, 0x80, 0xFF]
    var accepted = 0
    for _ in 0..<3000 {
      var file = original
      for _ in 0..<(1 + Int(next() % 3)) {
        let position = Int(next() % UInt64(file.count))
        file[position] = next() % 2 == 0 ? interesting[Int(next() % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: next())
      }
      if parseError(file) == nil { accepted += 1 }
    }
    // Mutating tensor data keeps the file valid, so some inputs must be accepted.
    #expect(accepted > 0)
  }
}
