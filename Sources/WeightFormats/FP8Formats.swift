import JSON
import Quantization
import SafeTensors
import TensorCore

extension WeightStorage {
  /// DeepSeek / HF `fp8`: `weight` F8_E4M3 + `weight_scale_inv` F32 (BF16 in Qwen3.5 / 3.6) block scales (any grid).
  public static let fp8Block = WeightStorage(rawValue: "fp8-block")
  /// compressed-tensors `float-quantized`: `weight` F8_E4M3 + `weight_scale` (block, channel or tensor).
  public static let fp8CompressedTensors = WeightStorage(rawValue: "fp8-compressed-tensors")
  /// DeepSeek-V4's own names: `weight` F8_E4M3 + `scale` F8_E8M0 block scales (`scale_fmt: ue8m0`).
  public static let fp8BlockE8M0 = WeightStorage(rawValue: "fp8-block-e8m0")
}

/// FP8 E4M3 weights with multiplier scales (`W ≈ f32(q) · scale`), in the two spellings checkpoints use:
///
/// - DeepSeek / HF `quant_method: fp8`: `weight_scale_inv` F32 `[ceil(out/br), ceil(in/bc)]` (BF16 in Qwen3.5 /
///   3.6's FP8 releases); decoded exactly in F32 (DeepSeek's `weight_dequant` before its BF16 rounding; an E4M3
///   code times a BF16 scale is exact in F32).
/// - DeepSeek-V4 (its inference names): `scale` F8_E8M0 `[ceil(out/128), ceil(in/128)]`, powers of two; decoded
///   exactly in F32 like DeepSeek's.
/// - compressed-tensors `float-quantized`: `weight_scale` in the weight's dtype (BF16/F16/F32), `[1]`/`[]`
///   (tensor), `[out, 1]` (channel) or a block grid; decoded as its decompressor does, `q · scale` rounded to
///   the scale dtype (the F32 product of an E4M3 code and a BF16/F16 scale is exact, so one rounding).
///
/// The block shape comes from `quantization_config.weight_block_size` (or a compressed-tensors group's
/// `block_structure`), else 128 — whichever tiles the grid (`FP8WeightFormat.scheme`); a grid neither tiles is
/// an error, not a guess. So 128×128 releases, Smelt's `--block-size 1x128` outputs and ragged edge
/// blocks (576 rows = 4½ blocks) all decode, by row ranges.
public struct FP8WeightFormat: WeightFormat {
  /// Which tensor names and scale dtypes.
  public enum Spelling: Sendable {
    case deepSeek
    case deepSeekV4
    case compressedTensors
  }

  public let spelling: Spelling
  public static let deepSeek = FP8WeightFormat(spelling: .deepSeek)
  public static let compressedTensors = FP8WeightFormat(spelling: .compressedTensors)
  public static let deepSeekV4 = FP8WeightFormat(spelling: .deepSeekV4)

  public var storage: WeightStorage {
    switch spelling {
    case .deepSeek: .fp8Block
    case .deepSeekV4: .fp8BlockE8M0
    case .compressedTensors: .fp8CompressedTensors
    }
  }
  public var declaringQuantMethods: Set<String> { spelling == .compressedTensors ? ["compressed-tensors"] : ["fp8"] }
  public var compressedTensorsFormat: String? { spelling == .compressedTensors ? "float-quantized" : nil }

  /// The scale tensor's role.
  public var scaleRole: String {
    switch spelling {
    case .deepSeek: "weight_scale_inv"
    case .deepSeekV4: "scale"
    case .compressedTensors: "weight_scale"
    }
  }
  /// The dtypes its scale tensor may have.
  var scaleDTypes: [DType] {
    switch spelling {
    case .deepSeek: [.float32, .bfloat16]
    case .deepSeekV4: [.float8E8M0FNU]
    case .compressedTensors: [.bfloat16, .float16, .float32]
    }
  }
  public var mainRole: String { "weight" }
  public var streamsRows: Bool { true }

  public func mayClaim(amongLeaves leaves: Set<String>) -> Bool { leaves.contains("weight") && leaves.contains(scaleRole) }

