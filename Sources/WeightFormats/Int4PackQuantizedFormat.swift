import JSON
import Quantization
import SafeTensors
import TensorCore

extension WeightStorage {
  /// compressed-tensors `pack-quantized` int4: `weight_packed` I32 + `weight_scale` + `weight_shape`.
  public static let int4PackQuantized = WeightStorage(rawValue: "int4-pack-quantized")
}

/// compressed-tensors `pack-quantized` int4 (W4A16): eight nibbles per I32 word along the row, scales in the
/// weight dtype, `weight_zero_point` packed along the output dimension when asymmetric. The group size is
/// `weight_shape[1] / weight_scale.shape[1]`; only 4-bit packing and a `weight_g_idx` of `i / g` (no act-order)
/// decode.
public struct Int4PackQuantizedFormat: WeightFormat {
  public init() {}
  public var storage: WeightStorage { .int4PackQuantized }
  public var mainRole: String { "weight_packed" }
  public var declaringQuantMethods: Set<String> { ["compressed-tensors"] }
  public var compressedTensorsFormat: String? { "pack-quantized" }

  public func mayClaim(amongLeaves leaves: Set<String>) -> Bool {
    leaves.contains("weight_packed") && leaves.contains("weight_scale")
  }

  public func claim(_ module: inout ModuleTensors) -> [WeightGroup] {
    guard let packed = module.entry("weight_packed"), packed.dtype == .int32, module.has("weight_scale") else { return [] }
    return [module.claim(storage, roles: ["weight_packed", "weight_scale", "weight_shape", "weight_zero_point", "weight_g_idx"])]
  }

  public func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry {
    let shapeEntry = try entry("weight_shape", of: group, in: store)
    let scale = try entry("weight_scale", of: group, in: store)
    guard shapeEntry.dtype == .int64 || shapeEntry.dtype == .int32, shapeEntry.shape == [2] else {
      throw bad(group, "weight_shape should be I64 [2], found \(shapeEntry.dtype) \(shapeEntry.shape)")
    }
    let bytes = try store.bytes(of: shapeEntry.name).copy()
    let dims = shapeEntry.dtype == .int64
      ? [Int(truncatingIfNeeded: Self.int64(bytes, 0)), Int(truncatingIfNeeded: Self.int64(bytes, 1))]
      : [Int(Int32(truncatingIfNeeded: Self.int64(bytes, 0, width: 4))), Int(Int32(truncatingIfNeeded: Self.int64(bytes, 1, width: 4)))]
    guard dims[0] > 0, dims[1] > 0, scale.shape.count == 2, scale.shape[0] == dims[0], scale.shape[1] > 0,
      dims[1] % scale.shape[1] == 0
    else { throw bad(group, "weight_shape \(dims) does not match weight_scale \(scale.shape)") }
    return Self.matrix(dims, scale.dtype, group: dims[1] / scale.shape[1], bits: 4)
  }

  /// Little-endian integer `index` of `width` bytes.
  static func int64(_ bytes: [UInt8], _ index: Int, width: Int = 8) -> UInt64 {
    var bits: UInt64 = 0
    for k in 0..<width { bits |= UInt64(bytes[width * index + k]) << UInt64(8 * k) }
    return bits
  }

