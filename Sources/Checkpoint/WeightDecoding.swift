import JSON
import Quantization
import SafeTensors
import TensorCore

/// Why a weight group could not be decoded to F32.
public enum WeightDecodingError: Error, Sendable, CustomStringConvertible {
  /// A companion tensor is missing, or has the wrong dtype or shape for the layout.
  case badLayout(module: String, storage: WeightStorage, reason: String)
  /// The layout is valid but uses a feature Smelt does not decode (act-order `g_idx`, 3-bit GPTQ, MLX mxfp4
  /// mode, ...).
  case unsupported(module: String, storage: WeightStorage, reason: String)
  /// The format's own dequantizer refused the stored values.
  case format(module: String, FormatQuantizationError)
  /// A row range was asked of a layout that only decodes whole (or a range off a block boundary).
  case badRowRange(module: String, range: Range<Int>, rows: Int, reason: String)

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

  public init(shape: [Int], rows: Int, columns: Int, dtype: DType, groupSize: Int? = nil, bits: Int? = nil) {
    self.shape = shape
    self.rows = rows
    self.columns = columns
    self.dtype = dtype
    self.groupSize = groupSize
    self.bits = bits
  }
}

/// Decodes any weight group of a checkpoint to F32 `[rows, columns]`: plain floating tensors, DeepSeek FP8
/// blocks, compressed-tensors FP8, and the seven 4-bit layouts `WeightGrouping` detects. Shared by `convert`
/// (dequantizing and re-quantizing) and the reference model's weight provider.
///
/// Values are exactly what each format's own reference decompressor returns (see `WeightGeometry.dtype`),
/// widened to F32, so `smelt convert IN OUT --to f32` is that decompressor's output bit for bit.
///
/// Parameters that the tensors alone do not fix:
/// - compressed-tensors int4: group size = `weight_shape[1] / weight_scale.shape[1]`; asymmetric when
///   `weight_zero_point` exists; only 4-bit packing (`weight_packed.shape[1] · 8 == in`) and no `weight_g_idx`
///   other than `i / g`.
/// - GPTQ: 4-bit only (`quantization_config.bits`, when present, must be 4); `in = qweight.shape[0] · 8`,
///   group size = `in / scales.shape[0]`; `g_idx` must be `i / g` (no act-order).
/// - MLX affine: bits and group size from config.json `quantization` (a per-module entry under the module path,
///   or under its mlx-lm stacked-experts alias `...mlp.switch_mlp.<proj>`, first; then the top-level
///   `group_size`/`bits`; then `quantization_config`), kept only when consistent with the shapes
///   (`in = weight.shape[1] · 32 / bits`, `in / group = scales.shape[1]`); otherwise the first consistent pair of
///   bits 4, 8 × group 64, 32, 128 (MLX's default 4-bit/64 first). Modes other than affine (no `biases`) are
///   refused.
/// - ModelOpt NVFP4: the output dtype is config.json `torch_dtype` (BF16 when absent), as ModelOpt dequantizes
///   to the original weight dtype.
/// - compressed-tensors FP8: the scale shape decides tensor (`[1]`/`[]`), channel (`[out, 1]`) or block; the
///   block shape comes from `quantization_config.config_groups.*.weights.block_structure` or
///   `weight_block_size`, else 128×128.
public enum WeightDecoding {
  /// True for layouts that decode any row range on its own (`decodeRows`); the others decode whole.
  public static func streamsRows(_ storage: WeightStorage) -> Bool { storage == .plain || storage == .fp8Block }

  /// Row ranges passed to `decodeRows` must start on a multiple of this.
  public static func rowAlignment(_ storage: WeightStorage) -> Int { storage == .fp8Block ? 128 : 1 }

  /// The logical weight name: `weight` for plain groups, `<module>.weight` for quantized ones (gpt-oss: the
  /// `_blocks` stem, e.g. `experts.gate_up_proj`).
  public static func logicalName(of group: WeightGroup) -> String {
    switch group.storage {
    case .plain: return group.parts["weight"] ?? group.modulePath
    case .mxfp4GptOss: return group.modulePath
    default: return group.modulePath + ".weight"
    }
  }

  // MARK: geometry