  public func claim(_ module: inout ModuleTensors) -> [WeightGroup] {
    guard let weight = module.entry("weight"), weight.dtype == .float8E4M3FN, let scale = module.entry(scaleRole),
      scaleDTypes.contains(scale.dtype) || spelling != .deepSeekV4
    else { return [] }
    return [module.claim(storage, roles: claimedRoles)]
  }

  /// The roles `claim(_:)` takes (constants: a checkpoint's every FP8 weight is claimed with them).
  private var claimedRoles: [String] {
    switch spelling {
    case .deepSeek: Self.deepSeekRoles
    case .deepSeekV4: Self.deepSeekV4Roles
    case .compressedTensors: Self.compressedTensorsRoles
    }
  }
  private static let deepSeekRoles = ["weight", deepSeek.scaleRole]
  private static let deepSeekV4Roles = ["weight", deepSeekV4.scaleRole]
  private static let compressedTensorsRoles = ["weight", compressedTensors.scaleRole, "input_scale"]

  public func geometry(of group: WeightGroup, in store: any TensorStore) throws -> WeightGeometry {
    let main = try entry("weight", of: group, in: store)
    let scale = try entry(scaleRole, of: group, in: store)
    guard main.shape.count == 2, main.dtype == .float8E4M3FN, scaleDTypes.contains(scale.dtype) else {
      throw bad(
        group,
        "expected F8_E4M3 [out, in] with a \(scaleDTypes.map(\.rawValue).joined(separator: "/")) \(scaleRole), found \(main.name) \(main.dtype) \(main.shape) and \(scale.name) \(scale.dtype) \(scale.shape)")
    }
    let configured = store.formatConfig.blockShape
    guard let scheme = Self.scheme(
      rows: main.shape[0], columns: main.shape[1], scaleShape: scale.shape, configured: configured,
      allowsTensorAndChannel: spelling == .compressedTensors)
    else {
      throw bad(
        group,
        "\(scale.name) \(scale.shape) does not tile weight \(main.shape) (block size from weight_block_size or block_structure, else 128)")
    }
    let dtype = spelling == .compressedTensors ? scale.dtype : DType.float32
    var geometry = Self.matrix(main.shape, dtype, fp8: scheme)
    if case .block(_, let columns) = scheme { geometry.groupSize = columns }
    return geometry
  }

  /// The scale scheme of a `[rows, columns]` FP8 weight whose scale tensor has `scaleShape`: `[]`/`[1]`/`[1, 1]`
  /// → tensor (compressed-tensors without a configured block); else blocks whose size is the configured one or
  /// 128 — the first with `ceil(rows/br) == sr` and `ceil(columns/bc) == sc`; else (compressed-tensors)
  /// `[rows, 1]` → channel and a single scale → tensor. `nil` when nothing fits.
  public static func scheme(
    rows: Int, columns: Int, scaleShape: [Int], configured: (rows: Int, columns: Int)?, allowsTensorAndChannel: Bool = true
  ) -> FP8Scheme? {
    let elementCount = scaleShape.reduce(1, *)
    if allowsTensorAndChannel, elementCount == 1, scaleShape.count <= 2, configured == nil || scaleShape.count < 2 {
      return .tensor
    }
    guard scaleShape.count == 2, rows > 0, columns > 0 else { return nil }
    let scaleRows = scaleShape[0], scaleColumns = scaleShape[1]
    func blockSize(extent: Int, count: Int, configured: Int?) -> Int? {
      func fits(_ size: Int) -> Bool { size > 0 && (extent - 1) / size + 1 == count }
      if let configured, fits(configured) { return configured }
      return fits(128) ? 128 : nil
    }
    if let blockRows = blockSize(extent: rows, count: scaleRows, configured: configured?.rows),
      let blockColumns = blockSize(extent: columns, count: scaleColumns, configured: configured?.columns)
    {
      return .block(rows: blockRows, columns: blockColumns)
    }
    if allowsTensorAndChannel, scaleColumns == 1, scaleRows == rows { return .channel }
    if allowsTensorAndChannel, elementCount == 1 { return .tensor }
    return nil
  }

