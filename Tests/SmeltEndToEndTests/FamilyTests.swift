import Checkpoint
import JSON
import SafeTensors
import SystemIO
import TensorCore
import TestSupport
import Testing

/// One bundled family sample (`scripts/family_samples.py`) and what `inspect` must find in it.
struct FamilySample: CustomTestStringConvertible, Sendable {
  var name: String
  var family: String
  var dense: Int
  var moe: Int
  var mtp: Int
  var expertsPerLayer: Int
  /// Whether `smelt convert --to bf16` decodes every weight (false until the format registry reads its layout).
  var converts: Bool = true

  var testDescription: String { name }

  static let all: [FamilySample] = [
    FamilySample(name: "tiny-deepseek-v3.1-fp8", family: "deepseek-v3.1", dense: 1, moe: 1, mtp: 0, expertsPerLayer: 4),
    FamilySample(name: "tiny-deepseek-v3.2-fp8", family: "deepseek-v3.2", dense: 1, moe: 1, mtp: 0, expertsPerLayer: 4),
    FamilySample(
      name: "tiny-deepseek-v4", family: "deepseek-v4", dense: 0, moe: 2, mtp: 1, expertsPerLayer: 4),
    FamilySample(name: "tiny-kimi-k2.5", family: "kimi-k2", dense: 1, moe: 1, mtp: 0, expertsPerLayer: 4),
    FamilySample(name: "tiny-qwen3-moe-fp8", family: "qwen3-moe", dense: 1, moe: 1, mtp: 0, expertsPerLayer: 4),
    FamilySample(name: "tiny-qwen3.5-moe", family: "qwen3.5-moe", dense: 0, moe: 2, mtp: 1, expertsPerLayer: 4),
    FamilySample(
      name: "tiny-qwen3.5-moe-fp8", family: "qwen3.5-moe", dense: 0, moe: 2, mtp: 1, expertsPerLayer: 4),
    FamilySample(name: "tiny-glm4-moe-fp8", family: "glm4-moe", dense: 1, moe: 1, mtp: 1, expertsPerLayer: 4),
    FamilySample(name: "tiny-minimax-m2-fp8", family: "minimax-m2", dense: 0, moe: 2, mtp: 0, expertsPerLayer: 4),
    FamilySample(name: "tiny-gpt-oss", family: "gpt-oss", dense: 0, moe: 2, mtp: 0, expertsPerLayer: 4),
  ]

  /// `Tests/SmeltEndToEndTests/Golden/families/<name>.json`: the family's own BF16 dequantization, per tensor.
  func golden() throws -> [String: (dtype: String, shape: [Int], sha256: String)] {
    let path = TestPaths.repositoryRoot + "/Tests/SmeltEndToEndTests/Golden/families/\(name).json"
    let document = try JSONParser.parse(try FileSystem.readFile(path))
    var result: [String: (String, [Int], String)] = [:]
    for (tensor, value) in document["bf16"]?.objectValue ?? JSONObject() {
      result[tensor] = (
        value["dtype"]?.stringValue ?? "", value["shape"]?.arrayValue?.compactMap(\.intValue) ?? [],
        value["sha256"]?.stringValue ?? ""
      )
    }
    return result
  }
}

