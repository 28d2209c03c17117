import JSON
import SafeTensors
import WeightFormats

/// A checkpoint is where the weight decoder reads: tensors through the index, zero-copy from the mapping.
extension Checkpoint: TensorStore {
  public var storePath: String { directory }
  public var configObject: JSONObject? { config?.raw }
  public func storedEntry(_ name: String) -> TensorEntry? { entry(named: name) }

  public func bytes(of name: String, range: Range<Int>) throws -> TensorBytes {
    let view = try tensor(name)
    guard range.lowerBound >= 0, range.upperBound <= view.entry.byteCount else {
      throw CheckpointError.unknownTensor(name: "\(name) bytes \(range) of \(view.entry.byteCount)", checkpoint: directory)
    }
    return TensorBytes(view: view, range: range)
  }
}