  public func decodeRows(
    _ group: WeightGroup, geometry: WeightGeometry, rows: Range<Int>, in store: any TensorStore,
    into destination: UnsafeMutableBufferPointer<Float>
  ) throws {
    let main = try entry("weight", of: group, in: store)
    let scale = try entry(scaleRole, of: group, in: store)
    guard let scheme = geometry.fp8Scales else { throw bad(group, "no scale scheme") }
    let columns = geometry.columns
    let full = try FP8BlockLayout(rows: geometry.rows, columns: columns, scheme: scheme)
    guard full.scaleCount == scale.elementCount else {
      throw bad(group, "\(scaleRole) \(scale.shape) does not fit weight \(main.shape) as \(scheme)")
    }
    // Widen to whole scale rows, decode, crop.
    let height = full.blockRows
    let first = rows.lowerBound / height * height
    let end = rows.upperBound
    let layout = try FP8BlockLayout(rows: end - first, columns: columns, scheme: scheme)
    let firstScale = first / height * full.scaleColumns
    let scales = try Self.scales(scale, range: firstScale..<(firstScale + layout.scaleCount), in: store)
    let codes = try store.bytes(of: main.name, range: (first * columns)..<(end * columns))
    defer { codes.releasePages() }
    let skip = (rows.lowerBound - first) * columns
    func dequantize(into out: UnsafeMutableRawBufferPointer) throws {
      try scales.withUnsafeBufferPointer { scaleBuffer in
        try codes.withUnsafeBytes { try BlockFP8.dequantize($0, scales: scaleBuffer, layout: layout, to: .float32, into: out) }
      }
    }
    if skip == 0 {
      try dequantize(into: UnsafeMutableRawBufferPointer(destination))
    } else {
      var values = [Float](repeating: 0, count: layout.elementCount)
      try values.withUnsafeMutableBytes { try dequantize(into: $0) }
      values.withUnsafeBufferPointer { all in
        _ = destination.initialize(from: UnsafeBufferPointer(rebasing: all[skip..<(skip + destination.count)]))
      }
    }
    if spelling == .compressedTensors, scale.dtype != .float32 {
      // The decompressor multiplies in the scale dtype: one rounding of the exact F32 product.
      let encoded = UnsafeMutableRawBufferPointer.allocate(byteCount: destination.count * 2, alignment: 64)
      defer { encoded.deallocate() }
      try ElementCodec.encode(UnsafeBufferPointer(destination), to: scale.dtype, into: encoded)
      try ElementCodec.decode(UnsafeRawBufferPointer(encoded), dtype: scale.dtype, into: destination)
    }
  }

  /// DeepSeek's F32 block scales: the codes and the scales as they are stored (checked finite).
  public func encodedMatrix(_ group: WeightGroup, geometry: WeightGeometry, in store: any TensorStore) throws -> EncodedMatrix? {
    guard spelling == .deepSeek, case .block(let blockRows, let blockColumns)? = geometry.fp8Scales else { return nil }
    let main = try entry("weight", of: group, in: store)
    let scale = try entry(scaleRole, of: group, in: store)
    let codes = try store.bytes(of: main.name)
    defer { codes.releasePages() }
    return .float8Block(
      codes: codes.copy(), scales: try Self.scales(scale, range: 0..<scale.elementCount, in: store),
      blockRows: blockRows, blockColumns: blockColumns)
  }

  /// Scales `range` (flat indices) of `scale` decoded to F32, checked finite.
  static func scales(_ scale: TensorEntry, range: Range<Int>, in store: any TensorStore) throws -> [Float] {
    guard let width = scale.dtype.byteWidth else { throw WeightDecodingError.missingTensor(name: scale.name, store: store.storePath) }
    let bytes = try store.bytes(of: scale.name, range: (range.lowerBound * width)..<(range.upperBound * width))
    let values = try [Float](unsafeUninitializedCapacity: range.count) { out, initialized in
      try bytes.withUnsafeBytes { try ElementCodec.decode($0, dtype: scale.dtype, into: out) }
      initialized = range.count
    }
    if let bad = values.firstIndex(where: { !$0.isFinite }) {
      throw WeightDecodingError.nonFiniteScale(tensor: scale.name, index: range.lowerBound + bad)
    }
    return values
  }

