import JSON
import Quantization
import SafeTensors
import TensorCore

/// Everything Smelt knows about reading one on-disk weight layout, in one place (ggml's `type_traits` is
/// the model): how to recognise it among a module's tensors, its logical geometry, how to decode it to F32
/// (by row ranges when it can), and how `inspect` describes it. Registered in `WeightFormats.all`.
///
/// The writing side of a group layout (`--to` names, planned tensors, quantizer, config fragment) is its
/// `GroupLayout`, declared next to it.
public protocol WeightFormat: Sendable {
  /// The identifier of the layout.
  var storage: WeightStorage { get }
  /// Claims this format's weights among `module`'s unclaimed tensors (none when it does not recognise them).
  func claim(_ module: inout ModuleTensors) -> [WeightGroup]
  /// Whether `claim(_:)` can claim anything in a checkpoint whose tensors' leaves (the part of each name
  /// after its last `.`) are exactly `leaves`: the grouping asks once per checkpoint and skips a format
  /// that cannot, so each module pays only for the formats the checkpoint may hold. It must answer `true`
  /// whenever some module could be claimed (a format that needs leaves it does not find claims nothing).
  /// Default `true`.
  func mayClaim(amongLeaves leaves: Set<String>) -> Bool
  /// The role of the tensor that holds the weight's values (the codes of a quantized weight).
  var mainRole: String { get }
  /// The logical weight name: `<module>.weight` by default.
  func logicalName(of group: WeightGroup) -> String
  /// The logical shape and decoding parameters, from headers (and small shape tensors) only.
  func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry
  /// Whether `decodeRows` reads only the requested rows (the format stores rows independently).
  var streamsRows: Bool { get }
  /// Decodes rows `rows` (any range) into `destination` (`rows.count · geometry.columns` values). Formats that
  /// do not stream decode the whole weight and copy the rows out.
  func decodeRows(
    _ group: WeightGroup, geometry: WeightGeometry, rows: Range<Int>, in store: any TensorStore,
    into destination: UnsafeMutableBufferPointer<Float>) throws
  /// Dequantizes the format's tensors (role-named `PackedTensor`s, e.g. a quantizer's output or a row slice
  /// of it) with the consumer's own rule. Row-streaming formats need not support it.
  func dequantize(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> DequantizedMatrix
  /// The weight as MXFP4 codes and scales (E2M1 + E8M0 per 32 along the last dimension, leading dimensions
  /// folded into rows) when the format stores exactly that — the source side of a lossless repack
  /// (`MXFP4.repackToFP8Blocks`, the MXFP4 writers, `GGMLRepack.mxfp4`); `nil` for formats that do not.
  func microscaledCodes(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> MXFP4.Result?
  /// Whether `microscaledCodes` returns codes (known from the format alone, for planning).
  var storesMXFP4Codes: Bool { get }
  /// The weight as symmetric int4 codes (`q + 8`) with one scale per `geometry.groupSize` elements of a row
  /// (`x = (code − 8) · scale`) when the format stores exactly that — the source side of the lossless GGUF Q4_0
  /// repack (`GGMLRepack.q4_0`); `nil` for formats that do not.
  func symmetricInt4Groups(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws
    -> Int4PackQuantized.SymmetricGroups?
  /// Whether `symmetricInt4Groups` returns groups for `group` (from its tensor names alone, for planning).
  func storesSymmetricInt4Groups(_ group: WeightGroup) -> Bool
  /// The `quantization_config.quant_method` values of the configs that declare this format (`verify` reports a
  /// weight whose config declares none of them; MLX's top-level `quantization` counts as `mlx`, ModelOpt's
  /// `hf_quant_config.json` as `modelopt`). Default none (plain tensors, GGUF blocks).
  var declaringQuantMethods: Set<String> { get }
  /// The compressed-tensors `config_groups.*.format` that selects this format, or `nil` (the default) when
  /// compressed-tensors does not write it.
  var compressedTensorsFormat: String? { get }
  /// One line for `inspect`, from headers only.
  func describe(_ group: WeightGroup, entries: (String) -> TensorEntry?, config: FormatConfig) -> String
  /// The unpacked element count, from headers only (for `inspect`'s parameter count).
  func logicalElementCount(_ group: WeightGroup, entries: (String) -> TensorEntry?) -> Int
  /// `validate`'s default gates for a weight stored in this format (`dtype`: the stored values' dtype): the
  /// tensor-level SNR floor in dB and the ceiling on `max |Δ| / max |ref|`, a little beyond what the format's
  /// rounding can produce.
  func validationGates(dtype: DType?) -> (minimumSNRDecibels: Double, maximumPeakError: Double)
  /// Which of `validate`'s model-level gate presets fits a weight stored in this format (the coarsest
  /// family among a candidate's weights picks its default preset). Default `.int4` (the packed 4-bit formats).
  func precisionFamily(dtype: DType?) -> PrecisionFamily
  /// The 2-D weight in an encoding a matmul dequantizes tile by tile itself (`EncodedMatrix`), or `nil` when
  /// the format has none (the caller decodes to F32). Default `nil`.
  func encodedMatrix(_ group: WeightGroup, geometry: WeightGeometry, in store: any TensorStore) throws -> EncodedMatrix?
}

/// How coarsely a format stores a weight, for `validate`'s model-level gates: each family has a preset of
/// limits on the logits (`ValidationPreset`). Ordered from finest to coarsest.
public enum PrecisionFamily: String, Sendable, CaseIterable, Comparable {
  /// 16/32-bit floats (a cast, at most one BF16/F16 rounding).
  case lossless
  /// FP8 E4M3/E5M2, scaled or not.
  case fp8
  /// 5- to 8-bit integer codes with group scales (GGML q8_0, q6_K, q5_*).
  case int8
  /// 4-bit (and coarser) integer codes: compressed-tensors int4, GPTQ, MLX affine, GGML q4_*/q3_K/q2_K.
  case int4
  /// 4-bit floats with microscales: MXFP4, NVFP4.
  case fp4

  public static func < (lhs: PrecisionFamily, rhs: PrecisionFamily) -> Bool {
    allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
  }
}

/// A whole 2-D weight `[rows, columns]` kept in a compact encoding whose dequantization is elementwise (so a
/// GEMM can apply it while it packs tiles): the reference forward pass reads FP8-block and BF16 checkpoints
/// through it at 1 or 2 bytes per weight instead of 4.
public enum EncodedMatrix: Sendable {
  /// BF16 bit patterns, row-major.
  case bfloat16(bits: [UInt16])
  /// E4M3FN codes, row-major, with F32 multipliers per `blockRows × blockColumns` block (row-major grid):
  /// `W = f32(code) · scale` in F32.
  case float8Block(codes: [UInt8], scales: [Float], blockRows: Int, blockColumns: Int)
}

extension WeightFormat {
  public func mayClaim(amongLeaves leaves: Set<String>) -> Bool { true }

  public func logicalName(of group: WeightGroup) -> String { group.modulePath + ".weight" }

  public var declaringQuantMethods: Set<String> { [] }
  public var compressedTensorsFormat: String? { nil }

  /// 4-bit formats: 10 dB (int4 g64 12.3 dB at worst on the sample's outlier-heavy weights, ~19 dB on Gaussian
  /// ones) and 0.75 (MXFP4's power-of-two scales clip the top of a block by up to a third).
  public func validationGates(dtype: DType?) -> (minimumSNRDecibels: Double, maximumPeakError: Double) { (10, 0.75) }

  public func precisionFamily(dtype: DType?) -> PrecisionFamily { .int4 }

  public var streamsRows: Bool { false }

  public func microscaledCodes(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> MXFP4.Result? {
    nil
  }
  public var storesMXFP4Codes: Bool { false }
  public func symmetricInt4Groups(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws
    -> Int4PackQuantized.SymmetricGroups?
  { nil }
  public func storesSymmetricInt4Groups(_ group: WeightGroup) -> Bool { false }
  public func encodedMatrix(_ group: WeightGroup, geometry: WeightGeometry, in store: any TensorStore) throws -> EncodedMatrix? {
    nil
  }

  public func dequantize(_ tensors: [PackedTensor], geometry: WeightGeometry, module: String) throws -> DequantizedMatrix {
    throw WeightDecodingError.badLayout(module: module, storage: storage, reason: "not a packed layout")
  }

  /// Packed formats: every tensor read whole and handed to `dequantize(_:geometry:module:)`, then the rows
  /// copied out.
  public func decodeRows(
    _ group: WeightGroup, geometry: WeightGeometry, rows: Range<Int>, in store: any TensorStore,
    into destination: UnsafeMutableBufferPointer<Float>
  ) throws {
    let tensors = try WeightDecoding.packedTensors(of: group, in: store)
    let matrix = try dequantize(tensors, geometry: geometry, module: group.modulePath)
    let count = geometry.rows * geometry.columns
    guard matrix.values.count == count else {
      throw WeightDecodingError.badLayout(
        module: group.modulePath, storage: storage,
        reason: "decoded \(matrix.values.count) values, expected \(count) for shape \(geometry.shape)")
    }
    let start = rows.lowerBound * geometry.columns
    matrix.values.withUnsafeBufferPointer { all in
      _ = destination.initialize(from: UnsafeBufferPointer(rebasing: all[start..<(start + destination.count)]))
    }
  }

  /// The main tensor's element count times `factor`.
  func elements(_ group: WeightGroup, _ entries: (String) -> TensorEntry?, _ role: String, times factor: Int = 1) -> Int {
    (entries(group.parts[role] ?? "").flatMap { ByteCount.elementCount($0.shape) } ?? 0) * factor
  }

  /// A `[rows, columns]` geometry of `shape` (1-D and 0-d tensors are one row).
  static func matrix(_ shape: [Int], _ dtype: DType, group: Int? = nil, bits: Int? = nil, fp8: FP8Scheme? = nil) -> WeightGeometry {
    let rows = shape.count >= 2 ? shape[0] : 1
    let columns = shape.count >= 2 ? (ByteCount.elementCount(Array(shape.dropFirst())) ?? 0) : (ByteCount.elementCount(shape) ?? 0)
    return WeightGeometry(shape: shape, rows: rows, columns: columns, dtype: dtype, groupSize: group, bits: bits, fp8Scales: fp8)
  }

  /// The entry of `role`, or a `badLayout` error.
  func entry(_ role: String, of group: WeightGroup, in store: any TensorStore) throws -> TensorEntry {
    guard let name = group.parts[role] else {
      throw WeightDecodingError.badLayout(module: group.modulePath, storage: storage, reason: "no '\(role)' tensor")
    }
    return try store.requireEntry(name)
  }

  func bad(_ group: WeightGroup, _ reason: String) -> WeightDecodingError {
    .badLayout(module: group.modulePath, storage: storage, reason: reason)
  }
}

/// Why a weight group could not be decoded to F32.
public enum WeightDecodingError: Error, Sendable, CustomStringConvertible {
  /// A companion tensor is missing, or has the wrong dtype or shape for the layout.
  case badLayout(module: String, storage: WeightStorage, reason: String)
  /// The layout is valid but uses a feature Smelt does not decode (act-order `g_idx`, 3-bit GPTQ, MLX mxfp4
  /// mode, ...).
  case unsupported(module: String, storage: WeightStorage, reason: String)
  /// The format's own dequantizer refused the stored values.
  case format(module: String, FormatQuantizationError)
  /// A row range outside the weight, or a destination of the wrong size.
  case badRowRange(module: String, range: Range<Int>, rows: Int, reason: String)
  /// A tensor the group names is not in the store.
  case missingTensor(name: String, store: String)
  /// A scale that is NaN, infinite (or, for FP8 multipliers, the source of garbage).
  case nonFiniteScale(tensor: String, index: Int)

  public var description: String {
    switch self {
    case .badLayout(let module, let storage, let reason):
      return "weight '\(module)' (\(storage.rawValue)): \(reason)"
    case .unsupported(let module, let storage, let reason):
      return "weight '\(module)' (\(storage.rawValue)): \(reason) is not supported"
    case .format(let module, let error):
      return "weight '\(module)': \(error)"
    case .badRowRange(let module, let range, let rows, let reason):
      return "weight '\(module)': rows \(range) of \(rows) cannot be decoded: \(reason)"
    case .missingTensor(let name, let store):
      return "tensor '\(name)' is not in \(store) (is a shard missing?)"
    case .nonFiniteScale(let tensor, let index):
      return "scale tensor '\(tensor)' has a non-finite value at index \(index)"
    }
  }
}

/// The logical shape of a stored weight, read from headers (and, for compressed-tensors int4, the 16-byte
/// `weight_shape` tensor) without decoding it.
public struct WeightGeometry: Sendable, Equatable {
  /// The logical shape: `[out, in]` for linear weights, `[experts, out, in]` for fused gpt-oss experts, the
  /// tensor's own shape for plain tensors.
  public var shape: [Int]
  /// `shape[0]` (1 for 0-d/1-d tensors).
  public var rows: Int
  /// The product of the remaining dimensions.
  public var columns: Int
  /// The dtype the layout's own decompressor returns (exactly representable): the tensor dtype for plain
  /// weights, F32 for DeepSeek FP8 blocks, the scale dtype for compressed-tensors int4/FP8 and MLX, F16 for
  /// GPTQ, BF16 for MXFP4 and compressed-tensors NVFP4, the model dtype for ModelOpt NVFP4.
  public var dtype: DType
  /// Elements per quantization group along the columns (`nil` for plain and per-tensor/channel FP8).
  public var groupSize: Int?
  /// Bits per element for integer layouts (`nil` elsewhere).
  public var bits: Int?
  /// How an FP8 weight's scales tile it (`nil` for other layouts).
  public var fp8Scales: FP8Scheme?

  public init(
    shape: [Int], rows: Int, columns: Int, dtype: DType, groupSize: Int? = nil, bits: Int? = nil, fp8Scales: FP8Scheme? = nil
  ) {
    self.shape = shape
    self.rows = rows
    self.columns = columns
    self.dtype = dtype
    self.groupSize = groupSize
    self.bits = bits
    self.fp8Scales = fp8Scales
  }

  /// Row ranges that start on a multiple of this decode without re-reading rows of a neighbouring range
  /// (the FP8 block height; 1 elsewhere).
  public var rowAlignment: Int {
    if case .block(let blockRows, _) = fp8Scales { return max(1, blockRows) }
    return 1
  }
}
