import SafeTensors
import TensorCore

/// The `smelt forward` output: one safetensors file with the F32 tensor `logits` `[B, T, V]` (and the input
/// ids as I64 `input_ids` `[B, T]`, so the file documents what produced it).
public enum LogitsFile {
  /// Writes `logits` for `tokens` to `path` (a temporary sibling renamed into place when complete).
  public static func write(logits: FloatTensor, tokens: [[Int]], to path: String) throws {
    let batch = tokens.count, length = tokens.first?.count ?? 0
    let layout = try SafeTensorsLayout(tensors: [
      PlannedTensor(name: "logits", dtype: .float32, shape: logits.shape),
      PlannedTensor(name: "input_ids", dtype: .int64, shape: [batch, length]),
    ])
    let writer = try SafeTensorsFileWriter(path: path, layout: layout)
    do {
      try logits.values.withUnsafeBytes { try writer.write(tensorNamed: "logits", bytes: $0) }
      let ids = tokens.joined().map { Int64($0).littleEndian }
      try ids.withUnsafeBytes { try writer.write(tensorNamed: "input_ids", bytes: $0) }
      try writer.commit()
    } catch {
      writer.abandon()
      throw error
    }
  }
}
