import SafeTensors
import SystemIO
import TensorCore
import TestSupport
import Testing

@testable import Checkpoint
import WeightFormats

/// Opening, summarizing and grouping are linear in tensors (issue 15: 100k dot-free names took 17 s to
/// inspect, a million ~25 min). The checkpoint is made here; nothing is timed: a quadratic step would not
/// finish.
@Suite("a checkpoint of a million tensors")
struct CheckpointScaleTests {
  static let count = 1_000_000

  @Test("a million dot-free names: opened through an index, summarized, grouped one plain group each")
  func millionDotFreeNames() throws {
    let directory = try TestPaths.scratchDirectory("million-tensors")
    defer { try? FileSystem.removeTree(directory) }
    let names = (0..<Self.count).map { "t\($0)" }
    let layout = try SafeTensorsLayout(tensors: names.map { PlannedTensor(name: $0, dtype: .uint8, shape: [1]) })
    var file = layout.headerBytes
    file.append(contentsOf: repeatElement(1, count: Self.count))
    try FileSystem.writeFileAtomically(file, to: directory + "/model.safetensors")
    var index = Array(#"{"metadata":{"total_size":1000000},"weight_map":{"#.utf8)
    index.reserveCapacity(Self.count * 32)
    for (i, name) in names.enumerated() {
      if i > 0 { index.append(UInt8(ascii: ",")) }
      index.append(UInt8(ascii: "\""))
      index.append(contentsOf: name.utf8)
      index.append(contentsOf: #"":"model.safetensors""#.utf8)
    }
    index.append(contentsOf: "}}".utf8)
    try FileSystem.writeFileAtomically(index, to: directory + "/model.safetensors.index.json")

    let checkpoint = try Checkpoint.open(directory)
    #expect(checkpoint.tensorNames.count == Self.count)
    #expect(checkpoint.warnings.isEmpty)
    #expect(checkpoint.location(of: "t765432")?.entry.byteCount == 1)
    let summary = CheckpointSummary(checkpoint)
    #expect(summary.tensorCount == Self.count)
    #expect(summary.parameterCount == Self.count)
    var groups = 0
    WeightGrouping.forEachGroup(of: checkpoint.entries) { group in
      if group.storage == .plain { groups += 1 }
    }
    #expect(groups == Self.count)
  }

  @Test("a million leaves of one module: companions found by binary search")
  func millionLeavesOfOneModule() throws {
    var entries: [TensorEntry] = []
    entries.reserveCapacity(Self.count)
    for i in 0..<Self.count / 2 {
      // FP8 weights with their scales, as `x.w<i>` + `x.w<i>_scales` gpt-oss style blocks.
      let offset = 2 * i
      entries.append(TensorEntry(name: "x.w\(i)_blocks", dtype: .uint8, shape: [1], dataOffsets: offset..<(offset + 1))!)
      entries.append(TensorEntry(name: "x.w\(i)_scales", dtype: .uint8, shape: [1], dataOffsets: (offset + 1)..<(offset + 2))!)
    }
    let groups = WeightGrouping.groups(of: entries)
    #expect(groups.count == Self.count / 2)
    #expect(groups.allSatisfy { $0.storage == .mxfp4GptOss })
  }
}
