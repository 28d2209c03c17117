import Quantization
import SafeTensors
import TensorCore

extension WeightStorage {
  /// DeepSeek-V4's routed experts: `weight` I8 (E2M1 pairs) + `scale` F8_E8M0 per 1×32.
  public static let fp4E8M0 = WeightStorage(rawValue: "fp4-e8m0")
}

/// DeepSeek-V4's FP4 experts (`expert_dtype: fp4`): `weight` I8 `[out, in/2]` holding two E2M1 codes per byte
/// (the even element in the low nibble) and `scale` F8_E8M0 `[out, in/32]`. That is MXFP4 in other tensor
/// dtypes: decoded as transformers' FP4 path does, `bf16(fp4(code) · 2^(e − 127))`, and repacked losslessly
/// into the MXFP4 layouts (`microscaledCodes`). Claimed only with an F8_E8M0 scale of that shape, so other
/// one-byte tensors (FP8, int8) are never read as FP4.
public struct FP4E8M0Format: WeightFormat {
  public init() {}
  public var storage: WeightStorage { .fp4E8M0 }
  public var declaringQuantMethods: Set<String> { ["fp8"] }
  public var mainRole: String { "weight" }

  public func mayClaim(amongLeaves leaves: Set<String>) -> Bool { leaves.contains("weight") && leaves.contains("scale") }

  public func claim(_ module: inout ModuleTensors) -> [WeightGroup] {
    guard let weight = module.entry("weight"), weight.dtype == .int8, weight.shape.count == 2,
      let scale = module.entry("scale"), scale.dtype == .float8E8M0FNU,
      scale.shape == [weight.shape[0], weight.shape[1] * 2 / MXFP4.blockSize], weight.shape[1] % 16 == 0
    else { return [] }
    return [module.claim(storage, roles: ["weight", "scale"])]
  }

  public func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry {
    let weight = try entry("weight", of: group, in: store)
    let scale = try entry("scale", of: group, in: store)
    guard weight.shape.count == 2, weight.dtype == .int8, scale.dtype == .float8E8M0FNU,
      scale.shape == [weight.shape[0], weight.shape[1] * 2 / MXFP4.blockSize]
    else {
      throw bad(group, "expected I8 weight [out, in/2] and F8_E8M0 scale [out, in/32], found \(weight.dtype) \(weight.shape) and \(scale.dtype) \(scale.shape)")
    }
    return Self.matrix([weight.shape[0], weight.shape[1] * 2], .bfloat16, group: MXFP4.blockSize, bits: 4)
  }

  public var storesMXFP4Codes: Bool { true }

  public func microscaledCodes(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> MXFP4.Result? {
    // Never nil: the format stores exactly MXFP4's codes and scales.
    guard let weight = tensors.first(where: { $0.nameSuffix == "weight" }),
      let scale = tensors.first(where: { $0.nameSuffix == "scale" }),
      weight.bytes.count * 2 == geometry.rows * geometry.columns, scale.bytes.count * MXFP4.blockSize == geometry.rows * geometry.columns
    else { throw WeightDecodingError.badLayout(module: module, storage: storage, reason: "weight / scale sizes do not match \(geometry.shape)") }
    return MXFP4.result(packed: weight.bytes, scales: scale.bytes, rows: geometry.rows, columns: geometry.columns)
  }

  public func dequantize(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> DequantizedMatrix {
    try MXFP4.dequantize(microscaledCodes(tensors, geometry: geometry, module: module)!)
  }

  public func describe(_ group: WeightGroup, entries: (String) -> TensorEntry?, config: FormatConfig) -> String {
    "FP4 E2M1 pairs in I8, F8_E8M0 scale per 1x32 (DeepSeek-V4)"
  }

  public func logicalElementCount(_ group: WeightGroup, entries: (String) -> TensorEntry?) -> Int {
    elements(group, entries, "weight", times: 2)
  }

  /// 4-bit floats with microscales.
  public func precisionFamily(dtype: DType?) -> PrecisionFamily { .fp4 }
}
