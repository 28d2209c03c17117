import SafeTensors
import SystemIO
import TensorCore

/// Hand-made checkpoints for tests of what reads them.
public enum TestCheckpoint {
  /// Writes a single-file checkpoint holding `tensors` (name, dtype, shape, raw bytes), plus `config` as
  /// `config.json`, in a fresh scratch directory; returns the directory.
  public static func write(_ tensors: [(String, DType, [Int], [UInt8])], config: String? = nil) throws -> String {
    let directory = try TestPaths.scratchDirectory("handmade-\(UInt64.random(in: 0...UInt64.max))")
    let layout = try SafeTensorsLayout(tensors: tensors.map { PlannedTensor(name: $0.0, dtype: $0.1, shape: $0.2) })
    let writer = try SafeTensorsFileWriter(path: directory + "/model.safetensors", layout: layout)
    for (name, _, _, bytes) in tensors { try writer.write(tensorNamed: name, bytes: bytes) }
    try writer.commit()
    if let config { try FileSystem.writeFileAtomically(Array(config.utf8), to: directory + "/config.json") }
    return directory
  }

  /// The raw (little-endian) bytes of F32 `values`.
  public static func bytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
}
