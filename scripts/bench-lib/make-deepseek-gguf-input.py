#!/usr/bin/env python3
"""Writes a synthetic BF16 checkpoint in DeepSeek-V3's full layout (MLA attention, dense first layer, MoE layers
with routed and shared experts, router bias, tokenizer-less) for scripts/bench-gguf.

    python scripts/bench-lib/make-deepseek-gguf-input.py OUTDIR [--experts N] [--moe-layers N]

DeepSeek-V3's per-layer shapes scaled down where the full width would not fit a benchmark (hidden 2048,
16 heads, q_lora 512, kv_lora 512, nope 128, rope 64, v 128, expert width 1024): every row length is a
multiple of 256, as in the release, so the k-quants apply. Values N(0, 0.02) as BF16 (numpy + ml_dtypes),
deterministic; one file per layer plus model.safetensors.index.json and config.json.
"""
import argparse
import json
from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("--experts", type=int, default=40)
parser.add_argument("--moe-layers", type=int, default=2)
args = parser.parse_args()
H, heads, q_lora, kv_lora, nope, rope, v, ffn, moe_ffn, vocab = 2048, 16, 512, 512, 128, 64, 128, 4096, 1024, 4096
layers = 1 + args.moe_layers
rng = np.random.default_rng(20261203)
args.out.mkdir(parents=True, exist_ok=True)


def w(*shape, scale=0.02):
    return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(ml_dtypes.bfloat16)


def norm(n):
    return (1 + rng.standard_normal(n, dtype=np.float32) * 0.01).astype(ml_dtypes.bfloat16)


weight_map = {}
files = []
total = 0


def flush(name, tensors):
    global total
    save_file(tensors, str(args.out / name))
    for key, value in tensors.items():
        weight_map[key] = name
        total += value.nbytes


count = layers + 1
flush(f"model-00001-of-{count:05d}.safetensors", {
    "model.embed_tokens.weight": w(vocab, H), "model.norm.weight": norm(H), "lm_head.weight": w(vocab, H)})
for layer in range(layers):
    p = f"model.layers.{layer}."
    t = {
        p + "input_layernorm.weight": norm(H), p + "post_attention_layernorm.weight": norm(H),
        p + "self_attn.q_a_proj.weight": w(q_lora, H), p + "self_attn.q_a_layernorm.weight": norm(q_lora),
        p + "self_attn.q_b_proj.weight": w(heads * (nope + rope), q_lora),
        p + "self_attn.kv_a_proj_with_mqa.weight": w(kv_lora + rope, H), p + "self_attn.kv_a_layernorm.weight": norm(kv_lora),
        p + "self_attn.kv_b_proj.weight": w(heads * (nope + v), kv_lora), p + "self_attn.o_proj.weight": w(H, heads * v),
    }
    if layer == 0:
        t.update({p + "mlp.gate_proj.weight": w(ffn, H), p + "mlp.up_proj.weight": w(ffn, H), p + "mlp.down_proj.weight": w(H, ffn)})
    else:
        t[p + "mlp.gate.weight"] = w(args.experts, H)
        t[p + "mlp.gate.e_score_correction_bias"] = rng.standard_normal(args.experts, dtype=np.float32) * 0.01
        for e in range(args.experts):
            q = f"{p}mlp.experts.{e}."
            t.update({q + "gate_proj.weight": w(moe_ffn, H), q + "up_proj.weight": w(moe_ffn, H), q + "down_proj.weight": w(H, moe_ffn)})
        q = p + "mlp.shared_experts."
        t.update({q + "gate_proj.weight": w(moe_ffn, H), q + "up_proj.weight": w(moe_ffn, H), q + "down_proj.weight": w(H, moe_ffn)})
    flush(f"model-{layer + 2:05d}-of-{count:05d}.safetensors", t)
(args.out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
config = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": H, "intermediate_size": ffn,
    "moe_intermediate_size": moe_ffn, "num_hidden_layers": layers, "num_nextn_predict_layers": 0, "num_attention_heads": heads,
    "num_key_value_heads": heads, "q_lora_rank": q_lora, "kv_lora_rank": kv_lora, "qk_nope_head_dim": nope,
    "qk_rope_head_dim": rope, "v_head_dim": v, "n_routed_experts": args.experts, "n_shared_experts": 1,
    "num_experts_per_tok": 8, "n_group": 8 if args.experts % 8 == 0 else 1, "topk_group": 4 if args.experts % 8 == 0 else 1,
    "first_k_dense_replace": 1, "moe_layer_freq": 1, "norm_topk_prob": True, "routed_scaling_factor": 2.5,
    "scoring_func": "sigmoid", "topk_method": "noaux_tc", "vocab_size": vocab, "max_position_embeddings": 163840,
    "rms_norm_eps": 1e-6, "rope_theta": 10000, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32,
                     "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "bos_token_id": 0, "eos_token_id": 1, "hidden_act": "silu",
}
(args.out / "config.json").write_text(json.dumps(config, indent=2))
print(f"{total / 1e9:.2f} GB in {count} files")
