// Fixtures for the hostile-input, crash-safety and verify tests: scratch directories, tiny checkpoints
// written byte by byte, in-process `smelt` runs and the "no partial output" assertion.
import CommandLineSupport
import Foundation
import SafeTensors
import SmeltCommands
import TensorCore
import Testing

// `runSmelt(_:)` (in-process `smelt`) is defined in InspectConvertTests.swift.

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct ScratchDirectory {
  let path: String

  init(_ label: String = "smelt-test") {
    let base = FileManager.default.temporaryDirectory.path + "/\(label)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    path = base
  }

  func join(_ name: String) -> String { path + "/" + name }
  func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A tensor to put into a fixture file: name, dtype, shape and its raw little-endian bytes.
struct FixtureTensor {
  var name: String
  var dtype: DType
  var shape: [Int]
  var bytes: [UInt8]

  /// BF16 values from a deterministic generator (small, varied, all finite), with optional overrides.
  static func bf16(_ name: String, _ shape: [Int], seed: UInt64 = 1, overrides: [Int: UInt16] = [:]) -> FixtureTensor {
    let count = shape.reduce(1, *)
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count * 2)
    for i in 0..<count {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      let unit = Float(Int((state >> 40) & 0xFFFF) - 0x8000) / Float(0x8000)  // [-1, 1)
      var bits = UInt16(truncatingIfNeeded: (unit * 0.05).bitPattern >> 16)
      if let override = overrides[i] { bits = override }
      bytes.append(UInt8(bits & 0xFF))
      bytes.append(UInt8(bits >> 8))
    }
    return FixtureTensor(name: name, dtype: .bfloat16, shape: shape, bytes: bytes)
  }

  /// F32 values.
  static func f32(_ name: String, _ shape: [Int], _ values: [Float]) -> FixtureTensor {
    var bytes: [UInt8] = []
    for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
    return FixtureTensor(name: name, dtype: .float32, shape: shape, bytes: bytes)
  }
}

enum Fixture {
  /// A complete safetensors file (Smelt's writer layout) holding `tensors`.
  static func safetensorsBytes(_ tensors: [FixtureTensor]) throws -> [UInt8] {
    let layout = try SafeTensorsLayout(tensors: tensors.map { PlannedTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape) })
    var bytes = layout.headerBytes
    bytes.append(contentsOf: repeatElement(0, count: layout.fileByteCount - bytes.count))
    let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
    for entry in layout.entries {
      let data = byName[entry.name]?.bytes ?? []
      precondition(data.count == entry.byteCount, "fixture tensor \(entry.name) has \(data.count) bytes, needs \(entry.byteCount)")
      let start = layout.header.dataStart + entry.dataOffsets.lowerBound
      bytes.replaceSubrange(start..<(start + data.count), with: data)
    }
    return bytes
  }

  static func write(_ bytes: [UInt8], to path: String) {
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
  }

  static func write(_ text: String, to path: String) { write(Array(text.utf8), to: path) }

  /// A minimal DeepSeek-V3-like config.json.
  static let config = """
    {
      "architectures": ["DeepseekV3ForCausalLM"],
      "model_type": "deepseek_v3",
      "hidden_size": 64,
      "num_hidden_layers": 2,
      "torch_dtype": "bfloat16"
    }
    """

  /// The tensors of the tiny BF16 checkpoint: two decoder layers of 2-D `*_proj` weights (quantized by
  /// `--to fp8-block`, with cropped edge blocks), norms and embeddings (copied).
  static func tinyTensors(nanIn nanTensor: String? = nil, at index: Int = 5, bits: UInt16 = 0x7FC0) -> [[FixtureTensor]] {
    func weight(_ name: String, _ shape: [Int], _ seed: UInt64) -> FixtureTensor {
      .bf16(name, shape, seed: seed, overrides: name == nanTensor ? [index: bits] : [:])
    }
    let first = [
      weight("model.embed_tokens.weight", [32, 64], 1),
      weight("model.layers.0.input_layernorm.weight", [64], 2),
      weight("model.layers.0.self_attn.q_proj.weight", [160, 64], 3),
      weight("model.layers.0.mlp.down_proj.weight", [64, 136], 4),
    ]
    let second = [
      weight("model.layers.1.input_layernorm.weight", [64], 5),
      weight("model.layers.1.self_attn.q_proj.weight", [160, 64], 6),
      weight("model.layers.1.mlp.down_proj.weight", [64, 136], 7),
      weight("model.norm.weight", [64], 8),
      weight("lm_head.weight", [32, 64], 9),
    ]
    return [first, second]
  }

  /// Writes a two-shard checkpoint (index, config.json, tokenizer.json) into `directory`.
  static func writeCheckpoint(_ shards: [[FixtureTensor]], to directory: String, config: String? = Fixture.config) throws {
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    var map: [String] = []
    var total = 0
    for (i, tensors) in shards.enumerated() {
      let name = "model-\(String(format: "%05d", i + 1))-of-\(String(format: "%05d", shards.count)).safetensors"
      write(try safetensorsBytes(tensors), to: directory + "/" + name)
      for tensor in tensors {
        map.append("    \"\(tensor.name)\": \"\(name)\"")
        total += tensor.bytes.count
      }
    }
    let index = "{\n  \"metadata\": {\"total_size\": \(total)},\n  \"weight_map\": {\n" + map.joined(separator: ",\n") + "\n  }\n}\n"
    write(index, to: directory + "/model.safetensors.index.json")
    if let config { write(config, to: directory + "/config.json") }
    write("{\"model\": {\"type\": \"WordLevel\"}}\n", to: directory + "/tokenizer.json")
  }

  /// The tiny checkpoint in `scratch/in`; returns its path.
  static func tinyCheckpoint(in scratch: ScratchDirectory, nanIn: String? = nil, bits: UInt16 = 0x7FC0) throws -> String {
    let input = scratch.join("in")
    try writeCheckpoint(tinyTensors(nanIn: nanIn, bits: bits), to: input)
    return input
  }

  /// Every file below `directory` (relative names, sorted) with its SHA-256.
  static func hashes(_ directory: String) -> [String: String] {
    var result: [String: String] = [:]
    let names = (try? FileManager.default.subpathsOfDirectory(atPath: directory)) ?? []
    for name in names.sorted() {
      let path = directory + "/" + name
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
        let data = FileManager.default.contents(atPath: path)
      else { continue }
      result[name] = SHA256.hex(of: Array(data))
    }
    return result
  }

  static func names(_ directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
  }
}

/// Asserts that `directory` holds no output a loader could mistake for a result: no `*.safetensors`, no
/// index, no manifest, no temporary files.
func expectNoPartialOutput(_ directory: String, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
  let names = Fixture.names(directory)
  let leftovers = names.filter {
    $0.hasSuffix(".safetensors") || $0.hasSuffix(".smelt-tmp") || $0 == "model.safetensors.index.json"
      || $0 == "smelt-manifest.json" || $0 == ".smelt-progress.json"
  }
  #expect(leftovers.isEmpty, "\(label): partial output left behind: \(leftovers)", sourceLocation: sourceLocation)
}
