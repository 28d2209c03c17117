import JSON
import TensorCore
import WeightFormats

extension CheckpointSummary {
  /// The `smelt inspect --json` document (schema: `formats/inspect-json.md`).
  public func json(tensors: [TensorRow]? = nil) -> JSONValue {
    func int(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    func optionalInt(_ value: Int?) -> JSONValue { value.map(int) ?? .null }

    var architecture: [(String, JSONValue)] = []
    if let config {
      architecture = [
        ("architectures", .array(config.architectures.map { .string($0) })),
        ("model_type", config.modelType.map { .string($0) } ?? .null),
        ("hidden_size", optionalInt(config.hiddenSize)),
        ("num_hidden_layers", optionalInt(config.numHiddenLayers)),
        ("num_attention_heads", optionalInt(config.numAttentionHeads)),
        ("vocab_size", optionalInt(config.vocabSize)),
        ("n_routed_experts", optionalInt(config.routedExpertCount)),
        ("n_shared_experts", optionalInt(config.nSharedExperts)),
        ("num_experts_per_tok", optionalInt(config.numExpertsPerTok)),
        ("first_k_dense_replace", optionalInt(config.firstKDenseReplace)),
        ("q_lora_rank", optionalInt(config.qLoraRank)),
        ("kv_lora_rank", optionalInt(config.kvLoraRank)),
        ("rope_scaling", config.ropeScaling.map { .string($0.type) } ?? .null),
        ("quant_method", config.quantizationConfig?.quantMethod.map { .string($0) } ?? .null),
      ]
    }
    var members: [(String, JSONValue)] = [
      ("schema", .string(DocumentSchema.inspect)),
      ("path", .string(path)),
      ("files", .array(files.map { file in
        .object(members: [
          ("name", .string(file.name)), ("tensors", int(file.tensorCount)),
          ("tensor_bytes", int(file.tensorByteCount)), ("file_bytes", int(file.fileByteCount)),
        ])
      })),
      ("tensor_count", int(tensorCount)),
      ("parameters", int(parameterCount)),
      ("parameters_without_mtp", int(parameterCountWithoutMTP)),
      ("active_parameters", optionalInt(activeParameterCount)),
      ("family", .object(members: [("id", .string(family.id)), ("name", .string(family.name))])),
      ("stored_elements", int(storedElementCount)),
      ("tensor_bytes", int(tensorByteCount)),
      ("dtypes", .array(dtypes.map { usage in
        .object(members: [
          ("dtype", .string(usage.dtype.rawValue)), ("tensors", int(usage.tensorCount)),
          ("elements", int(usage.elementCount)), ("bytes", int(usage.byteCount)),
        ])
      })),
      ("architecture", config == nil ? .null : .object(members: architecture)),
      ("quantization", .array(quantization.map { usage in
        .object(members: [("format", .string(usage.storage.rawValue)), ("weights", int(usage.weightCount)), ("detail", .string(usage.detail))])
      })),
      ("moe", .object(members: [
        ("expert_bytes", int(expertByteCount)),
        ("non_expert_bytes", int(nonExpertByteCount)),
        ("layers", .array(layers.map { layer in
          .object(members: [
            ("index", int(layer.index)), ("kind", .string(layer.kind.rawValue)),
            ("routed_experts", int(layer.routedExpertCount)),
            ("shared_expert_tensors", int(layer.sharedExpertTensorCount)),
            ("bytes_per_expert", optionalInt(layer.bytesPerExpert)),
            ("expert_bytes", int(layer.expertByteCount)), ("non_expert_bytes", int(layer.nonExpertByteCount)),
          ])
        })),
      ])),
      ("mtp_layers", .array(mtpLayerIndices.map(int))),
      ("warnings", .array(warnings.map { .string($0) })),
    ]
    if let tensors {
      members.append(("tensors", .array(tensors.map { row in
        .object(members: [
          ("name", .string(row.name)), ("dtype", .string(row.dtype)), ("shape", .array(row.shape.map(int))),
          ("bytes", int(row.byteCount)), ("file", .string(row.file)),
        ])
      })))
    }
    return .object(members: members)
  }

  /// One line of `inspect --tensors`.
  public struct TensorRow: Sendable {
    public var name: String
    public var dtype: String
    public var shape: [Int]
    public var byteCount: Int
    public var file: String
    public init(name: String, dtype: String, shape: [Int], byteCount: Int, file: String) {
      self.name = name
      self.dtype = dtype
      self.shape = shape
      self.byteCount = byteCount
      self.file = file
    }
  }
}
