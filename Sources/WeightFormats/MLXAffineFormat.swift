import JSON
import Quantization
import SafeTensors
import TensorCore

extension WeightStorage {
  /// MLX affine: `weight` U32 + `scales` + `biases`.
  public static let mlxAffine = WeightStorage(rawValue: "mlx-affine")
}

/// MLX affine (mlx-lm, mlx-swift-lm): `weight` U32 `[out, in·bits/32]`, `scales` and `biases` `[out, in/g]` in
/// the weight dtype, `w = q·scale + bias`.
///
/// Bits and group size come from config.json `quantization` (a per-module entry under the module path, or
/// under its mlx-lm stacked-experts alias `...mlp.switch_mlp.<proj>`, first; then the top-level
/// `group_size`/`bits`; then `quantization_config`), kept only when consistent with the shapes
/// (`in = weight.shape[1] · 32 / bits`, `in / group = scales.shape[1]`); otherwise the first consistent pair of
/// bits 4, 8 × group 64, 32, 128 (MLX's default 4-bit/64 first). Modes other than affine (no `biases`) are
/// refused.
public struct MLXAffineFormat: WeightFormat {
  public init() {}
  public var storage: WeightStorage { .mlxAffine }
  public var mainRole: String { "weight" }
  public var declaringQuantMethods: Set<String> { ["mlx"] }

  public func mayClaim(amongLeaves leaves: Set<String>) -> Bool { leaves.contains("weight") && leaves.contains("scales") }

  public func claim(_ module: inout ModuleTensors) -> [WeightGroup] {
    guard let weight = module.entry("weight"), weight.dtype == .uint32, module.has("scales") else { return [] }
    return [module.claim(storage, roles: ["weight", "scales", "biases"])]
  }

  public func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry {
    let weight = try entry("weight", of: group, in: store)
    let scales = try entry("scales", of: group, in: store)
    let (bits, groupSize, columns) = try parameters(group, weight: weight, scales: scales, config: store.configObject)
    return Self.matrix([weight.shape[0], columns], scales.dtype, group: groupSize, bits: bits)
  }

  /// Bits, group size and input columns (see the type's documentation for the rule).
  func parameters(
    _ group: WeightGroup, weight: TensorEntry, scales: TensorEntry, config: JSONObject?
  ) throws -> (bits: Int, groupSize: Int, columns: Int) {
    guard weight.shape.count == 2, scales.shape.count == 2, scales.shape[0] == weight.shape[0], scales.shape[1] > 0 else {
      throw bad(group, "expected weight U32 [out, in*bits/32] and scales [out, in/g], found \(weight.shape) and \(scales.shape)")
    }
    let words = weight.shape[1]
    let groupCount = scales.shape[1]
    func consistent(_ bits: Int, _ groupSize: Int) -> Int? {
      guard bits > 0, 32 % bits == 0, groupSize > 0 else { return nil }
      let (columns, overflow) = words.multipliedReportingOverflow(by: 32 / bits)
      guard !overflow, columns == groupCount * groupSize else { return nil }
      return columns
    }
    for (bits, groupSize) in Self.configuredParameters(module: group.modulePath, config: config) {
      if let columns = consistent(bits, groupSize) { return (bits, groupSize, columns) }
    }
    for bits in MLXAffine.supportedBits {
      for groupSize in [64, 32, 128] {
        if let columns = consistent(bits, groupSize) { return (bits, groupSize, columns) }
      }
    }
    throw WeightDecodingError.unsupported(
      module: group.modulePath, storage: storage,
      reason: "weight \(weight.shape) with scales \(scales.shape) (no bits 4/8, group 32/64/128 fits)")
  }

  /// Candidate (bits, group size) pairs from config.json, most specific first.
  static func configuredParameters(module: String, config raw: JSONObject?) -> [(Int, Int)] {
    guard let raw else { return [] }
    var candidates: [(Int, Int)] = []
    func add(_ value: JSONValue?) {
      guard let object = value?.objectValue, let bits = object["bits"]?.intValue, let groupSize = object["group_size"]?.intValue else { return }
      candidates.append((bits, groupSize))
    }
    for key in ["quantization", "quantization_config"] {
      guard let block = raw[key] else { continue }
      add(block[module])
      add(block[stackedAlias(module)])
    }
    add(raw["quantization"])
    add(raw["quantization_config"])
    return candidates
  }

