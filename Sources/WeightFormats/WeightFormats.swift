import Quantization
import SafeTensors
import TensorCore

/// The registry: every weight format Smelt reads, in detection order (earlier formats claim their tensors
/// first; `plain` takes whatever is left), and every `--to` name it writes. A new format is one file declaring
/// its `WeightFormat` (reading) and, when Smelt writes it, its writing side (a `GroupLayout`; FP8's is
/// `FP8Layout`, the casts are `PlainFormat.castTargetNames`), plus its lines here — see
/// formats/weight-formats.md. The quantizer kernels live in Quantization.
public enum WeightFormats {
  /// Every format, in detection order.
  public static let all: [any WeightFormat] = [
    FP8WeightFormat.deepSeek,
    FP8WeightFormat.compressedTensors,
    FP8WeightFormat.deepSeekV4,
    FP4E8M0Format(),
    Int4PackQuantizedFormat(),
    NVFP4WeightFormat.compressedTensors,
    MXFP4WeightFormat.compressedTensors,
    GPTQFormat(),
    MLXAffineFormat(),
    NVFP4WeightFormat.modelOpt,
    MXFP4WeightFormat.gptOss,
  ] + GGMLWeightFormat.all + [
    PlainFormat(),
  ]

  /// Every group layout Smelt writes, in `--to` help order.
  public static let groupLayouts: [any GroupLayout.Type] = [
    Int4PackQuantizedLayout.self,
    GPTQLayout.self,
    MLXAffineLayout.self,
    MXFP4Layout.self,
    NVFP4Layout.self,
  ]

  /// The `--to` names of the plain casts, in help order.
  public static let castTargetNames = PlainFormat.castTargetNames

  /// The `--to` names of the scaled FP8 layouts, in help order.
  public static let fp8TargetNames = FP8Layout.targetNames

  /// The `--to` names of every group layout, in help order.
  public static let groupTargetNames: [GroupTargetName] = groupLayouts.flatMap { $0.targetNames }

  private static let byStorage: [WeightStorage: any WeightFormat] = Dictionary(
    all.map { ($0.storage, $0) }, uniquingKeysWith: { first, _ in first })

  /// The format of `storage` (every `WeightStorage` a group carries comes from a registered format).
  public static func format(of storage: WeightStorage) -> any WeightFormat {
    guard let format = byStorage[storage] else { preconditionFailure("unregistered weight storage \(storage)") }
    return format
  }
}

/// The one weight decoder: any group of any registered format to F32, over any `TensorStore`. Used by
/// `convert` (dequantizing and re-quantizing), `validate`, `forward` (through the reference model's weight
/// provider), `verify --deep` and `inspect`.
///
/// Values are exactly what each format's own reference decompressor returns (see `WeightGeometry.dtype`),
/// widened to F32, so `smelt convert IN OUT --to f32` is that decompressor's output bit for bit. FP8 block
/// weights of any grid (128×128, 1×128, ragged edge blocks) and per-channel/per-tensor scales decode by row
/// ranges; the packed 4-bit layouts decode whole.
public enum WeightDecoding {
  /// True for layouts that decode a row range without reading the rest.
  public static func streamsRows(_ storage: WeightStorage) -> Bool { WeightFormats.format(of: storage).streamsRows }

  /// The logical weight name: the tensor's own name for plain groups, `<module>.weight` for quantized ones
  /// (gpt-oss: the `_blocks` stem, e.g. `experts.gate_up_proj`).
  public static func logicalName(of group: WeightGroup) -> String { group.format.logicalName(of: group) }

  /// The logical shape and decoding parameters of `group`, from headers only.
  public static func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry {
    try group.format.geometry(of: group, in: store)
  }

  /// The model's floating dtype from config.json `torch_dtype` (BF16 when absent or unknown).
  public static func modelDType(_ store: any TensorStore) -> DType { store.formatConfig.modelDType }

  /// A whole decoded weight.
  public struct DecodedWeight: Sendable {
    /// Row-major values, `geometry.rows * geometry.columns` of them.
    public var values: [Float]
    public var geometry: WeightGeometry
  }

  /// Decodes the whole of `group` to F32.
  public static func decode(group: WeightGroup, in store: any TensorStore) throws -> DecodedWeight {
    let geometry = try geometry(of: group, in: store)
    var values = [Float](repeating: 0, count: geometry.rows * geometry.columns)
    try values.withUnsafeMutableBufferPointer { buffer in
      try decodeRows(group: group, in: store, geometry: geometry, rows: 0..<geometry.rows, into: buffer)
    }
    return DecodedWeight(values: values, geometry: geometry)
  }

  /// Decodes rows `range` of `group` into `destination` (`range.count · columns` values). Streaming formats
  /// read only those rows (plus, for FP8 blocks, the rest of the first and last block rows).
  public static func decodeRows(
    group: WeightGroup, in store: any TensorStore, geometry: WeightGeometry? = nil, rows range: Range<Int>,
    into destination: UnsafeMutableBufferPointer<Float>
  ) throws {
    let geometry = try geometry ?? self.geometry(of: group, in: store)
    guard range.lowerBound >= 0, range.upperBound <= geometry.rows, destination.count == range.count * geometry.columns else {
      throw WeightDecodingError.badRowRange(
        module: group.modulePath, range: range, rows: geometry.rows, reason: "out of bounds or wrong buffer size")
    }
    guard !range.isEmpty else { return }
    do {
      try group.format.decodeRows(group, geometry: geometry, rows: range, in: store, into: destination)
    } catch let error as FormatQuantizationError {
      throw WeightDecodingError.format(module: group.modulePath, error)
    }
  }

  /// The group's tensors as `PackedTensor`s named by role (`weight_packed`, `qweight`, `blocks`, ...).
  public static func packedTensors(of group: WeightGroup, in store: any TensorStore) throws -> [PackedTensor] {
    try group.parts.sorted { $0.key < $1.key }.map { role, name in
      let entry = try store.requireEntry(name)
      let bytes = try store.bytes(of: name, range: 0..<entry.byteCount)
      defer { bytes.releasePages() }
      return PackedTensor(nameSuffix: role, dtype: entry.dtype, shape: entry.shape, bytes: bytes.copy())
    }
  }

  /// Dequantizes a packed layout from its role-named tensors with the format's own rule.
  public static func dequantize(
    _ tensors: [PackedTensor], storage: WeightStorage, geometry: WeightGeometry, module: String
  ) throws -> DequantizedMatrix {
    do {
      return try WeightFormats.format(of: storage).dequantize(tensors, geometry: geometry, module: module)
    } catch let error as FormatQuantizationError {
      throw WeightDecodingError.format(module: module, error)
    }
  }

  /// Refuses act-order `g_idx` (anything but `i / groupSize`), which no Smelt decoder reorders.
  static func checkTrivialGroupIndex(_ tensor: PackedTensor, groupSize: Int, module: String, storage: WeightStorage) throws {
    guard tensor.dtype == .int32, tensor.bytes.count % 4 == 0, groupSize > 0 else {
      throw WeightDecodingError.badLayout(module: module, storage: storage, reason: "g_idx should be I32 [in]")
    }
    for i in 0..<(tensor.bytes.count / 4) {
      let value = Int(tensor.bytes[4 * i]) | Int(tensor.bytes[4 * i + 1]) << 8 | Int(tensor.bytes[4 * i + 2]) << 16
        | Int(tensor.bytes[4 * i + 3]) << 24
      if value != i / groupSize {
        throw WeightDecodingError.unsupported(module: module, storage: storage, reason: "act-order g_idx (desc_act)")
      }
    }
  }
}
