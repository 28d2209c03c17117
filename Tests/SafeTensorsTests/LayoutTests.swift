import SafeTensors
import TensorCore
import Testing

@Suite("layout planning")
struct LayoutTests {
  /// A shape whose bit count is whole for every dtype (F6 needs a multiple of 4 elements).
  static let shape = [2, 4]

  @Test("planned header parses back identically for every dtype", arguments: DType.allCases)
  func roundTripEachDType(dtype: DType) throws {
    let layout = try SafeTensorsLayout(tensors: [
      PlannedTensor(name: "t", dtype: dtype, shape: Self.shape),
      PlannedTensor(name: "scalar-or-vector", dtype: dtype, shape: dtype.bitWidth % 8 == 0 ? [] : [4]),
      PlannedTensor(name: "empty", dtype: dtype, shape: [0, 7]),
    ])
    let file = layout.headerBytes + Array(repeating: 0, count: layout.header.dataByteCount)
    let parsed = try SafeTensorsHeader.parse(fileBytes: file)
    #expect(parsed == layout.header)
    #expect(parsed.entry(named: "t")?.byteCount == 8 * dtype.bitWidth / 8)
    #expect(layout.fileByteCount == file.count)
  }

  @Test("orders tensors like the official writer and aligns every tensor to its element size")
  func orderingAndAlignment() throws {
    let tensors = DType.allCases.enumerated().map { k, dtype in
      PlannedTensor(name: "t\(DType.allCases.count - k)", dtype: dtype, shape: [4, 3])
    }
    let layout = try SafeTensorsLayout(tensors: tensors.reversed())
    let order = layout.entries.map(\.dtype)
    #expect(order == DType.allCases.reversed())
    for entry in layout.entries {
      #expect((layout.fileOffset(ofTensor: entry.name) ?? -1) % entry.dtype.alignment == 0, "\(entry)")
    }
    #expect(layout.headerBytes.count % 8 == 0)
    // Same dtype: names ascending by bytes.
    let named = try SafeTensorsLayout(tensors: ["b", "a", "B", "é", "a.1"].map { PlannedTensor(name: $0, dtype: .uint8, shape: [1]) })
    #expect(named.entries.map(\.name) == ["B", "a", "a.1", "b", "é"])
  }

  @Test("header bytes match the Python safetensors 0.8.0 writer byte for byte")
  func matchesPythonWriter() throws {
    // scripts: safetensors.serialize({...}, metadata={"format": "pt"}) with safetensors==0.8.0.
    let expected = bytes(hex: Self.pythonGolden)
    let layout = try SafeTensorsLayout(tensors: [
      PlannedTensor(name: "b.weight", dtype: .float32, shape: [2, 2]),
      PlannedTensor(name: "a", dtype: .bfloat16, shape: [3]),
      PlannedTensor(name: "zz", dtype: .uint8, shape: [3]),
      PlannedTensor(name: "c", dtype: .float64, shape: []),
      PlannedTensor(name: "y", dtype: .int64, shape: [0]),
      PlannedTensor(name: "é/x", dtype: .bool, shape: [1]),
      PlannedTensor(name: "q\n\"", dtype: .float8E4M3FN, shape: [2]),
    ])
    #expect(layout.headerBytes == Array(expected[0..<layout.headerBytes.count]))
    #expect(layout.fileByteCount == expected.count)
    #expect(try SafeTensorsHeader.parse(fileBytes: expected) == layout.header)
  }