/// Serialized: in-process `smelt` runs share the process-wide cleanup of temporary outputs.
@Suite("model families end to end", .serialized) struct FamilyTests {
  @Test("inspect recognises each family sample: family, dense / MoE / MTP layers, routed experts", arguments: FamilySample.all)
  func inspect(_ sample: FamilySample) throws {
    let result = runSmelt(["inspect", TestPaths.sample(sample.name), "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let value = try JSONParser.parse(result.stdout)
    #expect(value["family"]?["id"]?.stringValue == sample.family)
    let layers = value["moe"]?["layers"]?.arrayValue ?? []
    func count(_ kind: String) -> Int { layers.filter { $0["kind"]?.stringValue == kind }.count }
    #expect(count("dense") == sample.dense)
    #expect(count("moe") == sample.moe)
    #expect(count("mtp") == sample.mtp)
    for layer in layers where layer["kind"]?.stringValue == "moe" {
      #expect(layer["routed_experts"]?.intValue == sample.expertsPerLayer)
    }
    let parameters = value["parameters_without_mtp"]?.intValue ?? 0
    let active = value["active_parameters"]?.intValue ?? 0
    #expect(active > 0 && active < parameters)
  }

  @Test(
    "convert --to bf16 of each family sample equals the family's own dequantization bit for bit",
    arguments: FamilySample.all.filter(\.converts))
  func convertToBF16(_ sample: FamilySample) throws {
    let output = try TestPaths.scratchPath("family-bf16-\(sample.name)")
    let result = runSmelt(["convert", TestPaths.sample(sample.name), output, "--to", "bf16", "--quiet"])
    #expect(result.status == 0, "\(result.stderr)")
    let converted = try Checkpoint.open(output)
    let golden = try sample.golden()
    #expect(Set(converted.tensorNames) == Set(golden.keys))
    for name in converted.tensorNames {
      guard let expected = golden[name] else { continue }
      let view = try converted.tensor(name)
      #expect(view.dtype.rawValue == expected.dtype, "\(name)")
      #expect(view.shape == expected.shape, "\(name)")
      #expect(SHA256.hex(of: view.bytes) == expected.sha256, "\(name) differs from the family's dequantization")
    }
    #expect(converted.config?.quantizationConfig == nil)
  }

  @Test("shard --devices 4 puts every routed expert whole on one device and replicates the rest", arguments: FamilySample.all)
  func shardFourDevices(_ sample: FamilySample) throws {
    let output = try TestPaths.scratchPath("family-shard-\(sample.name)")
    let result = runSmelt(["shard", TestPaths.sample(sample.name), output, "--devices", "4", "--quiet"])
    #expect(result.status == 0, "\(result.stderr)")
    let source = try Checkpoint.open(TestPaths.sample(sample.name))
    let classifier = source.classifier
    var owners: [String: Set<Int>] = [:]  // "layer.expert" → devices holding any of its data
    var copies: [String: Int] = [:]  // non-expert tensor → devices holding it
    for device in 0..<4 {
      let shard = try Checkpoint.open("\(output)/\(device)")
      for name in shard.tensorNames {
        let place = classifier.classify(name)
        let view = try shard.tensor(name)
        let original = try source.tensor(name)
        guard place.isRoutedExpert, let layer = place.layer else {
          #expect(view.shape == original.shape && SHA256.hex(of: view.bytes) == SHA256.hex(of: original.bytes), "\(name)")
          copies[name, default: 0] += 1
          continue
        }
        if let expert = place.expert {
          #expect(SHA256.hex(of: view.bytes) == SHA256.hex(of: original.bytes), "\(name)")
          owners["\(layer).\(expert)", default: []].insert(device)
        } else {
          // A fused [E, ...] tensor: the device's experts, contiguous (the default strategy), whole.
          let total = original.shape[0], held = view.shape[0]
          let perExpert = original.bytes.count / total
          #expect(Array(view.shape.dropFirst()) == Array(original.shape.dropFirst()), "\(name)")
          let first = device * total / 4
          let expected = UnsafeRawBufferPointer(rebasing: original.bytes[(first * perExpert)..<((first + held) * perExpert)])
          #expect(SHA256.hex(of: view.bytes) == SHA256.hex(of: expected), "\(name) on device \(device)")
          for expert in first..<(first + held) { owners["\(layer).\(expert)", default: []].insert(device) }
        }
      }
    }
    #expect(!owners.isEmpty)
    #expect(owners.values.allSatisfy { $0.count == 1 }, "an expert is split across devices")
    #expect(copies.values.allSatisfy { $0 == 4 }, "a non-expert tensor is not on every device")
    let nonExpert = source.tensorNames.filter { !classifier.classify($0).isRoutedExpert }
    #expect(Set(copies.keys) == Set(nonExpert))
  }

  @Test("shard --strategy round-robin writes each device's experts of a fused [E, ...] tensor, gathered in order")
  func fusedRoundRobin() throws {
    let sample = TestPaths.sample("tiny-qwen3.5-moe")
    let output = try TestPaths.scratchPath("family-shard-round-robin")
    let result = runSmelt(["shard", sample, output, "--devices", "3", "--strategy", "round-robin", "--quiet"])
    #expect(result.status == 0, "\(result.stderr)")
    let source = try Checkpoint.open(sample)
    let name = "model.language_model.layers.1.mlp.experts.down_proj"
    let original = try source.tensor(name)
    let perExpert = original.bytes.count / original.shape[0]
    for device in 0..<3 {
      let view = try Checkpoint.open("\(output)/\(device)").tensor(name)
      let experts = Array(stride(from: device, to: original.shape[0], by: 3))
      #expect(view.shape == [experts.count] + Array(original.shape.dropFirst()))
      var expected: [UInt8] = []
      for e in experts { expected += Array(original.bytes[(e * perExpert)..<((e + 1) * perExpert)]) }
      #expect(Array(view.bytes) == expected, "device \(device)")
    }
  }
}
