import Checkpoint
import JSON
import SystemIO
import TestSupport
import Testing

@Suite("smelt shard") struct ShardEndToEndTests {
  @Test("shards the FP8 sample over 4 devices: every device directory reopens, experts split contiguously")
  func fourDevices() throws {
    let output = try TestPaths.scratchPath("shard-e2e-4")
    let result = runSmelt(["shard", TestPaths.sample("tiny-deepseek-v3-fp8"), output, "--devices", "4", "--quiet"])
    #expect(result.status == 0, "\(result.stderr)")
    var expertOwners: [String: Int] = [:]
    for device in 0..<4 {
      let checkpoint = try Checkpoint.open("\(output)/\(device)")
      for name in checkpoint.tensorNames {
        let parsed = TensorName(name)
        guard let expert = parsed.expert, parsed.leaf == "weight", let layer = parsed.layer else { continue }
        #expect(expert / 4 == device, "expert \(expert) of layer \(layer) on device \(device)")
        expertOwners["\(layer).\(expert).\(parsed.modulePath)", default: 0] += 1
        // The scale travels with its weight.
        #expect(checkpoint.contains(name + "_scale_inv"))
      }
    }
    #expect(expertOwners.values.allSatisfy { $0 == 1 })
    #expect(expertOwners.count == 4 * 16 * 3)
    let manifest = try JSONParser.parse(try FileSystem.readFile(output + "/manifest.json"))
    #expect(manifest["devices"]?.arrayValue?.count == 4)
  }

  @Test("a plan that does not fit is refused before anything is written, with the per-device table")
  func overBudget() throws {
    let output = try TestPaths.scratchPath("shard-e2e-budget")
    let result = runSmelt([
      "shard", TestPaths.sample("tiny-deepseek-v3-fp8"), output, "--device", "gpu0:3MB", "--device", "cpu:10MB",
      "--place", "*.experts.*=cpu",
    ])
    #expect(result.status == 1)
    #expect(result.stderr.contains("gpu0") || result.stdout.contains("gpu0"))
    #expect(!FileSystem.exists(output + "/gpu0"))
  }
}