  /// The logical shape and decoding parameters of `group`, from headers only.
  public static func geometry(of group: WeightGroup, in checkpoint: Checkpoint) throws -> WeightGeometry {
    let module = group.modulePath
    let storage = group.storage
    func entry(_ role: String) throws -> TensorEntry {
      guard let name = group.parts[role] else {
        throw WeightDecodingError.badLayout(module: module, storage: storage, reason: "no '\(role)' tensor")
      }
      return try checkpoint.entry(name)
    }
    func bad(_ reason: String) -> WeightDecodingError { .badLayout(module: module, storage: storage, reason: reason) }
    func matrix(_ shape: [Int], _ dtype: DType, group: Int? = nil, bits: Int? = nil) -> WeightGeometry {
      let rows = shape.count >= 2 ? shape[0] : 1
      let columns = shape.count >= 2 ? (ByteCount.elementCount(Array(shape.dropFirst())) ?? 0) : (ByteCount.elementCount(shape) ?? 0)
      return WeightGeometry(shape: shape, rows: rows, columns: columns, dtype: dtype, groupSize: group, bits: bits)
    }
    switch storage {
    case .plain:
      let main = try entry("weight")
      return matrix(main.shape, main.dtype)
    case .fp8Block:
      let main = try entry("weight")
      let scale = try entry("weight_scale_inv")
      guard main.shape.count == 2, main.dtype == .float8E4M3FN, scale.dtype == .float32, scale.shape.count == 2 else {
        throw bad("expected F8_E4M3 [out, in] with F32 weight_scale_inv [ceil(out/128), ceil(in/128)], found \(main.dtype) \(main.shape) and \(scale.dtype) \(scale.shape)")
      }
      return matrix(main.shape, .float32, group: 128)
    case .fp8CompressedTensors:
      let main = try entry("weight")
      let scale = try entry("weight_scale")
      guard main.shape.count == 2, [.bfloat16, .float16, .float32].contains(scale.dtype) else {
        throw bad("expected F8_E4M3 [out, in] with a BF16/F16/F32 weight_scale, found \(main.shape) and \(scale.dtype) \(scale.shape)")
      }
      return matrix(main.shape, scale.dtype)
    case .int4PackQuantized:
      let shapeEntry = try entry("weight_shape")
      let scale = try entry("weight_scale")
      guard shapeEntry.dtype == .int64 || shapeEntry.dtype == .int32, shapeEntry.shape == [2] else {
        throw bad("weight_shape should be I64 [2], found \(shapeEntry.dtype) \(shapeEntry.shape)")
      }
      let view = try checkpoint.tensor(shapeEntry.name)
      let dims = shapeEntry.dtype == .int64
        ? [Int(view.element(at: 0, as: Int64.self)), Int(view.element(at: 1, as: Int64.self))]
        : [Int(view.element(at: 0, as: Int32.self)), Int(view.element(at: 1, as: Int32.self))]
      guard dims[0] > 0, dims[1] > 0, scale.shape.count == 2, scale.shape[0] == dims[0], scale.shape[1] > 0,
        dims[1] % scale.shape[1] == 0
      else { throw bad("weight_shape \(dims) does not match weight_scale \(scale.shape)") }
      return matrix(dims, scale.dtype, group: dims[1] / scale.shape[1], bits: 4)
    case .gptq:
      let qweight = try entry("qweight")
      let scales = try entry("scales")
      if let bits = checkpoint.config?.quantizationConfig?.bits, bits != 4 {
        throw WeightDecodingError.unsupported(module: module, storage: storage, reason: "\(bits)-bit gptq")
      }
      guard qweight.shape.count == 2, scales.shape.count == 2, scales.shape[1] == qweight.shape[1], scales.shape[0] > 0 else {
        throw bad("expected qweight I32 [in/8, out] and scales [in/g, out], found \(qweight.shape) and \(scales.shape)")
      }
      let (columns, overflow) = qweight.shape[0].multipliedReportingOverflow(by: 8)
      guard !overflow, columns % scales.shape[0] == 0 else { throw bad("in = \(qweight.shape[0]) x 8 is not a multiple of \(scales.shape[0]) groups") }
      return matrix([qweight.shape[1], columns], .float16, group: columns / scales.shape[0], bits: 4)
    case .mlxAffine:
      let (bits, groupSize, columns) = try mlxParameters(group, in: checkpoint)
      let weight = try entry("weight")
      let scales = try entry("scales")
      return matrix([weight.shape[0], columns], scales.dtype, group: groupSize, bits: bits)
    case .mxfp4CompressedTensors:
      let packed = try entry("weight_packed")
      guard packed.shape.count == 2 else { throw bad("weight_packed should be U8 [out, in/2], found \(packed.shape)") }
      let (columns, overflow) = packed.shape[1].multipliedReportingOverflow(by: 2)
      guard !overflow else { throw bad("weight_packed shape \(packed.shape) overflows") }
      return matrix([packed.shape[0], columns], .bfloat16, group: MXFP4.blockSize, bits: 4)
    case .mxfp4GptOss:
      let blocks = try entry("blocks")
      guard blocks.shape.count >= 3, blocks.shape.last == 16 else {
        throw bad("blocks should be U8 [..., out, in/32, 16], found \(blocks.shape)")
      }
      let (columns, overflow) = blocks.shape[blocks.shape.count - 2].multipliedReportingOverflow(by: MXFP4.blockSize)
      guard !overflow else { throw bad("blocks shape \(blocks.shape) overflows") }
      return matrix(Array(blocks.shape.dropLast(2)) + [columns], .bfloat16, group: MXFP4.blockSize, bits: 4)
    case .nvfp4ModelOpt, .nvfp4CompressedTensors:
      let packed = try entry(storage == .nvfp4ModelOpt ? "weight" : "weight_packed")
      guard packed.shape.count == 2 else { throw bad("packed weight should be U8 [out, in/2], found \(packed.shape)") }
      let (columns, overflow) = packed.shape[1].multipliedReportingOverflow(by: 2)
      guard !overflow else { throw bad("packed weight shape \(packed.shape) overflows") }
      let dtype = storage == .nvfp4ModelOpt ? modelDType(checkpoint) : .bfloat16
      return matrix([packed.shape[0], columns], dtype, group: NVFP4.blockSize, bits: 4)
    }
  }

