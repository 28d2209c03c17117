import JSON
import Quantization
import SafeTensors
import TensorCore

extension WeightStorage {
  /// compressed-tensors `mxfp4-pack-quantized`: `weight_packed` U8 + `weight_scale` U8 (E8M0).
  public static let mxfp4CompressedTensors = WeightStorage(rawValue: "mxfp4-pack-quantized")
  /// gpt-oss MXFP4: `<name>_blocks` U8 + `<name>_scales` U8.
  public static let mxfp4GptOss = WeightStorage(rawValue: "mxfp4-gpt-oss")
}

/// MXFP4 (E2M1 elements, one E8M0 scale per 32 along the row) in its two checkpoint layouts:
///
/// - compressed-tensors `mxfp4-pack-quantized`: `weight_packed` U8 `[out, in/2]` (low nibble = even element),
///   `weight_scale` U8 `[out, in/32]`; decoded to BF16 as its decompressor does. Stacked experts `[E, out, in/2]`
///   (what Smelt's lossless repack of gpt-oss's fused experts writes) fold into rows.
/// - gpt-oss: `<stem>_blocks` U8 `[..., out, in/32, 16]` + `<stem>_scales` U8 `[..., out, in/32]`, experts stacked
///   in the leading dimensions (`mlp.experts.gate_up_proj_blocks` `[E, 2I, H/32, 16]`), which fold into rows.
public struct MXFP4WeightFormat: WeightFormat {
  public enum Layout: Sendable {
    case compressedTensors
    case gptOss
  }

  public let layout: Layout
  public static let compressedTensors = MXFP4WeightFormat(layout: .compressedTensors)
  public static let gptOss = MXFP4WeightFormat(layout: .gptOss)

  public var storage: WeightStorage { layout == .gptOss ? .mxfp4GptOss : .mxfp4CompressedTensors }
  public var mainRole: String { layout == .gptOss ? "blocks" : "weight_packed" }
  public var declaringQuantMethods: Set<String> { layout == .gptOss ? ["mxfp4"] : ["compressed-tensors"] }
  public var compressedTensorsFormat: String? { layout == .gptOss ? nil : "mxfp4-pack-quantized" }

  public func mayClaim(amongLeaves leaves: Set<String>) -> Bool {
    switch layout {
    case .compressedTensors: leaves.contains("weight_packed") && leaves.contains("weight_scale")
    case .gptOss: leaves.contains { $0.hasSuffix("_blocks") }
    }
  }

  public func claim(_ module: inout ModuleTensors) -> [WeightGroup] {
    switch layout {
    case .compressedTensors:
      guard let packed = module.entry("weight_packed"), packed.dtype == .uint8, module.has("weight_scale") else { return [] }
      return [module.claim(storage, roles: ["weight_packed", "weight_scale"])]
    case .gptOss:
      // `<stem>_blocks` + `<stem>_scales` (e.g. experts.gate_up_proj_blocks); the group is named by the stem.
      var groups: [WeightGroup] = []
      for leaf in module.unclaimedLeaves where leaf.hasSuffix("_blocks") {
        let stem = String(leaf.dropLast("_blocks".count))
        guard module.has(stem + "_scales") else { continue }
        groups.append(
          module.claim(storage, modulePath: module.name(stem), leavesByRole: ["blocks": leaf, "scales": stem + "_scales"]))
      }
      return groups
    }
  }

  public func logicalName(of group: WeightGroup) -> String {
    layout == .gptOss ? group.modulePath : group.modulePath + ".weight"
  }

  public func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry {
    switch layout {
    case .compressedTensors:
      let packed = try entry("weight_packed", of: group, in: store)
      guard packed.shape.count >= 2 else { throw bad(group, "weight_packed should be U8 [..., out, in/2], found \(packed.shape)") }
      let (columns, overflow) = packed.shape[packed.shape.count - 1].multipliedReportingOverflow(by: 2)
      guard !overflow else { throw bad(group, "weight_packed shape \(packed.shape) overflows") }
      return Self.matrix(Array(packed.shape.dropLast()) + [columns], .bfloat16, group: MXFP4.blockSize, bits: 4)
    case .gptOss:
      let blocks = try entry("blocks", of: group, in: store)
      guard blocks.shape.count >= 3, blocks.shape.last == 16 else {
        throw bad(group, "blocks should be U8 [..., out, in/32, 16], found \(blocks.shape)")
      }
      let (columns, overflow) = blocks.shape[blocks.shape.count - 2].multipliedReportingOverflow(by: MXFP4.blockSize)
      guard !overflow else { throw bad(group, "blocks shape \(blocks.shape) overflows") }
      return Self.matrix(Array(blocks.shape.dropLast(2)) + [columns], .bfloat16, group: MXFP4.blockSize, bits: 4)
    }
  }