  public func dequantize(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> DequantizedMatrix {
    try checkDecodable(tensors, geometry: geometry, module: module)
    return try Int4PackQuantized.dequantize(tensors, groupSize: geometry.groupSize ?? 0)
  }

  /// Symmetric weights (no `weight_zero_point`) are `(code − 8) · scale` per group: they repack into GGUF Q4_0
  /// unchanged when the group is 32.
  public func storesSymmetricInt4Groups(_ group: WeightGroup) -> Bool { group.parts["weight_zero_point"] == nil }

  public func symmetricInt4Groups(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws
    -> Int4PackQuantized.SymmetricGroups?
  {
    try checkDecodable(tensors, geometry: geometry, module: module)
    return try Int4PackQuantized.symmetricGroups(tensors, groupSize: geometry.groupSize ?? 0)
  }

  /// What both readers need: 4-bit packing, and group indices that are only `i / g` (no act-order).
  private func checkDecodable(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws {
    if let packed = tensors.first(where: { $0.nameSuffix == "weight_packed" }), packed.shape.count == 2,
      packed.shape[1] * 8 != geometry.columns
    {
      throw WeightDecodingError.unsupported(module: module, storage: storage, reason: "pack-quantized with other than 4 bits")
    }
    if let gIndex = tensors.first(where: { $0.nameSuffix == "weight_g_idx" }) {
      try WeightDecoding.checkTrivialGroupIndex(gIndex, groupSize: geometry.groupSize ?? 1, module: module, storage: storage)
    }
  }

  public func describe(_ group: WeightGroup, entries: (String) -> TensorEntry?, config: FormatConfig) -> String {
    let zero = group.parts["weight_zero_point"] != nil ? "asymmetric" : "symmetric"
    var groupSize = 0
    if let packed = entries(group.parts["weight_packed"] ?? ""), let scale = entries(group.parts["weight_scale"] ?? ""),
      let words = packed.shape.last, let groups = scale.shape.last, groups > 0
    {
      groupSize = words * 8 / groups
    }
    return "int4 packed in I32, \(zero), group \(groupSize)"
  }

  public func logicalElementCount(_ group: WeightGroup, entries: (String) -> TensorEntry?) -> Int {
    elements(group, entries, "weight_packed", times: 8)
  }
}

/// Writing compressed-tensors `pack-quantized` int4 (`weight_packed`, `weight_scale`, `weight_shape`,
/// `weight_zero_point` when asymmetric), exactly as compressed-tensors 0.20 packs it.
public struct Int4PackQuantizedLayout: GroupLayout {
  public let groupSize: Int
  public let symmetry: Int4Symmetry

  public init(groupSize: Int, symmetry: Int4Symmetry) { (self.groupSize, self.symmetry) = (groupSize, symmetry) }

  public var storage: WeightStorage { .int4PackQuantized }
  public var consumer: ConsumerFamily { .compressedTensors }
  public var name: String { symmetry == .symmetric ? "int4-g128" : "int4-asym" }
  public var description: String { "int4 \(symmetry.rawValue) group \(groupSize) (compressed-tensors pack-quantized)" }

  public func additionalUnsupportedReason(rows: Int, columns: Int) -> String? {
    columns % 8 != 0 ? "input dimension \(columns) is not a multiple of 8" : nil
  }

  public func plannedTensors(rows: Int, columns: Int, weightDType: DType, scaleDType: DType) -> [(suffix: String, dtype: DType, shape: [Int])] {
    var out: [(suffix: String, dtype: DType, shape: [Int])] = [
      ("weight_packed", .int32, [rows, columns / 8]),
      ("weight_scale", scaleDType, [rows, columns / groupSize]),
      ("weight_shape", .int64, [2]),
    ]
    if symmetry == .asymmetric { out.append(("weight_zero_point", .int32, [(rows + 7) / 8, columns / groupSize])) }
    return out
  }

  public func quantize(_ weight: WeightMatrix, search: Bool, scaleDType: DType, tensorAmax: Float?) throws(FormatQuantizationError)
    -> [PackedTensor]
  {
    let result = search
      ? try Int4GroupQuantizer.quantizeWithClipSearch(weight, groupSize: groupSize, symmetry: symmetry, scaleDType: scaleDType)
      : try Int4GroupQuantizer.quantize(weight, groupSize: groupSize, symmetry: symmetry, scaleDType: scaleDType)
    return Int4PackQuantized.tensors(result)
  }

  /// Per-row tensors are cut, `weight_zero_point` (8 rows per word) by word rows, `weight_shape` rewritten.
  public func rowSlice(_ tensors: [PackedTensor], rows: Int, range: Range<Int>) -> [PackedTensor] {
    tensors.map { tensor -> PackedTensor in
      var copy = tensor
      switch tensor.nameSuffix {
      case "weight_shape":
        let columns = tensor.bytes.count == 16 ? Int64(bitPattern: Int4PackQuantizedFormat.int64(tensor.bytes, 1)) : 0
        copy.bytes = [Int64(range.count), columns].flatMap { value in
          (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: value) >> UInt64(8 * $0)) }
        }
      case "weight_zero_point":
        let wordRows = (rows + 7) / 8
        let rowBytes = tensor.bytes.count / max(1, wordRows)
        let first = range.lowerBound / 8
        let last = (range.upperBound + 7) / 8
        copy.bytes = Array(tensor.bytes[(first * rowBytes)..<(last * rowBytes)])
        copy.shape[0] = last - first
      default:
        copy = GroupFormat.rowSlice(tensor, rows: rows, range: range)
      }
      return copy
    }
  }

  public var compressedTensorsScheme: (format: String, weights: JSONValue)? {
    (
      Int4PackQuantizedFormat().compressedTensorsFormat!,
      .object(members: [
        ("num_bits", 4), ("type", "int"), ("symmetric", .bool(symmetry == .symmetric)),
        ("group_size", .number(JSONNumber(groupSize))), ("strategy", "group"), ("dynamic", false),
      ])
    )
  }

  public var recipeSiblings: [(text: String, format: GroupFormat)] {
    GroupFormat.groupSizes.map { g in
      (symmetry == .symmetric ? "int4-g\(g)" : "int4-asym:group=\(g)", .int4(groupSize: g, symmetry: symmetry))
    }
  }

  public static let targetNames: [GroupTargetName] = [
    GroupTargetName("int4-g128", help: "compressed-tensors pack-quantized, symmetric, group 128", refines: TargetRefinement.fourBit, fixedGroupSize: 128, aliases: ["W4A16"]) { _ in
      .int4(groupSize: 128, symmetry: .symmetric)
    },
    GroupTargetName("int4-g64", help: "the same, group 64", refines: TargetRefinement.fourBit, fixedGroupSize: 64) { _ in .int4(groupSize: 64, symmetry: .symmetric) },
    GroupTargetName("int4-g32", help: "the same, group 32", refines: TargetRefinement.fourBit, fixedGroupSize: 32) { _ in .int4(groupSize: 32, symmetry: .symmetric) },
    GroupTargetName(
      "int4-asym", help: "with zero points, --group-size (default 128)", refines: TargetRefinement.fourBit.union([.groupSize]),
      aliases: ["W4A16_ASYM"]
    ) { o in .int4(groupSize: o.groupSize ?? 128, symmetry: .asymmetric) },
  ]
}

extension GroupFormat {
  /// compressed-tensors `pack-quantized` int4.
  public static func int4(groupSize: Int, symmetry: Int4Symmetry) -> GroupFormat {
    GroupFormat(Int4PackQuantizedLayout(groupSize: groupSize, symmetry: symmetry))
  }
}
