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

  @Test("the catalog is the registry's names in order (casts, FP8 layouts, group layouts), each once, aliases unique")
  func catalogListsTheRegistry() {
    let groupNames = Self.targets.map(\.name)
    let registered = WeightFormats.castTargetNames.map(\.name) + WeightFormats.fp8TargetNames.map(\.name) + groupNames
    #expect(ConversionTarget.names == registered)
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

  @Test("cast names make float casts and unscaled FP8 casts of their dtype; FP8 names make their granularity")
  func castAndFP8NamesMakeTheirTargets() {
    let casts = WeightFormats.castTargetNames.map { ConversionTarget.parse($0.name) }
    #expect(casts == [.cast(.bfloat16), .cast(.float16), .cast(.float32), .unscaledFP8(.float8E4M3FN), .unscaledFP8(.float8E5M2)])
    #expect(ConversionTarget.parse("fp8-block", blockShape: (1, 128), ue8m0: true)
      == .fp8(FP8Layout(granularity: .block(rows: 1, columns: 128), ue8m0Scales: true)))
    #expect(ConversionTarget.parse("FP8_BLOCK") == .fp8(FP8Layout(granularity: .block(rows: 128, columns: 128))))
    #expect(ConversionTarget.parse("fp8-channel") == .fp8(FP8Layout(granularity: .channel)))
    #expect(ConversionTarget.parse("fp8-tensor", ue8m0: true) == .fp8(FP8Layout(granularity: .tensor, ue8m0Scales: true)))
  }

  @Test("an FP8 layout plans the names its reader claims: DeepSeek's blocks unless compressed-tensors naming is asked or implied")
  func fp8LayoutsPlanWhatTheirReaderClaims() throws {
    let cases: [(FP8Layout, asked: Bool, storage: WeightStorage, scaleDType: DType, scaleShape: [Int])] = [
      (FP8Layout(granularity: .block(rows: 128, columns: 128)), false, .fp8Block, .float32, [3, 2]),
      (FP8Layout(granularity: .block(rows: 1, columns: 128)), false, .fp8Block, .float32, [300, 2]),
      (FP8Layout(granularity: .block(rows: 128, columns: 128)), true, .fp8CompressedTensors, .bfloat16, [3, 2]),
      (FP8Layout(granularity: .channel), false, .fp8CompressedTensors, .bfloat16, [300, 1]),
      (FP8Layout(granularity: .tensor), false, .fp8CompressedTensors, .bfloat16, [1]),
    ]
    for (layout, asked, storage, scaleDType, scaleShape) in cases {
      let ctNaming = layout.usesCompressedTensorsNaming(asked: asked)
      #expect(layout.scaleDType(weightDType: .bfloat16, compressedTensorsNaming: ctNaming) == scaleDType, "\(layout)")
      let planned = try layout.plannedTensors(
        module: "m", weightName: "m.weight", rows: 300, columns: 200, scaleDType: scaleDType, compressedTensorsNaming: ctNaming)
      #expect(planned.first == PlannedTensor(name: "m.weight", dtype: .float8E4M3FN, shape: [300, 200]), "\(layout)")
      #expect(planned.last?.shape == scaleShape && planned.last?.dtype == scaleDType, "\(layout)")
      let reader = WeightFormats.format(of: storage)
      let entries = try planned.map {
        try #require(TensorEntry(name: $0.name, dtype: $0.dtype, shape: $0.shape, dataOffsets: 0..<(ByteCount.of($0.dtype, shape: $0.shape) ?? 0)))
      }
      let groups = WeightGrouping.groups(of: entries)
      #expect(groups.map(\.storage) == [storage], "\(layout)")
      let family = layout.consumer(compressedTensorsNaming: asked)
      #expect(reader.declaringQuantMethods.contains(family == .compressedTensors ? "compressed-tensors" : "fp8"), "\(layout)")
      if ctNaming {
        #expect(reader.compressedTensorsFormat == layout.compressedTensorsScheme.format, "\(layout)")
      } else {
        #expect(layout.deepSeekQuantizationConfig != nil, "\(layout)")
      }
    }
  }
}
