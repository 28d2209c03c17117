/// The renaming DeepSeek's `inference/convert.py` applies to Hugging Face tensor names for its demo's
/// model-parallel layout.
import Checkpoint

public enum DeepSeekMPNaming {
  /// convert.py's `mapping`: HF module name → (demo name, split dim).
  public static let mapping: [String: (name: String, dim: Int?)] = [
    "embed_tokens": ("embed", 0),
    "input_layernorm": ("attn_norm", nil),
    "post_attention_layernorm": ("ffn_norm", nil),
    "q_proj": ("wq", 0),
    "q_a_proj": ("wq_a", nil),
    "q_a_layernorm": ("q_norm", nil),
    "q_b_proj": ("wq_b", 0),
    "kv_a_proj_with_mqa": ("wkv_a", nil),
    "kv_a_layernorm": ("kv_norm", nil),
    "kv_b_proj": ("wkv_b", 0),
    "o_proj": ("wo", 1),
    "gate": ("gate", nil),
    "gate_proj": ("w1", 0),
    "down_proj": ("w2", 1),
    "up_proj": ("w3", 0),
    "norm": ("norm", nil),
    "lm_head": ("head", 0),
    "scale": ("scale", nil),
  ]

  /// The renamed key and split dim of `name`, exactly as convert.py computes them: strip a leading
  /// `model.`; replace every `self_attn` → `attn`, `mlp` → `ffn`, `weight_scale_inv` → `scale`,
  /// `e_score_correction_bias` → `bias`; the module key is the second-to-last component; every occurrence
  /// of the key is replaced by its demo name (Python's `str.replace`).
  ///
  /// - Throws: `unmappedDeepSeekName` when the key is not in the table (convert.py's `assert key in mapping`).
  public static func rename(_ name: String) throws(ShardingError) -> (name: String, dim: Int?) {
    var renamed = name.hasPrefix("model.") ? String(name.dropFirst("model.".count)) : name
    renamed = replacingAll(renamed, "self_attn", "attn")
    renamed = replacingAll(renamed, "mlp", "ffn")
    renamed = replacingAll(renamed, "weight_scale_inv", "scale")
    renamed = replacingAll(renamed, "e_score_correction_bias", "bias")
    let key = String(TensorParallelPlan.moduleKey(renamed))
    guard let entry = mapping[key] else { throw .unmappedDeepSeekName(tensor: name, key: key) }
    return (replacingAll(renamed, key, entry.name), entry.dim)
  }

  /// True for the tensors convert.py treats as routed experts: `"experts" in name and "shared_experts" not in name`.
  public static func isRoutedExpert(renamedName name: String) -> Bool {
    name.contains("experts") && !name.contains("shared_experts")
  }

  /// Python's `str.replace(old, new)`: every non-overlapping occurrence, left to right.
  static func replacingAll(_ text: String, _ old: String, _ new: String) -> String {
    let source = Array(text.utf8)
    let pattern = Array(old.utf8)
    guard !pattern.isEmpty, source.count >= pattern.count else { return text }
    var output: [UInt8] = []
    output.reserveCapacity(source.count + 8)
    var i = 0
    var changed = false
    while i < source.count {
      if i + pattern.count <= source.count, source[i] == pattern[0], Array(source[i..<(i + pattern.count)]) == pattern {
        output.append(contentsOf: new.utf8)
        i += pattern.count
        changed = true
      } else {
        output.append(source[i])
        i += 1
      }
    }
    return changed ? String(decoding: output, as: UTF8.self) : text
  }
}
