import Foundation
import Checkpoint
import JSON
import ReferenceModel
import TensorCore

/// Test-only helpers: a minimal safetensors reader (F32/BF16/F16 → F32), config.json → ModelConfiguration,
/// random in-memory models.
enum Fixtures {
  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  /// The repository root (this file is Tests/ReferenceModelTests/Fixtures.swift).
  static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  /// The golden fixture folder (`Tests/ReferenceModelTests/Golden`).
  static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
    "Golden")

  /// Every tensor of every `*.safetensors` file in `directory`, as F32.
  static func loadTensors(directory: URL, skippingPrefix: String? = nil) throws -> [String: FloatTensor] {
    let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
      $0.hasSuffix(".safetensors")
    }
    var tensors: [String: FloatTensor] = [:]
    for file in files.sorted() {
      for (name, tensor) in try loadSafetensors(directory.appendingPathComponent(file), skippingPrefix: skippingPrefix) {
        tensors[name] = tensor
      }
    }
    return tensors
  }

  /// The tensors of one safetensors file, converted to F32 (F32, BF16 and F16 only).
  static func loadSafetensors(_ url: URL, skippingPrefix: String? = nil) throws -> [String: FloatTensor] {
    let bytes = [UInt8](try Data(contentsOf: url))
    guard bytes.count >= 8 else { throw Failure(description: "\(url.path): too short") }
    var headerLength = 0
    for i in 0..<8 { headerLength |= Int(bytes[i]) << (8 * i) }
    let header = try JSONParser.parse(Array(bytes[8..<(8 + headerLength)]))
    guard let object = header.objectValue else { throw Failure(description: "\(url.path): header is not an object") }
    let dataStart = 8 + headerLength
    var tensors: [String: FloatTensor] = [:]
    for (name, entry) in object where name != "__metadata__" {
      if let skippingPrefix, name.hasPrefix(skippingPrefix) { continue }
      guard let dtype = entry["dtype"]?.stringValue, let shape = entry["shape"]?.arrayValue?.compactMap(\.intValue),
        let offsets = entry["data_offsets"]?.arrayValue?.compactMap(\.intValue), offsets.count == 2
      else { throw Failure(description: "\(url.path): bad entry \(name)") }
      let start = dataStart + offsets[0], end = dataStart + offsets[1]
      guard 0 <= start, start <= end, end <= bytes.count else { throw Failure(description: "\(url.path): \(name) out of bounds") }
      let width: Int
      switch dtype {
      case "F32", "I64": width = dtype == "I64" ? 8 : 4
      case "BF16", "F16": width = 2
      case "F8_E4M3": width = 1
      default: continue  // not needed by the forward pass
      }
      let count = (end - start) / width
      // One loop per dtype: a switch per element is slow in debug builds.
      let values = bytes.withUnsafeBytes { raw in
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
          switch dtype {
          case "F32":
            for i in 0..<count { out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self)) }
          case "BF16":
            for i in 0..<count {
              out[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self)) << 16)
            }
          case "F16":
            for i in 0..<count {
              out[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self)))
            }
          case "I64":
            for i in 0..<count { out[i] = Float(raw.loadUnaligned(fromByteOffset: start + 8 * i, as: Int64.self)) }
          default:  // F8_E4M3
            let table = (0...255).map { decodeE4M3(UInt8($0)) }
            for i in 0..<count { out[i] = table[Int(raw[start + i])] }
          }
          initialized = count
        }
      }
      tensors[name] = try FloatTensor(shape: shape, values: values)
    }
    return tensors
  }

  /// The `__metadata__` strings of a safetensors file.
  static func loadMetadata(_ url: URL) throws -> [String: String] {
    let bytes = [UInt8](try Data(contentsOf: url))
    guard bytes.count >= 8 else { throw Failure(description: "\(url.path): too short") }
    var headerLength = 0
    for i in 0..<8 { headerLength |= Int(bytes[i]) << (8 * i) }
    let header = try JSONParser.parse(Array(bytes[8..<(8 + headerLength)]))
    var metadata: [String: String] = [:]
    for (key, value) in header["__metadata__"]?.objectValue ?? JSONObject() {
      guard let text = value.stringValue else { continue }
      metadata[key] = text
      // scripts/golden-logits.py nests its fields as one JSON object string under "golden".
      if let nested = (try? JSONParser.parse(text))?.objectValue {
        for (innerKey, innerValue) in nested { if let inner = innerValue.stringValue { metadata[innerKey] = inner } }
      }
    }
    return metadata
  }

  /// `float8_e4m3fn` → Float (bias 7, subnormals, a single NaN pattern per sign, no infinities).
  static func decodeE4M3(_ byte: UInt8) -> Float {
    let sign: Float = byte & 0x80 != 0 ? -1 : 1
    let exponent = Int((byte >> 3) & 0xF), mantissa = Float(byte & 0x7)
    if exponent == 0xF && byte & 0x7 == 0x7 { return .nan }
    if exponent == 0 { return sign * mantissa / 8 * 0x1p-6 }
    return sign * (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
  }

  /// Replaces every FP8 weight that has a `weight_scale_inv` with `float32(q) · scale[row / 128, column / 128]`
  /// and drops the scales (the DeepSeek-V3 release convention), as scripts/golden-logits.py does.
  static func dequantizeBlockFP8(_ tensors: [String: FloatTensor]) throws -> [String: FloatTensor] {
    var out: [String: FloatTensor] = [:]
    for (name, tensor) in tensors where !name.hasSuffix(".weight_scale_inv") {
      guard let scale = tensors[name + "_scale_inv"], tensor.shape.count == 2, scale.shape.count == 2 else {
        out[name] = tensor
        continue
      }
      let rows = tensor.shape[0], columns = tensor.shape[1], scaleColumns = scale.shape[1]
      let values = [Float](unsafeUninitializedCapacity: rows * columns) { out, initialized in
        tensor.values.withUnsafeBufferPointer { q in
          scale.values.withUnsafeBufferPointer { s in
            for r in 0..<rows {
              for c in 0..<columns { out[r * columns + c] = q[r * columns + c] * s[(r / 128) * scaleColumns + c / 128] }
            }
          }
        }
        initialized = rows * columns
      }
      out[name] = try FloatTensor(shape: tensor.shape, values: values)
    }
    return out
  }

  /// Reads `config.json` in `directory` and maps it with `modelConfiguration(_:)`.
  static func loadConfiguration(directory: URL) throws -> ModelConfiguration {
    let bytes = [UInt8](try Data(contentsOf: directory.appendingPathComponent("config.json")))
    return try modelConfiguration(try ModelConfig(json: bytes, path: directory.path))
  }

  /// config.json (as Checkpoint's `ModelConfig`) → `ModelConfiguration`: the library mapping.
  static func modelConfiguration(_ config: ModelConfig) throws -> ModelConfiguration {
    try ModelConfiguration(checkpointConfig: config)
  }

  /// A small random DeepSeek-V3-shaped model in memory (1 dense + 1 MoE layer).
  static func randomModel(queryLoraRank: Int? = 24, yarn: Bool = true, seed: UInt64 = 7) throws -> ReferenceModel {
    let configuration = ModelConfiguration(
      vocabularySize: 40, hiddenSize: 32, intermediateSize: 48, layerCount: 2, headCount: 2, rmsNormEpsilon: 1e-6,
      maxPositionEmbeddings: 64,
      attention: LatentAttentionConfiguration(
        queryLoraRank: queryLoraRank, keyValueLoraRank: 16, noPositionHeadDimension: 8, ropeHeadDimension: 8,
        valueHeadDimension: 8),
      rope: RopeConfiguration(
        theta: 10000,
        yarn: yarn ? YarnScaling(factor: 4, originalMaxPositionEmbeddings: 16, mscale: 1, mscaleAllDimensions: 1) : nil),
      mixtureOfExperts: MixtureOfExpertsConfiguration(
        routedExpertCount: 8, sharedExpertCount: 1, expertsPerToken: 2, expertIntermediateSize: 16,
        firstDenseLayerCount: 1, normalizeTopK: true, routedScalingFactor: 2.5,
        router: .sigmoidGroupLimited(groupCount: 4, selectedGroupCount: 2, maskedScore: .negativeInfinity)))
    var generator = SplitMix64(seed: seed)
    var tensors: [String: FloatTensor] = [:]
    func random(_ name: String, _ shape: [Int], scale: Float, offset: Float = 0) throws {
      let count = shape.reduce(1, *)
      let values = (0..<count).map { _ in offset + scale * (generator.nextUnitFloat() * 2 - 1) }
      tensors[name] = try FloatTensor(shape: shape, values: values)
    }
    let D = 32, V = 40
    try random(WeightNames.embedding, [V, D], scale: 1)
    try random(WeightNames.finalNorm, [D], scale: 0.1, offset: 1)
    try random(WeightNames.lmHead, [V, D], scale: 0.3)
    for layer in 0..<2 {
      for name in WeightNames.layerTensorNames(layer, configuration: configuration) {
        let suffix = name.split(separator: ".").suffix(2).joined(separator: ".")
        let shape: [Int]
        switch suffix {
        case "input_layernorm.weight", "post_attention_layernorm.weight": shape = [D]
        case "q_a_proj.weight": shape = [24, D]
        case "q_a_layernorm.weight": shape = [24]
        case "q_b_proj.weight": shape = [2 * 16, 24]
        case "q_proj.weight": shape = [2 * 16, D]
        case "kv_a_proj_with_mqa.weight": shape = [16 + 8, D]
        case "kv_a_layernorm.weight": shape = [16]
        case "kv_b_proj.weight": shape = [2 * 16, 16]
        case "o_proj.weight": shape = [D, 2 * 8]
        case "gate.weight": shape = [8, D]
        case "gate.e_score_correction_bias": shape = [8]
        default:
          let isExpert = name.contains("experts")
          let I = isExpert ? 16 : 48
          shape = name.hasSuffix("down_proj.weight") ? [D, I] : [I, D]
        }
        let isNorm = suffix.contains("norm")
        let isBias = suffix.hasSuffix("bias")
        let inputs = Float(shape.last ?? 1)
        try random(
          name, shape, scale: isNorm ? 0.1 : isBias ? 0.3 : 1 / inputs.squareRoot(), offset: isNorm || isBias ? 1 : 0)
      }
    }
    return try ReferenceModel(configuration: configuration, weights: InMemoryWeightProvider(tensors))
  }
}