  /// The model's floating dtype from config.json `torch_dtype` (BF16 when absent or unknown).
  public static func modelDType(_ checkpoint: Checkpoint) -> DType {
    switch checkpoint.config?.torchDtype {
    case "float16": return .float16
    case "float32": return .float32
    default: return .bfloat16
    }
  }

  // MARK: decoding

  /// A whole decoded weight.
  public struct DecodedWeight: Sendable {
    /// Row-major values, `geometry.rows * geometry.columns` of them.
    public var values: [Float]
    public var geometry: WeightGeometry
  }

  /// Decodes the whole of `group` to F32.
  public static func decode(group: WeightGroup, in checkpoint: Checkpoint) throws -> DecodedWeight {
    let geometry = try geometry(of: group, in: checkpoint)
    let count = geometry.rows * geometry.columns
    if streamsRows(group.storage) {
      var values = [Float](repeating: 0, count: count)
      try values.withUnsafeMutableBufferPointer { buffer in
        try decodeRows(group: group, in: checkpoint, geometry: geometry, rows: 0..<geometry.rows, into: buffer)
      }
      return DecodedWeight(values: values, geometry: geometry)
    }
    let matrix = try dequantize(group: group, in: checkpoint, geometry: geometry)
    guard matrix.values.count == count else {
      throw WeightDecodingError.badLayout(
        module: group.modulePath, storage: group.storage,
        reason: "decoded \(matrix.values.count) values, expected \(count) for shape \(geometry.shape)")
    }
    return DecodedWeight(values: matrix.values, geometry: geometry)
  }