  @Test("metadata defaults to format pt and can be omitted")
  func metadata() throws {
    let planned = [PlannedTensor(name: "a", dtype: .float32, shape: [1])]
    let withDefault = try SafeTensorsLayout(tensors: planned)
    #expect(withDefault.header.metadata == ["format": "pt"])
    let json = String(decoding: withDefault.headerBytes[8...], as: UTF8.self)
    #expect(json.hasPrefix(#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#))
    let none = try SafeTensorsLayout(tensors: planned, metadata: nil)
    #expect(String(decoding: none.headerBytes[8...], as: UTF8.self).hasPrefix(#"{"a":"#))
    #expect(none.header.metadata == nil)
    let sorted = try SafeTensorsLayout(tensors: [], metadata: ["z": "1", "a": "2\u{1}"])
    #expect(String(decoding: sorted.headerBytes[8...], as: UTF8.self).hasPrefix(#"{"__metadata__":{"a":"2\u0001","z":"1"}}"#))
    let empty = try SafeTensorsLayout(tensors: [], metadata: nil)
    #expect(empty.headerBytes == [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
  }

  @Test("rejects plans the format cannot hold")
  func rejectsInvalidPlans() {
    #expect(throws: SafeTensorsError.duplicateTensor(name: "a", fileOffset: nil)) {
      try SafeTensorsLayout(tensors: [
        PlannedTensor(name: "a", dtype: .uint8, shape: [1]), PlannedTensor(name: "a", dtype: .float32, shape: [1]),
      ])
    }
    #expect(throws: SafeTensorsError.reservedTensorName) {
      try SafeTensorsLayout(tensors: [PlannedTensor(name: "__metadata__", dtype: .uint8, shape: [1])])
    }
    #expect(throws: SafeTensorsError.negativeDimension(tensor: "a", shape: [2, -1])) {
      try SafeTensorsLayout(tensors: [PlannedTensor(name: "a", dtype: .uint8, shape: [2, -1])])
    }
    #expect(throws: SafeTensorsError.misalignedSlice(tensor: "a", dtype: .float4E2M1, elementCount: 3)) {
      try SafeTensorsLayout(tensors: [PlannedTensor(name: "a", dtype: .float4E2M1, shape: [3])])
    }
    #expect(throws: SafeTensorsError.misalignedSlice(tensor: "a", dtype: .float6E3M2, elementCount: 6)) {
      try SafeTensorsLayout(tensors: [PlannedTensor(name: "a", dtype: .float6E3M2, shape: [2, 3])])
    }
    #expect(throws: SafeTensorsError.validationOverflow(tensor: "a", dtype: .uint8, shape: [1 << 32, 1 << 32])) {
      try SafeTensorsLayout(tensors: [PlannedTensor(name: "a", dtype: .uint8, shape: [1 << 32, 1 << 32])])
    }
    #expect(throws: SafeTensorsError.self) {
      try SafeTensorsLayout(tensors: [
        PlannedTensor(name: "a", dtype: .uint8, shape: [Int.max / 2]), PlannedTensor(name: "b", dtype: .uint8, shape: [Int.max / 2 + 10]),
      ])
    }
  }

  static let pythonGolden = """
    b8010000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074227d2c2279223a7b226474797065223a22493634222c227368617065223a5b305d2c22646174615f6f666673657473223a5b302c305d7d2c2263223a7b226474797065223a22463634222c227368617065223a5b5d2c22646174615f6f666673657473223a5b302c385d7d2c22622e776569676874223a7b226474797065223a22463332222c227368617065223a5b322c325d2c22646174615f6f666673657473223a5b382c32345d7d2c2261223a7b226474797065223a2242463136222c227368617065223a5b335d2c22646174615f6f666673657473223a5b32342c33305d7d2c22715c6e5c22223a7b226474797065223a2246385f45344d33222c227368617065223a5b325d2c22646174615f6f666673657473223a5b33302c33325d7d2c227a7a223a7b226474797065223a225538222c227368617065223a5b335d2c22646174615f6f666673657473223a5b33322c33355d7d2c22c3a92f78223a7b226474797065223a22424f4f4c222c227368617065223a5b315d2c22646174615f6f666673657473223a5b33352c33365d7d7d202020202020200000000000000000000102030405060708090a0b0c0d0e0f000102030405102078797a01
    """
}
