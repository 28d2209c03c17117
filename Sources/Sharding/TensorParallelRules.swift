import Checkpoint

extension TensorParallelPlan {
  /// The module name of a tensor: its second-to-last name component (`q_b_proj` for
  /// `model.layers.0.self_attn.q_b_proj.weight`), as DeepSeek's convert.py computes `key`.
  public static func moduleKey(_ name: String) -> Substring {
    let parts = name.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count >= 2 ? parts[parts.count - 2] : parts[0]
  }
}
