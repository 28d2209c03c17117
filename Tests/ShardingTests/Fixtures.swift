import Checkpoint
import SafeTensors
import Sharding
import SystemIO
import TensorCore
import WeightFormats

/// Paths and helpers shared by the sharding tests.
enum Fixtures {
  static let repositoryRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = FileSystem.split(path).directory }
    return path
  }()

  static let bf16Sample = FileSystem.join(repositoryRoot, "samples", "tiny-deepseek-v3")
  static let fp8Sample = FileSystem.join(repositoryRoot, "samples", "tiny-deepseek-v3-fp8")

  static func source(_ path: String) throws -> ShardSource {
    try ShardSource(checkpoint: try Checkpoint.open(path))
  }

  static func plan(_ path: String, _ options: ShardOptions) throws -> ShardPlan {
    try ShardPlanner.plan(try source(path), options: options)
  }

  /// A fresh empty directory, removed by the caller with `FileSystem.removeTree`. On tmpfs (`/dev/shm`)
  /// where available: the writer fsyncs every file, which costs tens of milliseconds each on a shared disk.
  static func temporaryDirectory(_ label: String) throws -> String {
    let root = FileSystem.isDirectory("/dev/shm") ? "/dev/shm" : "/tmp"
    let path = "\(root)/smelt-shard-tests-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileSystem.createDirectory(path)
    return path
  }

  /// A synthetic source: `layers` MoE layers of `experts` experts with 3 BF16 projections each, plus a
  /// norm per layer. No files behind it: for planner tests only.
  static func syntheticSource(layers: Int, experts: Int, expertBytes: (Int, Int) -> Int = { _, _ in 64 }) -> ShardSource {
    var tensors: [SourceTensor] = []
    var groups: [SourceGroup] = []
    var offset = 0
    func add(_ name: String, _ bytes: Int) {
      groups.append(SourceGroup(storage: .plain, parts: ["weight": tensors.count]))
      tensors.append(SourceTensor(name: name, dtype: .bfloat16, shape: [bytes / 2], byteCount: bytes, fileIndex: 0, fileOffset: offset))
      offset += bytes
    }
    for layer in 0..<layers {
      add("model.layers.\(layer).input_layernorm.weight", 32)
      for expert in 0..<experts {
        for projection in ["gate_proj", "up_proj", "down_proj"] {
          add("model.layers.\(layer).mlp.experts.\(expert).\(projection).weight", expertBytes(layer, expert))
        }
      }
    }
    return ShardSource(directory: "/synthetic", fileNames: ["model.safetensors"], tensors: tensors, groups: groups, config: nil, sidecarFiles: [])
  }
}

#if canImport(Glibc)
  import Glibc
#endif

