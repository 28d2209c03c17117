import Quantization
import SafeTensors
import TensorCore
import Testing
import WeightFormats
@testable import Pipeline

@Suite("group layouts: the writing side of the registry")
struct GroupLayoutRegistryTests {
  static let targets = WeightFormats.groupTargetNames

  /// A deterministic `[rows, columns]` weight with an outlier per row (values exact in BF16).
  static func weight(rows: Int, columns: Int) -> [Float] {
    (0..<(rows * columns)).map { i in
      let x = Float((i * 7919) % 257 - 128) / 64
      return i % columns == (i / columns) % columns ? x * 6 : x
    }
  }

  @Test("every group --to name plans exactly the tensors its quantizer writes, and its reader decodes them back",
    arguments: 0..<targets.count)
  func planMatchesQuantizerAndReaderDecodes(_ index: Int) throws {
    let entry = Self.targets[index]
    let format = try #require(entry.make(TargetOptions(blockShape: (128, 128), ue8m0: false, groupSize: nil, bits: 4)))
    let (rows, columns) = (32, 128)
    let values = Self.weight(rows: rows, columns: columns)
    let tensors = try values.withUnsafeBufferPointer { buffer in
      try format.quantize(
        WeightMatrix(values: buffer, rowCount: rows, columnCount: columns, dtype: .bfloat16), search: false,
        scaleDType: .bfloat16)
    }
    let planned = format.outputs(module: "m", rows: rows, columns: columns, weightDType: .bfloat16, scaleDType: .bfloat16)
    let written = tensors.map { PlannedTensor(name: format.tensorName(module: "m", suffix: $0.nameSuffix), dtype: $0.dtype, shape: $0.shape) }
    #expect(written == planned, "\(entry.name)")
    for tensor in tensors { #expect(tensor.bytes.count == ByteCount.of(tensor.dtype, shape: tensor.shape), "\(entry.name) \(tensor.nameSuffix)") }

    let geometry = WeightGeometry(
      shape: [rows, columns], rows: rows, columns: columns, dtype: .bfloat16, groupSize: format.groupSize, bits: format.bits)
    let decoded = try WeightDecoding.dequantize(tensors, storage: format.storage, geometry: geometry, module: "m")
    var errors = ErrorStatistics()
    values.withUnsafeBufferPointer { reference in
      decoded.values.withUnsafeBufferPointer { errors.add(reference: reference, candidate: $0) }
    }
    #expect(errors.snrDecibels > 10, "\(entry.name): \(errors.snrDecibels) dB")
  }

  @Test("a layout's row slices decode to the rows of the whole weight")
  func rowSlicesDecodeToTheirRows() throws {
    let (rows, columns) = (24, 64)
    let values = Self.weight(rows: rows, columns: columns)
    for format in [GroupFormat.int4(groupSize: 32, symmetry: .asymmetric), .mlxAffine(bits: 8, groupSize: 32), .nvfp4(.compressedTensors)] {
      #expect(format.layout.slicesByRows)
      let tensors = try values.withUnsafeBufferPointer { buffer in
        try format.quantize(WeightMatrix(values: buffer, rowCount: rows, columnCount: columns, dtype: .bfloat16), search: false, scaleDType: .bfloat16)
      }
      func decode(_ tensors: [PackedTensor], rows: Int) throws -> [Float] {
        let geometry = WeightGeometry(
          shape: [rows, columns], rows: rows, columns: columns, dtype: .bfloat16, groupSize: format.groupSize, bits: format.bits)
        return try WeightDecoding.dequantize(tensors, storage: format.storage, geometry: geometry, module: "m").values
      }
      let whole = try decode(tensors, rows: rows)
      let slice = try decode(format.layout.rowSlice(tensors, rows: rows, range: 8..<24), rows: 16)
      #expect(slice == Array(whole[(8 * columns)...]), "\(format)")
    }
    #expect(!GroupFormat.gptq(groupSize: 32).layout.slicesByRows)
  }

  @Test("formats are equal exactly when their layouts and parameters are")
  func equalityIsLayoutAndParameters() {
    let formats: [GroupFormat] = [
      .int4(groupSize: 128, symmetry: .symmetric), .int4(groupSize: 64, symmetry: .symmetric),
      .int4(groupSize: 128, symmetry: .asymmetric), .gptq(groupSize: 128), .mlxAffine(bits: 4, groupSize: 128),
      .mlxAffine(bits: 8, groupSize: 128), .mxfp4(.compressedTensors), .mxfp4(.gptOss), .nvfp4(.modelOpt),
      .nvfp4(.compressedTensors),
    ]
    #expect(Set(formats).count == formats.count)
    #expect(GroupFormat.int4(groupSize: 64, symmetry: .symmetric) == .int4(groupSize: 64, symmetry: .symmetric))
    #expect(formats.map(\.name) == [
      "int4-g128", "int4-g128", "int4-asym", "gptq", "mlx-affine", "mlx-affine", "mxfp4", "mxfp4-gpt-oss", "nvfp4", "nvfp4-ct",
    ])
  }

  @Test("the catalog lists every registered group name once, after the casts and FP8 layouts, aliases unique")
  func catalogListsTheRegistry() {
    let groupNames = Self.targets.map(\.name)
    #expect(Array(ConversionTarget.names.suffix(groupNames.count)) == groupNames)
    #expect(Set(ConversionTarget.acceptedNames).count == ConversionTarget.acceptedNames.count)
    for entry in Self.targets {
      guard case .group(let format)? = ConversionTarget.parse(entry.name, groupSize: entry.fixedGroupSize) else {
        Issue.record("\(entry.name) does not parse to a group target"); continue
      }
      #expect(WeightFormats.groupLayouts.contains { $0 == type(of: format.layout) }, "\(entry.name)")
    }
  }

  @Test("each layout's reader declares the config that describes it (verify's rule), compressed-tensors formats agree")
  func readersDeclareTheWritersConfig() throws {
    for entry in Self.targets {
      let format = try #require(entry.make(TargetOptions(blockShape: (128, 128), ue8m0: false, groupSize: nil, bits: 4)))
      let reader = WeightFormats.format(of: format.storage)
      #expect(!reader.declaringQuantMethods.isEmpty, "\(entry.name)")
      #expect(reader.declaringQuantMethods.contains("compressed-tensors") == (format.family == .compressedTensors), "\(entry.name)")
      #expect(reader.compressedTensorsFormat == format.layout.compressedTensorsScheme?.format, "\(entry.name)")
    }
  }
}
