import Checkpoint
import SafeTensors
import Sharding
import SystemIO
import TensorCore

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

  /// A fresh empty directory under /tmp, removed by the caller with `FileSystem.removeTree`.
  static func temporaryDirectory(_ label: String) throws -> String {
    let path = "/tmp/smelt-shard-tests-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
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
      tensors.append(SourceTensor(name: name, dtype: .bfloat16, shape: [bytes / 2], byteCount: bytes, fileIndex: 0, dataOffset: offset))
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
