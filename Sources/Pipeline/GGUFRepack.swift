import GGML
import Quantization
import SafeTensors
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

  /// The repack that writes rows of each expert of a fused `[E, out, in]` source weight as `type` (gpt-oss's
  /// MXFP4 `gate_up_proj` / `down_proj` → MXFP4), or nil.
  static func applicable(to type: GGMLType, fusedExperts source: (group: WeightGroup, geometry: WeightGeometry)) -> GGUFRepack? {
    guard type == .mxfp4, source.group.format.storesMXFP4Codes, source.geometry.shape.count == 3,
      source.geometry.shape[2] % GGMLRepack.blockSize == 0
    else { return nil }
    return .mxfp4
  }

  /// Repacks rows `offset, offset + stride, ...` of expert `expert` of a fused `[E, out, in]` source weight
  /// (gpt-oss's interleaved gate/up halves), reading only that expert's bytes of each stored tensor.
  func blocks(
    ofExpert expert: Int, stride: Int, offset: Int, group: WeightGroup, geometry: WeightGeometry, in store: any TensorStore
  ) throws -> GGMLRepack.Blocks {
    guard self == .mxfp4, geometry.shape.count == 3 else { preconditionFailure("only MXFP4 repacks fused experts") }
    let (experts, rows, columns) = (geometry.shape[0], geometry.shape[1], geometry.shape[2])
    let module = group.modulePath
    // Every stored tensor of a microscaled layout has the expert index outermost: expert e is its e-th slab.
    let slabs = try group.parts.sorted { $0.key < $1.key }.map { role, name in
      let entry = try store.requireEntry(name)
      guard entry.shape.first == experts, entry.byteCount % experts == 0 else {
        throw ConversionError.unsupported(tensor: module, reason: "'\(name)' \(entry.shape) does not hold \(experts) experts outermost")
      }
      let slab = entry.byteCount / experts
      let bytes = try store.bytes(of: name, range: (expert * slab)..<((expert + 1) * slab))
      defer { bytes.releasePages() }
      return PackedTensor(nameSuffix: role, dtype: entry.dtype, shape: [1] + entry.shape.dropFirst(), bytes: bytes.copy())
    }
    let one = WeightGeometry(shape: [rows, columns], rows: rows, columns: columns, dtype: geometry.dtype, groupSize: geometry.groupSize)
    guard let codes = try group.format.microscaledCodes(slabs, geometry: one, module: module) else {
      throw ConversionError.unsupported(tensor: module, reason: "its format holds no MXFP4 codes")
    }
    let perRow = columns / GGMLRepack.blockSize
    let picked = Array(Swift.stride(from: offset, to: rows, by: stride))
    if let bad = codes.scales.firstIndex(of: 0xFF) {
      throw Self.nonFinite(module, group: expert * rows * perRow + bad, columns: columns, value: "NaN (E8M0 0xFF)")
    }
    return GGMLRepack.mxfp4(
      codes: picked.flatMap { codes.codes[($0 * columns)..<(($0 + 1) * columns)] },
      e8m0Scales: picked.flatMap { codes.scales[($0 * perRow)..<(($0 + 1) * perRow)] }, rows: picked.count, columns: columns)
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