/// A tiny DeepSeek-V3-shaped checkpoint written to disk for writer tests (a few hundred kB, so that
/// hashing it in a debug build stays fast): FP8 block-scaled linears with 128-multiples on the split dims,
/// `layers` decoder layers (layer 0 dense, the rest MoE with `experts` routed experts and a shared expert),
/// an MTP layer, two shards, config and tokenizer files. Tensor bytes are a deterministic function of the
/// name, so any misplaced byte shows.
enum TinyCheckpoint {
  /// - Parameter small: 16-wide dims (for expert-parallel tests with many devices); otherwise 128-multiples
  ///   that tensor parallelism can split at FP8 block boundaries over 2 devices.
  static func write(to directory: String, layers: Int = 3, experts: Int = 8, fp8: Bool = true, small: Bool = false) throws {
    let u = small ? 16 : 128
    var files: [[(String, DType, [Int])]] = [[], []]
    func linear(_ file: Int, _ name: String, _ rows: Int, _ columns: Int) {
      if fp8 {
        files[file].append((name + ".weight", .float8E4M3FN, [rows, columns]))
        files[file].append((name + ".weight_scale_inv", .float32, [(rows + 127) / 128, (columns + 127) / 128]))
      } else {
        files[file].append((name + ".weight", .bfloat16, [rows, columns]))
      }
    }
    func vector(_ file: Int, _ name: String, _ count: Int, _ dtype: DType = .bfloat16) { files[file].append((name, dtype, [count])) }
    let hidden = u
    let vocab = 2 * u
    files[0].append(("model.embed_tokens.weight", .bfloat16, [vocab, hidden]))
    for layer in 0...layers {  // layer `layers` is the MTP layer
      let file = layer < 2 ? 0 : 1
      let p = "model.layers.\(layer)."
      vector(file, p + "input_layernorm.weight", hidden)
      vector(file, p + "post_attention_layernorm.weight", hidden)
      linear(file, p + "self_attn.q_a_proj", u, hidden)
      vector(file, p + "self_attn.q_a_layernorm.weight", u)
      linear(file, p + "self_attn.q_b_proj", 2 * u, u)
      linear(file, p + "self_attn.kv_a_proj_with_mqa", u + u / 4, hidden)
      vector(file, p + "self_attn.kv_a_layernorm.weight", u)
      linear(file, p + "self_attn.kv_b_proj", 2 * u, u)
      linear(file, p + "self_attn.o_proj", hidden, 2 * u)
      if layer == 0 {
        linear(file, p + "mlp.gate_proj", 2 * u, hidden)
        linear(file, p + "mlp.up_proj", 2 * u, hidden)
        linear(file, p + "mlp.down_proj", hidden, 2 * u)
        continue
      }
      files[file].append((p + "mlp.gate.weight", .bfloat16, [experts, hidden]))
      vector(file, p + "mlp.gate.e_score_correction_bias", experts, .float32)
      for e in 0..<experts {
        linear(file, p + "mlp.experts.\(e).gate_proj", 16, hidden)
        linear(file, p + "mlp.experts.\(e).up_proj", 16, hidden)
        linear(file, p + "mlp.experts.\(e).down_proj", hidden, 16)
      }
      linear(file, p + "mlp.shared_experts.gate_proj", 2 * u, hidden)
      linear(file, p + "mlp.shared_experts.up_proj", 2 * u, hidden)
      linear(file, p + "mlp.shared_experts.down_proj", hidden, 2 * u)
      if layer == layers {
        files[file].append((p + "eh_proj.weight", .bfloat16, [hidden, 2 * hidden]))
        vector(file, p + "enorm.weight", hidden)
        vector(file, p + "hnorm.weight", hidden)
        files[file].append((p + "embed_tokens.weight", .bfloat16, [vocab, hidden]))
        vector(file, p + "shared_head.norm.weight", hidden)
        files[file].append((p + "shared_head.head.weight", .bfloat16, [vocab, hidden]))
      }
    }
    vector(0, "model.norm.weight", hidden)
    files[1].append(("lm_head.weight", .bfloat16, [vocab, hidden]))

    if !FileSystem.isDirectory(directory) { try FileSystem.createDirectory(directory) }
    var weightMap: [(tensor: String, file: String)] = []
    var total = 0
    for (f, tensors) in files.enumerated() {
      let name = "model-0000\(f + 1)-of-00002.safetensors"
      let layout = try SafeTensorsLayout(tensors: tensors.map { PlannedTensor(name: $0.0, dtype: $0.1, shape: $0.2) })
      let output = try AtomicOutputFile(path: FileSystem.join(directory, name), byteCount: layout.fileByteCount)
      try output.write(layout.headerBytes, at: 0)
      for entry in layout.entries {
        try output.write(pattern(entry.name, entry.byteCount), at: layout.header.dataStart + entry.dataOffsets.lowerBound)
        weightMap.append((entry.name, name))
        total += entry.byteCount
      }
      try output.commit()
    }
    try FileSystem.writeFileAtomically(
      CheckpointIndex(weightMap: weightMap, totalByteCount: total).jsonBytes(),
      to: FileSystem.join(directory, "model.safetensors.index.json"))
    let quantization = fp8 ? #", "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}"# : ""
    let config = """
      {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": \(hidden), \
      "num_hidden_layers": \(layers), "num_nextn_predict_layers": 1, "first_k_dense_replace": 1, \
      "n_routed_experts": \(experts), "n_shared_experts": 1, "kv_lora_rank": \(u), "vocab_size": \(vocab)\(quantization)}
      """
    try FileSystem.writeFileAtomically(Array(config.utf8), to: FileSystem.join(directory, "config.json"))
    try FileSystem.writeFileAtomically(Array(#"{"model": "tiny"}"#.utf8), to: FileSystem.join(directory, "tokenizer.json"))
    try FileSystem.writeFileAtomically(Array(#"{}"#.utf8), to: FileSystem.join(directory, "tokenizer_config.json"))
  }

  /// Deterministic bytes for a tensor: a byte stream seeded by the name.
  static func pattern(_ name: String, _ count: Int) -> [UInt8] {
    var state: UInt32 = 2_166_136_261
    for byte in name.utf8 { state = (state ^ UInt32(byte)) &* 16_777_619 }
    return (0..<count).map { i in
      state = state &* 1_664_525 &+ 1_013_904_223
      return UInt8(truncatingIfNeeded: (state >> 24) ^ UInt32(truncatingIfNeeded: i))
    }
  }
}