  public func describe(_ group: WeightGroup, entries: (String) -> TensorEntry?, config: FormatConfig) -> String {
    let scale = entries(group.parts[scaleRole] ?? "")
    switch spelling {
    case .deepSeek, .deepSeekV4:
      let block = config.blockShape.map { "\($0.rows)x\($0.columns)" } ?? "128x128"
      let fmt = config.quantization?["scale_fmt"]?.stringValue.map { ", \($0) scales" } ?? ""
      return "F8_E4M3 weights, \(spelling == .deepSeek ? "\(scale?.dtype.rawValue ?? "F32") weight_scale_inv" : "F8_E8M0 scale") per \(block) block\(fmt)"
    case .compressedTensors:
      return "F8_E4M3 weights, weight_scale \(scale.map { "\($0.dtype) \($0.shape)" } ?? "")"
    }
  }

  public func logicalElementCount(_ group: WeightGroup, entries: (String) -> TensorEntry?) -> Int {
    elements(group, entries, "weight")
  }

  /// 25 dB (measured 30.6 dB at worst on the sample) and 0.05 (≤ 16/448 = 0.036: half the E4M3 step at 448,
  /// relative to the block amax).
  public func validationGates(dtype: DType?) -> (minimumSNRDecibels: Double, maximumPeakError: Double) { (25, 0.05) }

  public func precisionFamily(dtype: DType?) -> PrecisionFamily { .fp8 }
}

/// The writing side of scaled FP8 E4M3 (`--to fp8-block`, `fp8-channel`, `fp8-tensor` and recipe schemes): the
/// tensors it plans, the config block its consumer reads, and its `--to` names.
///
/// - Blocks without `--compressed-tensors` are the release convention (`weight_scale_inv` F32
///   `[ceil(out/r), ceil(in/c)]`, `quant_method: fp8`, read back by `FP8WeightFormat.deepSeek`);
/// - channel and tensor scales, and blocks with `--compressed-tensors`, use the compressed-tensors
///   `float-quantized` naming (`weight_scale` `[out, 1]` / `[1]` / the block grid, in the weight's dtype), which
///   vLLM loads (read back by `FP8WeightFormat.compressedTensors`).
public struct FP8Layout: Sendable, Hashable, CustomStringConvertible {
  /// How elements share a scale.
  public var granularity: FP8Scheme
  /// Round every scale up to a power of two (DeepSeek-V3.1 `scale_fmt: ue8m0`), then quantize with it.
  public var ue8m0Scales: Bool

  public init(granularity: FP8Scheme, ue8m0Scales: Bool = false) {
    self.granularity = granularity
    self.ue8m0Scales = ue8m0Scales
  }

  /// The `--to` names, in help order.
  public static let targetNames: [TargetName<FP8Layout>] = [
    TargetName(
      "fp8-block", help: "FP8 E4M3 with F32 block scales (DeepSeek; --block-size, --scale-format)",
      refines: [.blockSize, .scaleFormat, .compressedTensors], aliases: ["FP8_BLOCK"]
    ) { o in FP8Layout(granularity: .block(rows: o.blockShape.rows, columns: o.blockShape.columns), ue8m0Scales: o.ue8m0) },
    TargetName("fp8-channel", help: "FP8 with a scale per output channel (compressed-tensors)", refines: [.scaleFormat]) { o in
      FP8Layout(granularity: .channel, ue8m0Scales: o.ue8m0)
    },
    TargetName("fp8-tensor", help: "FP8 with one scale per tensor (compressed-tensors)", refines: [.scaleFormat]) { o in
      FP8Layout(granularity: .tensor, ue8m0Scales: o.ue8m0)
    },
  ]

  /// Whether the output uses compressed-tensors naming: asked for (`--compressed-tensors`, or a recipe mixing
  /// FP8 with other compressed-tensors schemes), or not a block layout (DeepSeek's convention has only blocks).
  public func usesCompressedTensorsNaming(asked: Bool) -> Bool {
    if case .block = granularity { return asked }
    return true
  }

