/// The dims along which tensor parallelism splits a module, as DeepSeek's `inference/convert.py` defines
/// them (column-parallel on dim 0, row-parallel on dim 1; vocab-parallel embedding and head on dim 0).
///
/// A module not in the table is replicated. Quantization scales are split along the same dim as their
/// weight, at block granularity. A tensor with fewer dims than the split dim (a bias of a row-parallel
/// layer) is replicated.
public enum TensorParallelRules {
  /// HF module name → split dim, exactly convert.py's `mapping` entries with a dim.
  public static let splitDims: [String: Int] = [
    "embed_tokens": 0, "q_proj": 0, "q_b_proj": 0, "kv_b_proj": 0, "o_proj": 1,
    "gate_proj": 0, "up_proj": 0, "down_proj": 1, "lm_head": 0,
  ]

  /// Modules of grouped-query attention that convert.py has no rule for: splitting `q_proj` while
  /// replicating these would produce shards no runtime can use, so tensor parallelism refuses them.
  public static let unsupportedModules: Set<String> = ["k_proj", "v_proj"]

  /// The module name of a tensor: its second-to-last name component (`q_b_proj` for
  /// `model.layers.0.self_attn.q_b_proj.weight`), as convert.py computes `key`.
  public static func moduleKey(_ name: String) -> Substring {
    let parts = name.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count >= 2 ? parts[parts.count - 2] : parts[0]
  }

  /// The split dim of the module `key`, or `nil` when it is replicated.
  public static func splitDim(moduleKey key: Substring) -> Int? { splitDims[String(key)] }
}
