/// Why a checkpoint directory could not be read as one.
public enum CheckpointError: Error, Sendable, CustomStringConvertible {
  /// Nothing at the path, or not a file/directory Smelt can read.
  case notFound(path: String)
  /// A directory with neither `model.safetensors.index.json` nor any `*.safetensors` file.
  case noWeights(directory: String)
  /// The index is not valid JSON or lacks `weight_map`.
  case invalidIndex(path: String, reason: String)
  /// An index entry names a file outside the checkpoint directory (absolute path or `..`).
  case unsafeIndexPath(index: String, tensor: String, file: String)
  /// An index entry names a file that does not exist.
  case missingShard(index: String, file: String, tensorCount: Int, example: String)
  /// The index maps a tensor to a file whose header does not contain it.
  case tensorMissingFromShard(index: String, tensor: String, file: String)
  /// The same tensor name appears in two files.
  case duplicateTensor(name: String, firstFile: String, secondFile: String)
  /// A tensor name that the checkpoint does not contain.
  case unknownTensor(name: String, checkpoint: String)
  /// `config.json` is malformed or a known field has the wrong type.
  case invalidConfig(path: String, field: String?, reason: String)
  /// The index leaves out weight files of its directory, or names no tensor at all: converting it would
  /// silently drop weights.
  case incompleteIndex(index: String, unindexedFiles: [String], tensorCount: Int, override: String?)
  /// A scale tensor with values no quantization writes (zero, negative, NaN, infinite).
  case badScale(tensor: String, dtype: String, count: Int, firstIndex: Int, bits: String, expectation: String)
  /// `smelt-manifest.json` is not valid JSON or not a Smelt manifest.
  case invalidManifest(path: String, reason: String)

  public var description: String {
    switch self {
    case .notFound(let path):
      return "no checkpoint at '\(path)': expected a .safetensors file or a directory containing model.safetensors or model.safetensors.index.json"
    case .noWeights(let directory):
      return "'\(directory)' contains no .safetensors files and no model.safetensors.index.json"
    case .invalidIndex(let path, let reason):
      return "\(path): invalid index: \(reason)"
    case .unsafeIndexPath(let index, let tensor, let file):
      return "\(index): tensor '\(tensor)' points to '\(file)', which is outside the checkpoint directory (absolute paths and '..' are refused)"
    case .missingShard(let index, let file, let count, let example):
      return "\(index): shard '\(file)' (holding \(count) tensor(s), e.g. '\(example)') does not exist; the download may be incomplete"
    case .tensorMissingFromShard(let index, let tensor, let file):
      return "\(index): says tensor '\(tensor)' is in '\(file)', but that file's header does not contain it"
    case .duplicateTensor(let name, let first, let second):
      return "tensor '\(name)' appears in both '\(first)' and '\(second)'"
    case .unknownTensor(let name, let checkpoint):
      return "checkpoint '\(checkpoint)' has no tensor named '\(name)'"
    case .incompleteIndex(let index, let unindexed, let tensorCount, let override):
      let listed = unindexed.prefix(3).joined(separator: ", ") + (unindexed.count > 3 ? ", ..." : "")
      if tensorCount == 0 {
        let others = unindexed.isEmpty ? "" : ", while the directory holds \(unindexed.count) .safetensors file(s) it does not name (\(listed))"
        return "\(index): the index's weight_map names no tensors\(others); the index is empty or broken: nothing would be converted"
      }
      var text = "\(index) does not name \(unindexed.count) .safetensors file(s) of its directory (\(listed)); their tensors would be left out (\(tensorCount) tensor(s) indexed). The download or the index may be incomplete"
      if let override { text += "; pass \(override) to use only what the index names" }
      return text
    case .badScale(let tensor, let dtype, let count, let firstIndex, let bits, let expectation):
      return "scale tensor '\(tensor)' (\(dtype)) has \(count) value(s) that are not \(expectation), first at element \(firstIndex) (bits \(bits)); the checkpoint is corrupt (smelt verify --deep reports it too)"
    case .invalidManifest(let path, let reason):
      return "\(path): invalid manifest: \(reason)"
    case .invalidConfig(let path, let field, let reason):
      if let field { return "\(path): field '\(field)': \(reason)" }
      return "\(path): \(reason)"
    }
  }
}
