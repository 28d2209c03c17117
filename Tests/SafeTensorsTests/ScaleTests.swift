import SystemIO
import TensorCore
import Testing

@testable import SafeTensors

/// Work linear in tensors (issue 15: `convert --to f32` of 920k zero-size tensors took over 300 s in the
/// writer's position lookup). Inputs are made here; nothing is timed: a quadratic step would not finish.
/// (Parsing a million-tensor header is covered by CheckpointTests' scale suite.)
@Suite("a million tensors")
struct ScaleTests {
  static let count = 1_000_000

  @Test("a million zero-size tensors are planned, written one by one and committed")
  func writesAMillionEmptyTensors() throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let tensors = (0..<Self.count).map { PlannedTensor(name: "z\($0)", dtype: .float32, shape: [0]) }
    let layout = try SafeTensorsLayout(tensors: tensors)
    #expect(layout.entries.count == Self.count)
    let writer = try SafeTensorsFileWriter(path: directory.file("empty.safetensors"), layout: layout)
    for tensor in tensors { try writer.write(tensorNamed: tensor.name, bytes: []) }
    try writer.commit()
    let reread = try SafeTensorsFile(path: directory.file("empty.safetensors"))
    #expect(reread.entries.count == Self.count)
  }
}
