import JSON
import Quantization
import SafeTensors
import TensorCore

extension WeightStorage {
  /// GPTQ v1: `qweight`, `qzeros`, `scales`, `g_idx`.
  public static let gptq = WeightStorage(rawValue: "gptq")
}

/// GPTQ v1 (AutoGPTQ, `quant_method: gptq`): `qweight` I32 `[in/8, out]` packed along the input, `qzeros`
/// stored as zero − 1, `scales` F16 `[in/g, out]`. 4-bit only (`quantization_config.bits`, when present, must be
/// 4); `g_idx` must be `i / g` (no act-order).
public struct GPTQFormat: WeightFormat {
  public init() {}
  public var storage: WeightStorage { .gptq }
  public var mainRole: String { "qweight" }
  public var declaringQuantMethods: Set<String> { ["gptq"] }

  public func mayClaim(amongLeaves leaves: Set<String>) -> Bool { leaves.contains("qweight") && leaves.contains("scales") }

  public func claim(_ module: inout ModuleTensors) -> [WeightGroup] {
    guard module.has("qweight"), module.has("scales") else { return [] }
    return [module.claim(storage, roles: ["qweight", "qzeros", "scales", "g_idx"])]
  }

  public func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry {
    let qweight = try entry("qweight", of: group, in: store)
    let scales = try entry("scales", of: group, in: store)
    if let bits = store.formatConfig.quantization?["bits"]?.intValue, bits != 4 {
      throw WeightDecodingError.unsupported(module: group.modulePath, storage: storage, reason: "\(bits)-bit gptq")
    }
    guard qweight.shape.count == 2, scales.shape.count == 2, scales.shape[1] == qweight.shape[1], scales.shape[0] > 0 else {
      throw bad(group, "expected qweight I32 [in/8, out] and scales [in/g, out], found \(qweight.shape) and \(scales.shape)")
    }
    let (columns, overflow) = qweight.shape[0].multipliedReportingOverflow(by: 8)
    guard !overflow, columns % scales.shape[0] == 0 else {
      throw bad(group, "in = \(qweight.shape[0]) x 8 is not a multiple of \(scales.shape[0]) groups")
    }
    return Self.matrix([qweight.shape[1], columns], .float16, group: columns / scales.shape[0], bits: 4)
  }

  public func dequantize(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> DequantizedMatrix {
    if let gIndex = tensors.first(where: { $0.nameSuffix == "g_idx" }) {
      try WeightDecoding.checkTrivialGroupIndex(gIndex, groupSize: geometry.groupSize ?? 1, module: module, storage: storage)
    }
    return try GPTQv1.dequantize(tensors, groupSize: geometry.groupSize ?? 0)
  }

  public func describe(_ group: WeightGroup, entries: (String) -> TensorEntry?, config: FormatConfig) -> String {
    "GPTQ int4 (qweight/qzeros/scales), group \(config.quantization?["group_size"]?.intValue ?? 0)"
  }

  public func logicalElementCount(_ group: WeightGroup, entries: (String) -> TensorEntry?) -> Int {
    elements(group, entries, "qweight", times: 8)
  }
}

/// Writing GPTQ v1, symmetric (`qweight`, `qzeros`, `scales`, `g_idx`), as AutoGPTQ packs it.
public struct GPTQLayout: GroupLayout {
  public let groupSize: Int

  public init(groupSize: Int) { self.groupSize = groupSize }

  public var storage: WeightStorage { .gptq }
  public var consumer: ConsumerFamily { .gptq }
  public var name: String { "gptq" }
  public var description: String { "int4 symmetric group \(groupSize) (GPTQ v1)" }
  /// GPTQ has no clip search: its grid is int4-g128's, which vLLM reads as compressed-tensors.
  public var supportsSearch: Bool { false }
  /// `qweight` and `scales` are stored transposed: the weight decodes whole.
  public var slicesByRows: Bool { false }
  /// The gptq config has one `group_size`.
  public var mixesGroupSizes: Bool { false }

  public func additionalUnsupportedReason(rows: Int, columns: Int) -> String? {
    rows % 8 != 0 ? "output dimension \(rows) is not a multiple of 8 (GPTQ packs qzeros along it)" : nil
  }

  public func plannedTensors(rows: Int, columns: Int, weightDType: DType, scaleDType: DType) -> [(suffix: String, dtype: DType, shape: [Int])] {
    [
      ("qweight", .int32, [columns / 8, rows]),
      ("qzeros", .int32, [columns / groupSize, rows / 8]),
      ("scales", .float16, [columns / groupSize, rows]),
      ("g_idx", .int32, [columns]),
    ]
  }

  public func quantize(_ weight: WeightMatrix, search: Bool, scaleDType: DType, tensorAmax: Float?) throws(FormatQuantizationError)
    -> [PackedTensor]
  {
    GPTQv1.tensors(try GPTQv1.quantize(weight, groupSize: groupSize, symmetry: .symmetric))
  }

  public static let targetNames: [GroupTargetName] = [
    GroupTargetName("gptq", help: "GPTQ v1, --group-size (default 128)", refines: [.groupSize, .skipIncompatible]) { o in
      .gptq(groupSize: o.groupSize ?? 128)
    }
  ]
}

extension GroupFormat {
  /// GPTQ v1, symmetric.
  public static func gptq(groupSize: Int) -> GroupFormat { GroupFormat(GPTQLayout(groupSize: groupSize)) }
}
