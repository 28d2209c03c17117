import Checkpoint
import GGUFModel
import SafeTensors
import TensorCore
import WeightFormats

/// A deepseek2 GGUF read as the checkpoint it holds (`GGUFCheckpoint`: Hugging Face names, the ggml
/// registry entries, `config.json` rebuilt from the metadata), so `validate ORIG X.gguf` and `forward X.gguf`
/// work on a GGUF as on safetensors.
public struct GGUFTensorSource: TensorSource {
  public let gguf: GGUFCheckpoint
  public let config: ModelConfig?

  /// Opens a GGUF (any file of a split set opens the whole set).
  public init(path: String) throws {
    gguf = try GGUFCheckpoint(path: path)
    config = try ModelConfig(object: gguf.config, path: path + " (metadata)")
  }

  public var directory: String { gguf.path }
  public var entries: [TensorEntry] { gguf.entries }
  public func entry(_ name: String) -> TensorEntry? { gguf.storedEntry(name) }
  public func bytes(of name: String, range: Range<Int>) throws -> TensorBytes { try gguf.bytes(of: name, range: range) }
  public var inputFilePaths: [String] { gguf.inputFilePaths }
  public func checkUnchanged() throws { try gguf.checkUnchanged() }
  public func sourceStorages(of name: String) -> [(storage: WeightStorage, dtype: DType)]? {
    gguf.sourceStorages(of: name)
  }

  /// The MTP block of a GGUF written without it (`--drop-mtp`, or llama.cpp's converter), and a tied
  /// `lm_head`, are absent by design.
  public func leavesOut(_ name: String) -> Bool {
    let parsed = TensorName(name)
    if name == "lm_head.weight" { return config?.tieWordEmbeddings == true }
    guard let layer = parsed.layer, let layers = config?.numHiddenLayers else { return false }
    return layer >= layers + (config?.numNextnPredictLayers ?? 0)
  }
}
