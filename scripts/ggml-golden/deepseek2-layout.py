#!/usr/bin/env python3
"""Print a deepseek2 GGUF layout (metadata and F32 tensor shapes) for scripts/make-golden-llama-quantize.

    python3 scripts/ggml-golden/deepseek2-layout.py CONFIG.json > layout.txt
    python3 scripts/ggml-golden/deepseek2-layout.py --deepseek-v3 > layout.txt   # the full-size release

Standard library only, and written from llama.cpp's conversion/deepseek.py and src/models/deepseek2.cpp, not
from Smelt's code: the golden type choices it leads to check Smelt's mapping and its port of llama-quantize's
rules together. Output lines:

    kv u32|f32|str|bool KEY VALUE
    tensor NAME NE0 [NE1 [NE2]]        (ggml order, F32)
"""
import json
import sys

DEEPSEEK_V3 = {
    "hidden_size": 7168, "num_hidden_layers": 61, "num_nextn_predict_layers": 1, "num_attention_heads": 128,
    "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "intermediate_size": 18432, "moe_intermediate_size": 2048, "n_routed_experts": 256, "num_experts_per_tok": 8,
    "n_shared_experts": 1, "first_k_dense_replace": 3, "vocab_size": 129280, "max_position_embeddings": 163840,
    "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
}


def layout(cfg):
    h = cfg["hidden_size"]
    n_layer = cfg["num_hidden_layers"]
    n_mtp = cfg.get("num_nextn_predict_layers") or 0
    heads = cfg["num_attention_heads"]
    q_lora = cfg.get("q_lora_rank")
    kv_lora = cfg["kv_lora_rank"]
    nope, rope, v = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    ff, ff_exp = cfg["intermediate_size"], cfg["moe_intermediate_size"]
    experts, shared = cfg["n_routed_experts"], cfg.get("n_shared_experts") or 0
    dense = cfg["first_k_dense_replace"]
    vocab = cfg["vocab_size"]

    kv = [
        ("str", "general.architecture", "deepseek2"),
        ("u32", "deepseek2.block_count", n_layer + n_mtp),
        ("u32", "deepseek2.context_length", cfg["max_position_embeddings"]),
        ("u32", "deepseek2.embedding_length", h),
        ("u32", "deepseek2.feed_forward_length", ff),
        ("u32", "deepseek2.attention.head_count", heads),
        ("u32", "deepseek2.attention.head_count_kv", 1),
        ("f32", "deepseek2.attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"]),
        ("u32", "deepseek2.expert_count", experts),
        ("u32", "deepseek2.expert_used_count", cfg["num_experts_per_tok"]),
        ("u32", "deepseek2.expert_gating_func", 2),
        ("u32", "deepseek2.leading_dense_block_count", dense),
        ("u32", "deepseek2.vocab_size", vocab),
        ("u32", "deepseek2.attention.kv_lora_rank", kv_lora),
        ("u32", "deepseek2.attention.key_length", kv_lora + rope),
        ("u32", "deepseek2.attention.value_length", kv_lora),
        ("u32", "deepseek2.attention.key_length_mla", nope + rope),
        ("u32", "deepseek2.attention.value_length_mla", v),
        ("u32", "deepseek2.expert_feed_forward_length", ff_exp),
        ("u32", "deepseek2.expert_shared_count", shared),
        ("u32", "deepseek2.rope.dimension_count", rope),
        ("u32", "deepseek2.nextn_predict_layers", n_mtp),
        ("str", "tokenizer.ggml.model", "none"),
        ("u32", "general.file_type", 0),
    ]
    if q_lora:
        kv.append(("u32", "deepseek2.attention.q_lora_rank", q_lora))

    tensors = [("token_embd.weight", [h, vocab]), ("output_norm.weight", [h])]
    if not cfg.get("tie_word_embeddings"):
        tensors.append(("output.weight", [h, vocab]))
    for i in range(n_layer + n_mtp):
        b = f"blk.{i}."
        tensors.append((b + "attn_norm.weight", [h]))
        if q_lora:
            tensors += [(b + "attn_q_a.weight", [h, q_lora]), (b + "attn_q_a_norm.weight", [q_lora]),
                        (b + "attn_q_b.weight", [q_lora, heads * (nope + rope)])]
        else:
            tensors.append((b + "attn_q.weight", [h, heads * (nope + rope)]))
        tensors += [
            (b + "attn_kv_a_mqa.weight", [h, kv_lora + rope]), (b + "attn_kv_a_norm.weight", [kv_lora]),
            (b + "attn_k_b.weight", [nope, kv_lora, heads]), (b + "attn_v_b.weight", [kv_lora, v, heads]),
            (b + "attn_output.weight", [heads * v, h]), (b + "ffn_norm.weight", [h]),
        ]
        if i < dense:
            tensors += [(b + "ffn_gate.weight", [h, ff]), (b + "ffn_up.weight", [h, ff]), (b + "ffn_down.weight", [ff, h])]
        else:
            tensors += [
                (b + "ffn_gate_inp.weight", [h, experts]), (b + "exp_probs_b.bias", [experts]),
                (b + "ffn_gate_exps.weight", [h, ff_exp, experts]), (b + "ffn_up_exps.weight", [h, ff_exp, experts]),
                (b + "ffn_down_exps.weight", [ff_exp, h, experts]),
            ]
            if shared:
                tensors += [(b + "ffn_gate_shexp.weight", [h, ff_exp * shared]),
                            (b + "ffn_up_shexp.weight", [h, ff_exp * shared]),
                            (b + "ffn_down_shexp.weight", [ff_exp * shared, h])]
        if i >= n_layer:
            tensors += [
                (b + "nextn.eh_proj.weight", [2 * h, h]), (b + "nextn.enorm.weight", [h]), (b + "nextn.hnorm.weight", [h]),
                (b + "nextn.embed_tokens.weight", [h, vocab]), (b + "nextn.shared_head_head.weight", [h, vocab]),
                (b + "nextn.shared_head_norm.weight", [h]),
            ]
    return kv, tensors


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 64
    cfg = DEEPSEEK_V3 if sys.argv[1] == "--deepseek-v3" else json.load(open(sys.argv[1], encoding="utf-8"))
    kv, tensors = layout(cfg)
    for kind, key, value in kv:
        print(f"kv {kind} {key} {value}")
    for name, ne in tensors:
        print("tensor " + name + " " + " ".join(str(n) for n in ne))
    return 0


if __name__ == "__main__":
    sys.exit(main())