  /// The config family that describes the output.
  public func consumer(compressedTensorsNaming asked: Bool) -> ConsumerFamily {
    usesCompressedTensorsNaming(asked: asked) ? .compressedTensors : .deepSeekFP8
  }

  /// The scale tensor's dtype for a weight that is `weightDType` in the model: compressed-tensors stores scales
  /// in the weight's (original) dtype when that is BF16/F16, DeepSeek always in F32.
  public func scaleDType(weightDType: DType, compressedTensorsNaming: Bool) -> DType {
    compressedTensorsNaming && [.bfloat16, .float16].contains(weightDType) ? weightDType : .float32
  }

  /// The scale rule the quantizer applies for scales stored in `storageDType`.
  public func scaleRule(storageDType: DType) -> FP8ScaleRule {
    FP8ScaleRule(format: ue8m0Scales ? .ue8m0 : .float, storageDType: storageDType)
  }

  /// The tensors written for the `[rows, columns]` weight `weightName` of `module`: the E4M3 codes under the
  /// weight's own name, and its scale next to it.
  public func plannedTensors(
    module: String, weightName: String, rows: Int, columns: Int, scaleDType: DType, compressedTensorsNaming: Bool
  ) throws(QuantizationError) -> [PlannedTensor] {
    let blocks = try FP8BlockLayout(rows: rows, columns: columns, scheme: granularity)
    let scaleRole = (compressedTensorsNaming ? FP8WeightFormat.compressedTensors : .deepSeek).scaleRole
    return [
      PlannedTensor(name: weightName, dtype: .float8E4M3FN, shape: [rows, columns]),
      PlannedTensor(name: module + "." + scaleRole, dtype: scaleDType, shape: blocks.scaleShape),
    ]
  }

  /// DeepSeek's `quantization_config` for blocks in the release convention (`scale_fmt: ue8m0` when asked), or
  /// `nil` for the other granularities, which only compressed-tensors describes.
  public var deepSeekQuantizationConfig: JSONValue? {
    guard case .block(let rows, let columns) = granularity else { return nil }
    var members: [(String, JSONValue)] = [("activation_scheme", "dynamic"), ("fmt", "e4m3"), ("quant_method", "fp8")]
    if ue8m0Scales { members.append(("scale_fmt", "ue8m0")) }
    members.append(("weight_block_size", .array([.number(JSONNumber(rows)), .number(JSONNumber(columns))])))
    return .object(members: members)
  }

  /// The compressed-tensors `config_groups` entry's `format`, `weights` and `input_activations`, as
  /// compressed-tensors 0.20 serializes its presets (FP8_BLOCK; channel and tensor like FP8_DYNAMIC's weights).
  public var compressedTensorsScheme: (format: String, weights: JSONValue, inputActivations: JSONValue) {
    func int(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    switch granularity {
    case .block(let rows, let columns):
      return (
        "float-quantized",
        .object(members: [
          ("num_bits", 8), ("type", "float"), ("symmetric", true), ("group_size", .null), ("strategy", "block"),
          ("block_structure", .array([int(rows), int(columns)])), ("dynamic", false),
        ]),
        .object(members: [
          ("num_bits", 8), ("type", "float"), ("symmetric", true), ("group_size", int(columns)), ("strategy", "group"),
          ("dynamic", true),
        ])
      )
    case .channel, .tensor:
      return (
        "float-quantized",
        .object(members: [
          ("num_bits", 8), ("type", "float"), ("symmetric", true), ("group_size", .null),
          ("strategy", granularity == .channel ? "channel" : "tensor"), ("dynamic", false),
        ]),
        .object(members: [
          ("num_bits", 8), ("type", "float"), ("symmetric", true), ("group_size", .null), ("strategy", "token"),
          ("dynamic", true),
        ])
      )
    }
  }

  public var description: String {
    switch granularity {
    case .block(let r, let c): return "FP8 E4M3, F32 scale per \(r)x\(c) block\(ue8m0Scales ? " (ue8m0)" : "")"
    case .channel: return "FP8 E4M3, scale per output channel (compressed-tensors)"
    case .tensor: return "FP8 E4M3, one scale per tensor (compressed-tensors)"
    }
  }
}