  /// Decodes rows `range` of a plain or DeepSeek FP8-block weight into `destination` (`range.count · columns`
  /// values). FP8 ranges must start on a multiple of 128 (`rowAlignment`). Other layouts decode whole with
  /// `decode(group:in:)`.
  public static func decodeRows(
    group: WeightGroup, in checkpoint: Checkpoint, geometry: WeightGeometry? = nil, rows range: Range<Int>,
    into destination: UnsafeMutableBufferPointer<Float>
  ) throws {
    let geometry = try geometry ?? self.geometry(of: group, in: checkpoint)
    let module = group.modulePath
    guard range.lowerBound >= 0, range.upperBound <= geometry.rows, destination.count == range.count * geometry.columns else {
      throw WeightDecodingError.badRowRange(module: module, range: range, rows: geometry.rows, reason: "out of bounds or wrong buffer size")
    }
    let columns = geometry.columns
    switch group.storage {
    case .plain:
      let main = try checkpoint.tensor(group.parts["weight"] ?? "")
      guard let width = main.dtype.byteWidth, ElementCodec.canDecode(main.dtype) else {
        throw WeightDecodingError.unsupported(module: module, storage: .plain, reason: "decoding \(main.dtype) to F32")
      }
      let rowBytes = columns * width
      let slice = UnsafeRawBufferPointer(rebasing: main.bytes[(range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)])
      try ElementCodec.decode(slice, dtype: main.dtype, into: destination)
    case .fp8Block:
      let main = try checkpoint.tensor(group.parts["weight"] ?? "")
      let scale = try checkpoint.tensor(group.parts["weight_scale_inv"] ?? "")
      let block = 128
      let expected = [(geometry.rows + block - 1) / block, (columns + block - 1) / block]
      guard scale.shape == expected else {
        throw WeightDecodingError.badLayout(
          module: module, storage: .fp8Block,
          reason: "weight_scale_inv should be F32 \(expected) for weight \(main.shape) with 128x128 blocks, found \(scale.shape)")
      }
      guard range.lowerBound % block == 0 else {
        throw WeightDecodingError.badRowRange(module: module, range: range, rows: geometry.rows, reason: "fp8 ranges start on a 128-row block")
      }
      guard !range.isEmpty else { return }
      let layout = try FP8BlockLayout(rows: range.count, columns: columns, scheme: .block(rows: block, columns: block))
      let weights = UnsafeRawBufferPointer(rebasing: main.bytes[(range.lowerBound * columns)..<(range.upperBound * columns)])
      let scaleStart = range.lowerBound / block * expected[1]
      var chunkScales = [Float](repeating: 0, count: layout.scaleCount)
      scale.withUnsafeBytes { raw in
        for i in 0..<layout.scaleCount {
          chunkScales[i] = raw.loadUnaligned(fromByteOffset: (scaleStart + i) * 4, as: Float.self)
        }
      }
      try chunkScales.withUnsafeBufferPointer { scales in
        try BlockFP8.dequantize(weights, scales: scales, layout: layout, to: .float32, into: UnsafeMutableRawBufferPointer(destination))
      }
    default:
      throw WeightDecodingError.badRowRange(
        module: module, range: range, rows: geometry.rows, reason: "\(group.storage.rawValue) weights decode whole (use decode(group:in:))")
    }
  }

  /// The group's tensors as `PackedTensor`s named by role (`weight_packed`, `qweight`, `blocks`, ...).
  public static func packedTensors(of group: WeightGroup, in checkpoint: Checkpoint) throws -> [PackedTensor] {
    try group.parts.sorted { $0.key < $1.key }.map { role, name in
      let view = try checkpoint.tensor(name)
      return PackedTensor(nameSuffix: role, dtype: view.dtype, shape: view.shape, bytes: view.copyBytes())
    }
  }

