import Checkpoint
import Quantization
import SafeTensors
import TensorCore
import WeightFormats

/// The target of a lossless repack: a layout that holds the source's values exactly (see `LosslessRepack`).
public enum RepackLayout: Sendable, Hashable, CustomStringConvertible {
  /// MXFP4 codes into an MXFP4 layout (compressed-tensors `mxfp4-pack-quantized` or gpt-oss blocks).
  case mxfp4(GroupFormat)
  /// MXFP4 codes into FP8 E4M3 blocks with power-of-two (ue8m0) scales; exact where a block's exponent spread fits.
  case fp8(FP8Scheme, FP8ScaleRule)

  public var description: String {
    switch self {
    case .mxfp4(let format): return "repack into \(format.description), lossless"
    case .fp8(let scheme, _): return "repack into FP8 E4M3 \(scheme) ue8m0, exact where a block's exponent spread fits E4M3"
    }
  }
}

extension ConversionPlan {
  /// The repack job of a selected weight, when its format stores MXFP4 codes and the target can hold them:
  /// `.some(nil)` when the target is the source's own layout (the tensors are copied), `nil` when no repack
  /// applies (the weight is dequantized and requantized as usual).
  ///
  /// Stacked experts (`[E, out, in]`, gpt-oss) keep their leading dimension in every output tensor of an MXFP4
  /// layout; FP8 blocks take 2-D weights only (DeepSeek-V4's per-expert FP4), so stacked experts stay as they are.
  static func repackJob(
    _ group: WeightGroup, geometry: WeightGeometry, name: String, target: ConversionTarget, context: JobContext,
    sourceBytes: Int
  ) -> ConversionJob?? {
    guard group.format.storesMXFP4Codes, geometry.shape.count >= 2, let columns = geometry.shape.last,
      columns % MXFP4.blockSize == 0
    else { return nil }
    let out = geometry.shape[geometry.shape.count - 2]
    let lead = Array(geometry.shape.dropLast(2))
    let rows = geometry.shape.dropLast().reduce(1, *)
    // `<module>.weight` for 2-D layouts; gpt-oss's stacked experts are named by their stem.
    let module = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : name
    let layout: RepackLayout
    var outputs: [PlannedTensor]
    switch target {
    case .group(let format):
      guard let mxfp4 = format.layout(as: MXFP4Layout.self) else { return nil }
      if mxfp4.rule == .gptOss && group.storage == .mxfp4GptOss { return .some(nil) }
      layout = .mxfp4(format)
      outputs = format.outputs(module: module, rows: out, columns: columns, weightDType: .bfloat16, scaleDType: .bfloat16)
    case .fp8(let fp8):
      // 2-D weights only: no FP8 block reader takes stacked experts.
      guard case .block = fp8.granularity, fp8.ue8m0Scales, lead.isEmpty else { return nil }
      let ctNaming = fp8.usesCompressedTensorsNaming(asked: context.compressedTensors)
      let scaleDType = fp8.scaleDType(weightDType: context.modelDType, compressedTensorsNaming: ctNaming)
      guard let planned = try? fp8.plannedTensors(
        module: module, weightName: module + ".weight", rows: out, columns: columns, scaleDType: scaleDType,
        compressedTensorsNaming: ctNaming)
      else { return nil }
      layout = .fp8(fp8.granularity, fp8.scaleRule(storageDType: scaleDType))
      outputs = planned
    default:
      return nil
    }
    for i in outputs.indices where outputs[i].shape.count >= 2 { outputs[i].shape = lead + outputs[i].shape }
    return ConversionJob(
      group: group, action: .repack(layout), outputs: outputs, sourceByteCount: sourceBytes, rows: rows, columns: columns)
  }
}
