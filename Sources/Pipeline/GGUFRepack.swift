import GGML
import Quantization
import WeightFormats

/// A lossless repack into a GGUF tensor: when the ggml type llama-quantize's choice (or a `--rule`) gives a
/// tensor holds its source weights' stored codes and scales as they are, the codes move and nothing is
/// re-rounded. ggml's own quantizer, fed the dequantized values, would round them again: Q4_0's
/// `d = max / −8` equals the source scale only in groups that hold the code −8, so a requantized int4 expert
/// loses precision it never had to.
///
/// The ggml side of each repack is `GGMLRepack`; the source side is the weight format's own reader
/// (`WeightFormat.symmetricInt4Groups`, `WeightFormat.microscaledCodes`).
///
/// The raw value is the stable name `--json` and resume journals record.
public enum GGUFRepack: String, Sendable, Hashable, CustomStringConvertible {
  /// Symmetric int4 groups of 32 (compressed-tensors `pack-quantized`: Kimi K2-Thinking's and K2.5's routed
  /// experts) → Q4_0. Exact where a group's scale is an F16 value.
  case symmetricInt4ToQ4_0 = "int4-q4_0"
  /// MXFP4 codes with E8M0 scales (compressed-tensors `mxfp4-pack-quantized`, gpt-oss blocks, FP4 + E8M0)
  /// → ggml MXFP4. Always exact.
  case mxfp4 = "mxfp4"

  public var description: String {
    switch self {
    case .symmetricInt4ToQ4_0: "int4 g32 codes and scales moved into q4_0"
    case .mxfp4: "MXFP4 codes and scales moved into mxfp4"
    }
  }

  /// The repack that writes `sources` (every weight of one GGUF tensor, 2-D) as `type`, or nil when their
  /// values need ggml's quantizer.
  static func applicable(to type: GGMLType, sources: [(group: WeightGroup, geometry: WeightGeometry)]) -> GGUFRepack? {
    guard !sources.isEmpty,
      sources.allSatisfy({ $0.geometry.shape.count == 2 && $0.geometry.columns % GGMLRepack.blockSize == 0 })
    else { return nil }
    switch type {
    case .q4_0:
      let holds = sources.allSatisfy { source in
        source.group.format.storesSymmetricInt4Groups(source.group) && source.geometry.groupSize == GGMLRepack.blockSize
          && source.geometry.bits == 4
      }
      return holds ? .symmetricInt4ToQ4_0 : nil
    case .mxfp4:
      return sources.allSatisfy { $0.group.format.storesMXFP4Codes } ? .mxfp4 : nil
    default:
      return nil
    }
  }

  /// Repacks one whole source weight (`rows × columns`, row-major blocks of 32).
  ///
  /// - Throws: `ConversionError.numeric` for a non-finite scale (NaN E8M0 0xFF, an infinite or NaN int4
  ///   scale, or one F16 overflows): no ggml block encodes it, as for any other source value.
  func blocks(of group: WeightGroup, geometry: WeightGeometry, in store: any TensorStore) throws -> GGMLRepack.Blocks {
    let tensors = try WeightDecoding.packedTensors(of: group, in: store)
    let module = group.modulePath
    switch self {
    case .symmetricInt4ToQ4_0:
      guard let int4 = try group.format.symmetricInt4Groups(tensors, geometry: geometry, module: module) else {
        throw ConversionError.unsupported(tensor: module, reason: "its format holds no symmetric int4 groups")
      }
      if let bad = int4.scales.firstIndex(where: { !$0.isFinite }) {
        throw Self.nonFinite(module, group: bad, columns: int4.columnCount, value: "\(int4.scales[bad])")
      }
      // Past F16's largest finite value (65504, rounding included) Q4_0's `d` is infinite and the block
      // decodes to ±inf (NaN for code 8): not a rounding, so refused like a non-finite source.
      if let bad = int4.scales.firstIndex(where: { !GGMLScalars.float(halfBits: GGMLScalars.halfBits($0)).isFinite }) {
        throw Self.nonFinite(
          module, group: bad, columns: int4.columnCount, value: "\(int4.scales[bad]) (infinite as Q4_0's F16 d)")
      }
      return GGMLRepack.q4_0(offsetCodes: int4.offsetCodes, scales: int4.scales, rows: int4.rowCount, columns: int4.columnCount)
    case .mxfp4:
      guard let codes = try group.format.microscaledCodes(tensors, geometry: geometry, module: module) else {
        throw ConversionError.unsupported(tensor: module, reason: "its format holds no MXFP4 codes")
      }
      if let bad = codes.scales.firstIndex(of: 0xFF) {
        throw Self.nonFinite(module, group: bad, columns: codes.columnCount, value: "NaN (E8M0 0xFF)")
      }
      return GGMLRepack.mxfp4(codes: codes.codes, e8m0Scales: codes.scales, rows: codes.rowCount, columns: codes.columnCount)
    }
  }

  private static func nonFinite(_ module: String, group: Int, columns: Int, value: String) -> ConversionError {
    let perRow = columns / GGMLRepack.blockSize
    return ConversionError.numeric(
      tensor: module,
      reason: "scale \(value) of the group at row \(group / perRow), columns \(group % perRow * GGMLRepack.blockSize)..<\(group % perRow * GGMLRepack.blockSize + GGMLRepack.blockSize) in the source; GGUF has no encoding for NaN/Inf — repair the checkpoint")
  }
}
