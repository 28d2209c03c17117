import GGML
import SafeTensors
import TensorCore

extension WeightStorage {
  /// A ggml block type as a GGUF stores it (`ggml-q4_K`, `ggml-q8_0`, ...).
  public static func ggml(_ type: GGMLType) -> WeightStorage { WeightStorage(rawValue: "ggml-" + type.name) }
}

/// ggml's quantized block types (Q8_0 … Q6_K, IQ4_NL, MXFP4 in ggml's layout), one registry entry per type.
/// The scales live inside the blocks, so a weight is a single tensor with no side tensors, and rows are
/// independent: `decodeRows` reads only the requested rows (`streamsRows`).
///
/// A GGUF tensor store (`GGUFModel.GGUFCheckpoint`) presents a quantized weight `<module>.weight` as the U8
/// tensor `<module>.weight:<type>` of shape `[rows, bytes per row]`: the suffix carries the ggml type, which
/// a safetensors dtype cannot. F32, F16 and BF16 GGUF tensors are plain tensors.
public struct GGMLWeightFormat: WeightFormat {
  public let type: GGMLType
  private let kernels: GGMLKernels
  /// The leaf of the store's blocks tensor (`weight:q4_K`), made once: `claim` asks every module for it.
  private let leaf: String

  /// Every quantized type Smelt has kernels for.
  public static let all: [GGMLWeightFormat] = GGMLKernels.supportedTypes.filter(\.isQuantized).compactMap(GGMLWeightFormat.init)

  public init?(_ type: GGMLType) {
    guard type.isQuantized, let kernels = GGMLKernels.forType(type) else { return nil }
    self.type = type
    self.kernels = kernels
    leaf = "weight:" + type.name
  }

  /// The store's tensor name for the blocks of weight `weight` (a `….weight` name) in `type`.
  public static func storedName(weight: String, type: GGMLType) -> String { weight + ":" + type.name }

  public var storage: WeightStorage { .ggml(type) }
  public var mainRole: String { "blocks" }
  public var streamsRows: Bool { true }

  public func mayClaim(amongLeaves leaves: Set<String>) -> Bool { leaves.contains(leaf) }

  public func claim(_ module: inout ModuleTensors) -> [WeightGroup] {
    guard let entry = module.entry(leaf), entry.dtype == .uint8, entry.shape.count == 2 else { return [] }
    return [module.claim(storage, modulePath: module.module, leavesByRole: [mainRole: leaf])]
  }

  public func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry {
    let blocks = try entry(mainRole, of: group, in: store)
    let (rows, rowBytes) = (blocks.shape[0], blocks.shape[1])
    guard rowBytes > 0, rowBytes % type.blockByteCount == 0 else {
      throw bad(group, "rows of \(rowBytes) bytes are not whole \(type.name) blocks of \(type.blockByteCount) bytes")
    }
    let columns = rowBytes / type.blockByteCount * type.blockSize
    return WeightGeometry(
      shape: [rows, columns], rows: rows, columns: columns, dtype: .float32, groupSize: type.blockSize,
      bits: type.blockByteCount * 8 / type.blockSize)
  }

  public func decodeRows(
    _ group: WeightGroup, geometry: WeightGeometry, rows: Range<Int>, in store: any TensorStore,
    into destination: UnsafeMutableBufferPointer<Float>
  ) throws {
    guard let name = group.parts[mainRole] else { throw bad(group, "no blocks tensor") }
    let rowBytes = geometry.columns / type.blockSize * type.blockByteCount
    let bytes = try store.bytes(of: name, range: (rows.lowerBound * rowBytes)..<(rows.upperBound * rowBytes))
    defer { bytes.releasePages() }
    try bytes.withUnsafeBytes { blocks in
      do { try kernels.dequantize(blocks, rowLength: geometry.columns, into: destination) } catch {
        throw bad(group, "\(error)")
      }
    }
  }

  public func describe(_ group: WeightGroup, entries: (String) -> TensorEntry?, config: FormatConfig) -> String {
    "ggml \(type.name) (\(type.blockSize)-element blocks of \(type.blockByteCount) bytes)"
  }

  public func logicalElementCount(_ group: WeightGroup, entries: (String) -> TensorEntry?) -> Int {
    guard let blocks = entries(group.parts[mainRole] ?? ""), blocks.shape.count == 2 else { return 0 }
    return blocks.shape[0] * (blocks.shape[1] / type.blockByteCount * type.blockSize)
  }

  /// A little beyond what each type's rounding gives on Gaussian weights with outliers (SNR in dB, peak error
  /// relative to the weight's largest magnitude).
  public func validationGates(dtype: DType?) -> (minimumSNRDecibels: Double, maximumPeakError: Double) {
    switch type {
    case .q8_0: (30, 0.05)
    case .q6_K: (24, 0.15)
    case .q5_0, .q5_1, .q5_K: (18, 0.3)
    case .q4_0, .q4_1, .q4_K, .iq4_nl: (12, 0.5)
    case .mxfp4: (10, 0.75)
    case .q3_K: (8, 0.75)
    default: (4, 1.0)
    }
  }

  public func precisionFamily(dtype: DType?) -> PrecisionFamily {
    switch type {
    case .f32, .f16, .bf16, .f64: .lossless
    case .q8_0, .q8_1, .q8_K, .q6_K, .q5_0, .q5_1, .q5_K, .i8, .i16, .i32, .i64: .int8
    case .mxfp4, .nvfp4: .fp4
    default: .int4
    }
  }
}
