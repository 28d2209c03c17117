import JSON
import Quantization
import SafeTensors
import TensorCore

extension WeightStorage {
  /// NVIDIA ModelOpt NVFP4: `weight` U8 + `weight_scale` F8_E4M3 + `weight_scale_2` F32.
  public static let nvfp4ModelOpt = WeightStorage(rawValue: "nvfp4-modelopt")
  /// compressed-tensors `nvfp4-pack-quantized`: `weight_packed` U8 + `weight_scale` F8_E4M3 + `weight_global_scale`.
  public static let nvfp4CompressedTensors = WeightStorage(rawValue: "nvfp4-pack-quantized")
}

/// NVFP4 (E2M1 elements, an E4M3 scale per 16 along the row, an F32 per-tensor scale) as its two producers
/// write it: ModelOpt (`weight`, `weight_scale`, 0-d `weight_scale_2` = amax/2688, dequantized to the model
/// dtype) and compressed-tensors (`weight_packed`, `weight_scale`, `weight_global_scale` `[1]` = 2688/amax,
/// dequantized to BF16). formats/nvfp4.md has both, and the fused-sibling rule for the per-tensor scale.
public struct NVFP4WeightFormat: WeightFormat {
  public let producer: NVFP4.Producer
  public static let modelOpt = NVFP4WeightFormat(producer: .modelOpt)
  public static let compressedTensors = NVFP4WeightFormat(producer: .compressedTensors)

  public var storage: WeightStorage { producer == .modelOpt ? .nvfp4ModelOpt : .nvfp4CompressedTensors }
  public var mainRole: String { producer == .modelOpt ? "weight" : "weight_packed" }
  public var declaringQuantMethods: Set<String> { producer == .modelOpt ? ["modelopt"] : ["compressed-tensors"] }
  public var compressedTensorsFormat: String? { producer == .modelOpt ? nil : "nvfp4-pack-quantized" }
  /// The per-tensor scale's role.
  public var tensorScaleRole: String { producer == .modelOpt ? "weight_scale_2" : "weight_global_scale" }

  public func mayClaim(amongLeaves leaves: Set<String>) -> Bool { leaves.contains(mainRole) && leaves.contains(tensorScaleRole) }

  public func claim(_ module: inout ModuleTensors) -> [WeightGroup] {
    guard let packed = module.entry(mainRole), packed.dtype == .uint8, module.has(tensorScaleRole) else { return [] }
    if producer == .modelOpt, !module.has("weight_scale") { return [] }
    let activation = producer == .modelOpt ? "input_scale" : "input_global_scale"
    return [module.claim(storage, roles: [mainRole, "weight_scale", tensorScaleRole, activation])]
  }

  public func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry {
    let packed = try entry(mainRole, of: group, in: store)
    guard packed.shape.count == 2 else { throw bad(group, "packed weight should be U8 [out, in/2], found \(packed.shape)") }
    let (columns, overflow) = packed.shape[1].multipliedReportingOverflow(by: 2)
    guard !overflow else { throw bad(group, "packed weight shape \(packed.shape) overflows") }
    let dtype = producer == .modelOpt ? store.formatConfig.modelDType : .bfloat16
    return Self.matrix([packed.shape[0], columns], dtype, group: NVFP4.blockSize, bits: 4)
  }

  public func dequantize(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> DequantizedMatrix {
    try NVFP4.dequantize(tensors, producer: producer, outputDType: geometry.dtype)
  }

  public func describe(_ group: WeightGroup, entries: (String) -> TensorEntry?, config: FormatConfig) -> String {
    "NVFP4 (E2M1 + E4M3 per 16 + F32 global), \(producer == .modelOpt ? "ModelOpt" : "compressed-tensors")"
  }

  public func logicalElementCount(_ group: WeightGroup, entries: (String) -> TensorEntry?) -> Int {
    elements(group, entries, mainRole, times: 2)
  }

  /// 4-bit floats with microscales.
  public func precisionFamily(dtype: DType?) -> PrecisionFamily { .fp4 }
}

/// Writing NVFP4 in the producer's naming and arithmetic (ModelOpt or compressed-tensors). Fused siblings share
/// one per-tensor scale, as llm-compressor and ModelOpt give them (formats/nvfp4.md).
public struct NVFP4Layout: GroupLayout {
  public let producer: NVFP4.Producer

  public init(producer: NVFP4.Producer) { self.producer = producer }

  public var storage: WeightStorage { producer == .modelOpt ? .nvfp4ModelOpt : .nvfp4CompressedTensors }
  public var consumer: ConsumerFamily { producer == .modelOpt ? .modelOpt : .compressedTensors }
  public var name: String { producer == .modelOpt ? "nvfp4" : "nvfp4-ct" }
  public var groupSize: Int { NVFP4.blockSize }
  public var description: String {
    producer == .modelOpt ? "NVFP4 (ModelOpt)" : "NVFP4 (compressed-tensors nvfp4-pack-quantized)"
  }
  public var sharesTensorScaleWithFusedSiblings: Bool { true }

  public func plannedTensors(rows: Int, columns: Int, weightDType: DType, scaleDType: DType) -> [(suffix: String, dtype: DType, shape: [Int])] {
    let scales: (suffix: String, dtype: DType, shape: [Int]) = ("weight_scale", .float8E4M3FN, [rows, columns / groupSize])
    if producer == .modelOpt { return [("weight", .uint8, [rows, columns / 2]), scales, ("weight_scale_2", .float32, [])] }
    return [("weight_packed", .uint8, [rows, columns / 2]), scales, ("weight_global_scale", .float32, [1])]
  }

  public func quantize(_ weight: WeightMatrix, search: Bool, scaleDType: DType, tensorAmax: Float?) throws(FormatQuantizationError)
    -> [PackedTensor]
  {
    let result = search
      ? try NVFP4.quantizeWithClipSearch(weight, producer: producer, tensorAmax: tensorAmax)
      : try NVFP4.quantize(weight, producer: producer, tensorAmax: tensorAmax)
    return NVFP4.tensors(result)
  }

  public var compressedTensorsScheme: (format: String, weights: JSONValue)? {
    guard producer == .compressedTensors else { return nil }
    return (
      NVFP4WeightFormat.compressedTensors.compressedTensorsFormat!,
      .object(members: [
        ("num_bits", 4), ("type", "float"), ("symmetric", true), ("group_size", 16), ("strategy", "tensor_group"),
        ("dynamic", false), ("scale_dtype", "torch.float8_e4m3fn"),
      ])
    )
  }

  public static let targetNames: [GroupTargetName] = [
    GroupTargetName("nvfp4", help: "NVFP4, ModelOpt", refines: TargetRefinement.fourBit, aliases: ["NVFP4"]) { _ in .nvfp4(.modelOpt) },
    GroupTargetName("nvfp4-ct", help: "NVFP4, compressed-tensors", refines: TargetRefinement.fourBit) { _ in .nvfp4(.compressedTensors) },
  ]
}

extension GroupFormat {
  /// NVFP4 as `producer` writes it.
  public static func nvfp4(_ producer: NVFP4.Producer) -> GroupFormat { GroupFormat(NVFP4Layout(producer: producer)) }
}