  /// mlx-lm's module path for a per-expert module: `...mlp.experts.7.up_proj` → `...mlp.switch_mlp.up_proj`
  /// (mlx-lm stacks routed experts into one `SwitchLinear`); other paths unchanged.
  public static func stackedAlias(_ module: String) -> String {
    var parts = module.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    guard let i = parts.firstIndex(of: "experts"), i + 1 < parts.count, Int(parts[i + 1]) != nil else { return module }
    parts[i] = "switch_mlp"
    parts.remove(at: i + 1)
    return parts.joined(separator: ".")
  }

  public func dequantize(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> DequantizedMatrix {
    guard tensors.contains(where: { $0.nameSuffix == "biases" }) else {
      throw WeightDecodingError.unsupported(module: module, storage: storage, reason: "an MLX mode without biases (mxfp4/nvfp4/mxfp8)")
    }
    return try MLXAffine.dequantize(tensors, groupSize: geometry.groupSize ?? 0, bits: geometry.bits ?? 0)
  }

  public func describe(_ group: WeightGroup, entries: (String) -> TensorEntry?, config: FormatConfig) -> String {
    "MLX affine (U32 words, scales, biases)"
  }

  /// Header-only, so the bit width is assumed 4 (8 elements per word); the decoder resolves the real one.
  public func logicalElementCount(_ group: WeightGroup, entries: (String) -> TensorEntry?) -> Int {
    guard let weight = entries(group.parts["weight"] ?? ""), entries(group.parts["scales"] ?? "") != nil,
      let rows = weight.shape.first, let words = weight.shape.last
    else { return 0 }
    return rows * words * 8
  }
}

/// Writing MLX affine (`weight` U32, `scales` and `biases` in the weight dtype), as `mx.quantize` does.
public struct MLXAffineLayout: GroupLayout {
  public let bits: Int
  public let groupSize: Int

  public init(bits: Int, groupSize: Int) { (self.bits, self.groupSize) = (bits, groupSize) }

  public var storage: WeightStorage { .mlxAffine }
  public var consumer: ConsumerFamily { .mlx }
  public var name: String { "mlx-affine" }
  public var description: String { "MLX affine \(bits)-bit group \(groupSize)" }

  public func plannedTensors(rows: Int, columns: Int, weightDType: DType, scaleDType: DType) -> [(suffix: String, dtype: DType, shape: [Int])] {
    [
      ("weight", .uint32, [rows, columns * bits / 32]),
      ("scales", weightDType, [rows, columns / groupSize]),
      ("biases", weightDType, [rows, columns / groupSize]),
    ]
  }

  public func quantize(_ weight: WeightMatrix, search: Bool, scaleDType: DType, tensorAmax: Float?) throws(FormatQuantizationError)
    -> [PackedTensor]
  {
    let result = search
      ? try MLXAffine.quantizeWithClipSearch(weight, groupSize: groupSize, bits: bits)
      : try MLXAffine.quantize(weight, groupSize: groupSize, bits: bits)
    return MLXAffine.tensors(result)
  }

  public var recipeSiblings: [(text: String, format: GroupFormat)] {
    MLXAffine.supportedBits.sorted().flatMap { bits in
      GroupFormat.groupSizes.map { g in ("mlx-affine:bits=\(bits),group=\(g)", .mlxAffine(bits: bits, groupSize: g)) }
    }
  }

  public static let targetNames: [GroupTargetName] = [
    GroupTargetName(
      "mlx-affine", help: "MLX affine, --bits 4|8, --group-size (default 64)",
      refines: TargetRefinement.fourBit.union([.groupSize, .bits])
    ) { o in MLXAffine.supportedBits.contains(o.bits) ? .mlxAffine(bits: o.bits, groupSize: o.groupSize ?? 64) : nil }
  ]
}

extension GroupFormat {
  /// MLX affine.
  public static func mlxAffine(bits: Int, groupSize: Int) -> GroupFormat {
    GroupFormat(MLXAffineLayout(bits: bits, groupSize: groupSize))
  }
}