  public func dequantize(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> DequantizedMatrix {
    switch layout {
    case .compressedTensors:
      // Stacked expert tensors [E, out, in/2] (Smelt's repack of fused experts) fold into the rows.
      return try MXFP4.dequantizeCompressedTensors(tensors.map { tensor -> PackedTensor in
        var copy = tensor
        if tensor.shape.count > 2 { copy.shape = [tensor.shape.dropLast().reduce(1, *), tensor.shape[tensor.shape.count - 1]] }
        return copy
      })
    case .gptOss:
      // Stacked expert tensors [E, out, in/32, 16] fold the leading dimensions into the rows.
      let folded = tensors.map { tensor -> PackedTensor in
        var copy = tensor
        let keep = tensor.nameSuffix == "blocks" ? 2 : 1
        if tensor.shape.count > keep + 1 {
          let lead = tensor.shape.dropLast(keep).reduce(1, *)
          copy.shape = [lead] + tensor.shape.suffix(keep)
        }
        return copy
      }
      return try MXFP4.dequantizeGptOss(folded)
    }
  }

  /// Both layouts store MXFP4 codes as adjacent pairs (even element low) and E8M0 bytes: the codes of a
  /// stacked `[E, out, in]` weight are its `E · out` rows.
  public var storesMXFP4Codes: Bool { true }

  public func microscaledCodes(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> MXFP4.Result? {
    let (packedRole, scaleRole) = layout == .gptOss ? ("blocks", "scales") : ("weight_packed", "weight_scale")
    let count = geometry.shape.reduce(1, *)
    guard let columns = geometry.shape.last, columns > 0, let packed = tensors.first(where: { $0.nameSuffix == packedRole }),
      let scales = tensors.first(where: { $0.nameSuffix == scaleRole }), packed.dtype == .uint8, scales.dtype == .uint8,
      packed.bytes.count * 2 == count, scales.bytes.count * MXFP4.blockSize == count
    else {
      throw WeightDecodingError.badLayout(
        module: module, storage: storage, reason: "\(packedRole) / \(scaleRole) sizes do not match \(geometry.shape)")
    }
    return MXFP4.result(packed: packed.bytes, scales: scales.bytes, rows: count / columns, columns: columns)
  }

  public func describe(_ group: WeightGroup, entries: (String) -> TensorEntry?, config: FormatConfig) -> String {
    layout == .gptOss
      ? "MXFP4 (E2M1 + E8M0 per 32), gpt-oss blocks/scales" : "MXFP4 (E2M1 + E8M0 per 32), compressed-tensors"
  }

  public func logicalElementCount(_ group: WeightGroup, entries: (String) -> TensorEntry?) -> Int {
    elements(group, entries, mainRole, times: 2)
  }

  /// 4-bit floats with microscales.
  public func precisionFamily(dtype: DType?) -> PrecisionFamily { .fp4 }
}

/// Writing MXFP4: `.compressedTensors` writes `mxfp4-pack-quantized` with compressed-tensors' scale rule,
/// `.gptOss` the gpt-oss `weight_blocks`/`weight_scales` layout with triton_kernels' (transformers') rule.
public struct MXFP4Layout: GroupLayout {
  public let rule: MXFP4.ScaleRule

  public init(rule: MXFP4.ScaleRule) { self.rule = rule }

  public var storage: WeightStorage { rule == .gptOss ? .mxfp4GptOss : .mxfp4CompressedTensors }
  public var consumer: ConsumerFamily { rule == .gptOss ? .gptOss : .compressedTensors }
  public var name: String { rule == .gptOss ? "mxfp4-gpt-oss" : "mxfp4" }
  public var groupSize: Int { MXFP4.blockSize }
  public var description: String {
    rule == .gptOss ? "MXFP4 (gpt-oss blocks/scales)" : "MXFP4 (compressed-tensors mxfp4-pack-quantized)"
  }

  public func tensorName(module: String, suffix: String) -> String {
    rule == .gptOss ? module + ".weight_" + suffix : module + "." + suffix
  }

  public func plannedTensors(rows: Int, columns: Int, weightDType: DType, scaleDType: DType) -> [(suffix: String, dtype: DType, shape: [Int])] {
    let blocks = columns / groupSize
    if rule == .gptOss { return [("blocks", .uint8, [rows, blocks, 16]), ("scales", .uint8, [rows, blocks])] }
    return [("weight_packed", .uint8, [rows, columns / 2]), ("weight_scale", .uint8, [rows, blocks])]
  }

  public func quantize(_ weight: WeightMatrix, search: Bool, scaleDType: DType, tensorAmax: Float?) throws(FormatQuantizationError)
    -> [PackedTensor]
  {
    tensors(search ? try MXFP4.quantizeWithClipSearch(weight, rule: rule) : try MXFP4.quantize(weight, rule: rule))
  }

  /// Codes and scales in this layout's tensors (suffix-named): a quantizer's output or a lossless repack's.
  public func tensors(_ codes: MXFP4.Result) -> [PackedTensor] {
    rule == .gptOss ? MXFP4.gptOssTensors(codes) : MXFP4.compressedTensorsTensors(codes)
  }

  public var compressedTensorsScheme: (format: String, weights: JSONValue)? {
    guard rule == .compressedTensors else { return nil }
    return (
      MXFP4WeightFormat.compressedTensors.compressedTensorsFormat!,
      .object(members: [
        ("num_bits", 4), ("type", "float"), ("symmetric", true), ("group_size", 32), ("strategy", "group"),
        ("dynamic", false), ("scale_dtype", "torch.uint8"),
      ])
    )
  }

  public static let targetNames: [GroupTargetName] = [
    GroupTargetName("mxfp4", help: "MXFP4, compressed-tensors", refines: TargetRefinement.fourBit, aliases: ["MXFP4"]) { _ in .mxfp4(.compressedTensors) },
    // transformers' `Mxfp4HfQuantizer` swaps gpt-oss's own expert modules, so no engine reads gpt-oss blocks on
    // another model.
    GroupTargetName("mxfp4-gpt-oss", help: "MXFP4, gpt-oss blocks/scales (gpt-oss models)", refines: TargetRefinement.fourBit, loadedOnly: ["GptOssForCausalLM"]) { _ in
      .mxfp4(.gptOss)
    },
  ]
}

extension GroupFormat {
  /// MXFP4 in `rule`'s layout and arithmetic.
  public static func mxfp4(_ rule: MXFP4.ScaleRule) -> GroupFormat { GroupFormat(MXFP4Layout(rule: rule)) }
}
