import Quantization
import SafeTensors
import TensorCore

extension WeightStorage {
  /// One floating-point (or integer) tensor, decoded element by element.
  public static let plain = WeightStorage(rawValue: "plain")
}

/// Plain tensors: every tensor no other format claimed is its own group (norms, biases, embeddings, and the
/// weights of unquantized checkpoints).
public struct PlainFormat: WeightFormat {
  public init() {}
  public var storage: WeightStorage { .plain }
  public var mainRole: String { "weight" }
  public var streamsRows: Bool { true }

  public func claim(_ module: inout ModuleTensors) -> [WeightGroup] {
    module.unclaimedLeaves.map { leaf in module.claim(.plain, modulePath: module.name(leaf), leavesByRole: ["weight": leaf]) }
  }

  public func logicalName(of group: WeightGroup) -> String { group.parts["weight"] ?? group.modulePath }

  public func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry {
    let main = try entry("weight", of: group, in: store)
    return Self.matrix(main.shape, main.dtype)
  }

  public func decodeRows(
    _ group: WeightGroup, geometry: WeightGeometry, rows: Range<Int>, in store: any TensorStore,
    into destination: UnsafeMutableBufferPointer<Float>
  ) throws {
    let main = try entry("weight", of: group, in: store)
    guard let width = main.dtype.byteWidth, ElementCodec.canDecode(main.dtype) else {
      throw WeightDecodingError.unsupported(module: group.modulePath, storage: .plain, reason: "decoding \(main.dtype) to F32")
    }
    let rowBytes = geometry.columns * width
    let bytes = try store.bytes(of: main.name, range: (rows.lowerBound * rowBytes)..<(rows.upperBound * rowBytes))
    defer { bytes.releasePages() }
    try bytes.withUnsafeBytes { try ElementCodec.decode($0, dtype: main.dtype, into: destination) }
  }

  /// BF16 matrices: their bit patterns (little-endian on disk, as on every host Smelt runs on).
  public func encodedMatrix(_ group: WeightGroup, geometry: WeightGeometry, in store: any TensorStore) throws -> EncodedMatrix? {
    let main = try entry("weight", of: group, in: store)
    guard main.dtype == .bfloat16, main.shape.count == 2 else { return nil }
    let bytes = try store.bytes(of: main.name)
    defer { bytes.releasePages() }
    return .bfloat16(bits: bytes.withUnsafeBytes { raw in
      [UInt16](unsafeUninitializedCapacity: raw.count / 2) { out, initialized in
        UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count / 2 * 2)]))
        initialized = raw.count / 2
      }
    })
  }

  public func describe(_ group: WeightGroup, entries: (String) -> TensorEntry?, config: FormatConfig) -> String { "plain" }

  public func logicalElementCount(_ group: WeightGroup, entries: (String) -> TensorEntry?) -> Int {
    elements(group, entries, "weight")
  }

  /// 16/32-bit floats: 40 dB (a BF16 cast of F32 is ~50 dB) and 0.01 (BF16 rounding ≤ 2^-9); unscaled FP8 casts:
  /// 15 dB and 0.15 (E5M2's relative half step is 0.125).
  public func validationGates(dtype: DType?) -> (minimumSNRDecibels: Double, maximumPeakError: Double) {
    dtype == .float8E4M3FN || dtype == .float8E5M2 ? (15, 0.15) : (40, 0.01)
  }

  public func precisionFamily(dtype: DType?) -> PrecisionFamily {
    dtype == .float8E4M3FN || dtype == .float8E5M2 ? .fp8 : .lossless
  }
}

extension PlainFormat {
  /// The `--to` names of plain casts, in help order: dequantize/cast to BF16/F16/F32, or an unscaled cast of every
  /// floating tensor to an FP8 dtype (saturating at ±max).
  public static let castTargetNames: [TargetName<DType>] = [
    TargetName("bf16", help: "dequantize/cast to BF16", aliases: ["BF16"]) { _ in .bfloat16 },
    TargetName("f16", help: "to F16") { _ in .float16 },
    TargetName("f32", help: "to F32") { _ in .float32 },
    TargetName("f8-e4m3", help: "unscaled cast to F8_E4M3") { _ in .float8E4M3FN },
    TargetName("f8-e5m2", help: "unscaled cast to F8_E5M2") { _ in .float8E5M2 },
  ]
}
