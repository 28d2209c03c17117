import Checkpoint
import Sharding
import SystemIO
import Testing

@Suite("shard manifest model")
struct ShardManifestTests {
  @Test("a written manifest reads back to the same contents: re-encoding gives its bytes, no problems")
  func roundTrip() throws {
    let input = try Fixtures.temporaryDirectory("in")
    defer { try? FileSystem.removeTree(input) }
    try TinyCheckpoint.write(to: input, experts: 16, small: true)
    let out = try Fixtures.temporaryDirectory("roundtrip")
    defer { try? FileSystem.removeTree(out) }
    let options = ShardOptions(
      devices: try ShardDevice.homogeneous(count: 3),
      expertLoad: ExpertLoad(counts: [1: (0..<16).map { Double($0) + 0.5 }]))
    let plan = try Fixtures.plan(input, options)
    let result = try #require(try ShardJob.run(plan, sourcePath: input, outputDirectory: out))
    let bytes = try FileSystem.readFile(result.manifestPath)
    let manifest = try #require(ShardManifest.read(directory: out))
    #expect(manifest.problems.isEmpty && manifest.selfCheckProblem == nil)
    #expect(manifest.sealedBytes == bytes)
    #expect(manifest.devices.map(\.name) == ["0", "1", "2"])
    #expect(manifest.tensors?.count == plan.devices.reduce(0) { $0 + $1.tensors.count })
    #expect(manifest.files.count == result.weightFiles.count + result.otherFiles.count)
  }
}