  /// Dequantizes a 4-bit (or MLX 8-bit) layout from its tensors with the format's own rule. `tensors` use the
  /// role names of `WeightGroup.parts` (the `nameSuffix` of the quantizers' `PackedTensor`s).
  public static func dequantize(
    _ tensors: [PackedTensor], storage: WeightStorage, geometry: WeightGeometry, module: String
  ) throws -> DequantizedMatrix {
    do {
      switch storage {
      case .int4PackQuantized:
        if let packed = tensors.first(where: { $0.nameSuffix == "weight_packed" }), packed.shape.count == 2,
          packed.shape[1] * 8 != geometry.columns
        {
          throw WeightDecodingError.unsupported(module: module, storage: storage, reason: "pack-quantized with other than 4 bits")
        }
        if let gIndex = tensors.first(where: { $0.nameSuffix == "weight_g_idx" }) {
          try checkTrivialGroupIndex(gIndex, groupSize: geometry.groupSize ?? 1, module: module, storage: storage)
        }
        return try Int4PackQuantized.dequantize(tensors, groupSize: geometry.groupSize ?? 0)
      case .gptq:
        if let gIndex = tensors.first(where: { $0.nameSuffix == "g_idx" }) {
          try checkTrivialGroupIndex(gIndex, groupSize: geometry.groupSize ?? 1, module: module, storage: storage)
        }
        return try GPTQv1.dequantize(tensors, groupSize: geometry.groupSize ?? 0)
      case .mlxAffine:
        guard tensors.contains(where: { $0.nameSuffix == "biases" }) else {
          throw WeightDecodingError.unsupported(module: module, storage: storage, reason: "an MLX mode without biases (mxfp4/nvfp4/mxfp8)")
        }
        return try MLXAffine.dequantize(tensors, groupSize: geometry.groupSize ?? 0, bits: geometry.bits ?? 0)
      case .mxfp4CompressedTensors:
        return try MXFP4.dequantizeCompressedTensors(tensors)
      case .mxfp4GptOss:
        // Fused expert tensors [E, out, in/32, 16] fold the leading dimensions into the rows.
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
      case .nvfp4ModelOpt:
        return try NVFP4.dequantize(tensors, producer: .modelOpt, outputDType: geometry.dtype)
      case .nvfp4CompressedTensors:
        return try NVFP4.dequantize(tensors, producer: .compressedTensors)
      case .plain, .fp8Block, .fp8CompressedTensors:
        throw WeightDecodingError.badLayout(module: module, storage: storage, reason: "not a packed 4-bit layout")
      }
    } catch let error as FormatQuantizationError {
      throw WeightDecodingError.format(module: module, error)
    }
  }

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

  private static func dequantize(group: WeightGroup, in checkpoint: Checkpoint, geometry: WeightGeometry) throws -> DequantizedMatrix {
    if group.storage == .fp8CompressedTensors { return try decodeCompressedTensorsFP8(group, in: checkpoint, geometry: geometry) }
    return try dequantize(packedTensors(of: group, in: checkpoint), storage: group.storage, geometry: geometry, module: group.modulePath)
  }

  /// compressed-tensors `float-quantized`: `q · scale` in F32, rounded to the scale dtype (what its decompressor
  /// computes in the scale dtype; the product of an E4M3 code and a BF16/F16 scale is exact in F32).
  private static func decodeCompressedTensorsFP8(
    _ group: WeightGroup, in checkpoint: Checkpoint, geometry: WeightGeometry
  ) throws -> DequantizedMatrix {
    let module = group.modulePath
    let main = try checkpoint.tensor(group.parts["weight"] ?? "")
    let scale = try checkpoint.tensor(group.parts["weight_scale"] ?? "")
    let rows = geometry.rows
    let columns = geometry.columns
    let scheme: FP8Scheme
    if scale.shape == [] || scale.shape == [1] {
      scheme = .tensor
    } else if scale.shape == [rows, 1] {
      scheme = .channel
    } else {
      let block = compressedTensorsBlockShape(checkpoint) ?? (128, 128)
      scheme = .block(rows: block.0, columns: block.1)
    }
    let layout = try FP8BlockLayout(rows: rows, columns: columns, scheme: scheme)
    guard layout.scaleCount == scale.entry.elementCount else {
      throw WeightDecodingError.badLayout(
        module: module, storage: group.storage, reason: "weight_scale \(scale.shape) does not fit weight \(main.shape) as \(scheme)")
    }
    var scales = [Float](repeating: 0, count: layout.scaleCount)
    try scales.withUnsafeMutableBufferPointer { try ElementCodec.decode(scale.bytes, dtype: scale.dtype, into: $0) }
    var values = [Float](repeating: 0, count: rows * columns)
    try scales.withUnsafeBufferPointer { scaleBuffer in
      try values.withUnsafeMutableBytes { out in
        try BlockFP8.dequantize(main.bytes, scales: scaleBuffer, layout: layout, to: .float32, into: out)
      }
    }
    if scale.dtype != .float32 {
      var encoded = [UInt8](repeating: 0, count: values.count * 2)
      try values.withUnsafeBufferPointer { source in
        try encoded.withUnsafeMutableBytes { try ElementCodec.encode(source, to: scale.dtype, into: $0) }
      }
      try values.withUnsafeMutableBufferPointer { out in
        try encoded.withUnsafeBytes { try ElementCodec.decode($0, dtype: scale.dtype, into: out) }
      }
    }
    return DequantizedMatrix(values: values, rowCount: rows, columnCount: columns, dtype: scale.dtype)
  }

  private static func compressedTensorsBlockShape(_ checkpoint: Checkpoint) -> (Int, Int)? {
    guard let quantization = checkpoint.config?.quantizationConfig else { return nil }
    if let block = quantization.weightBlockSize, block.count == 2, block[0] > 0, block[1] > 0 { return (block[0], block[1]) }
    guard let groups = quantization.raw["config_groups"]?.objectValue else { return nil }
    for (_, value) in groups {
      if let structure = value["weights"]?["block_structure"]?.arrayValue?.compactMap(\.intValue), structure.count == 2,
        structure[0] > 0, structure[1] > 0
      {
        return (structure[0], structure[1])
      }
    }
    return nil
  }

  // MARK: MLX parameters

  /// Bits, group size and input columns of an MLX affine weight (see the type's documentation for the rule).
  static func mlxParameters(_ group: WeightGroup, in checkpoint: Checkpoint) throws -> (bits: Int, groupSize: Int, columns: Int) {
    let module = group.modulePath
    let weight = try checkpoint.entry(group.parts["weight"] ?? "")
    let scales = try checkpoint.entry(group.parts["scales"] ?? "")
    guard weight.shape.count == 2, scales.shape.count == 2, scales.shape[0] == weight.shape[0], scales.shape[1] > 0 else {
      throw WeightDecodingError.badLayout(
        module: module, storage: .mlxAffine, reason: "expected weight U32 [out, in*bits/32] and scales [out, in/g], found \(weight.shape) and \(scales.shape)")
    }
    let words = weight.shape[1]
    let groupCount = scales.shape[1]
    func consistent(_ bits: Int, _ groupSize: Int) -> Int? {
      guard bits > 0, 32 % bits == 0, groupSize > 0 else { return nil }
      let (columns, overflow) = words.multipliedReportingOverflow(by: 32 / bits)
      guard !overflow, columns == groupCount * groupSize else { return nil }
      return columns
    }
    for (bits, groupSize) in configuredMLXParameters(module: module, checkpoint: checkpoint) {
      if let columns = consistent(bits, groupSize) { return (bits, groupSize, columns) }
    }
    for bits in MLXAffine.supportedBits {
      for groupSize in [64, 32, 128] {
        if let columns = consistent(bits, groupSize) { return (bits, groupSize, columns) }
      }
    }
    throw WeightDecodingError.unsupported(
      module: module, storage: .mlxAffine, reason: "weight \(weight.shape) with scales \(scales.shape) (no bits 4/8, group 32/64/128 fits)")
  }

  /// Candidate (bits, group size) pairs from config.json, most specific first.
  static func configuredMLXParameters(module: String, checkpoint: Checkpoint) -> [(Int, Int)] {
    guard let raw = checkpoint.config?.raw else { return [] }
    var candidates: [(Int, Int)] = []
    func add(_ value: JSONValue?) {
      guard let object = value?.objectValue, let bits = object["bits"]?.intValue, let groupSize = object["group_size"]?.intValue else { return }
      candidates.append((bits, groupSize))
    }
    for key in ["quantization", "quantization_config"] {
      guard let block = raw[key] else { continue }
      add(block[module])
      add(block[mlxStackedAlias(module)])
    }
    add(raw["quantization"])
    add(raw["quantization_config"])
    return candidates
  }

  /// mlx-lm's module path for a per-expert module: `...mlp.experts.7.up_proj` → `...mlp.switch_mlp.up_proj`
  /// (mlx-lm stacks routed experts into one `SwitchLinear`); other paths unchanged.
  public static func mlxStackedAlias(_ module: String) -> String {
    var parts = module.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    guard let i = parts.firstIndex(of: "experts"), i + 1 < parts.count, Int(parts[i + 1]) != nil else { return module }
    parts[i] = "switch_mlp"
    parts.remove(at: i + 1)
    return parts.joined(separator: ".")
  }
}
