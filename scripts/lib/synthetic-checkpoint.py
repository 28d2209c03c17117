#!/usr/bin/env python3
"""Writes a synthetic BF16 DeepSeek-shaped checkpoint of about MEGABYTES MB for crash/resume tests.

    python3 scripts/lib/synthetic-checkpoint.py OUTDIR [MEGABYTES]     (default 300)

Pure stdlib, deterministic. A dense decoder layer, then MoE layers (16 routed experts + 1 shared) of 2-D *_proj weights (quantized by `smelt convert --to
fp8-block`) plus norms, embeddings and lm_head (copied), in 4 shards with model.safetensors.index.json,
config.json and tokenizer.json. Values are finite BF16 in about ±[2^-7, 2^-5] (random mantissa, two
exponents, random sign), from a 1 MiB random block reused at shifting offsets, so generation is fast.
"""
import json
import os
import random
import struct
import sys

out = sys.argv[1]
megabytes = int(sys.argv[2]) if len(sys.argv) > 2 else 300
os.makedirs(out, exist_ok=True)

rng = random.Random(20250101)
# 1 MiB of BF16 values: low byte random (exponent LSB + mantissa), high byte sign | 0x3C.
block = bytearray(1 << 20)
block[0::2] = bytes(rng.getrandbits(8) for _ in range(len(block) // 2))
block[1::2] = bytes(0x3C | (rng.getrandbits(1) << 7) for _ in range(len(block) // 2))
block = bytes(block) * 2


def data(byte_count, salt):
    parts = []
    offset = (salt * 7919 * 2) % (1 << 20)
    while byte_count > 0:
        n = min(byte_count, (1 << 20) - offset)
        parts.append(block[offset : offset + n])
        byte_count -= n
        offset = (offset + n + 2 * salt) % (1 << 20) & ~1
    return b"".join(parts)


hidden, inter, moe_inter, experts = 1024, 2048, 512, 16
tensors = [("model.embed_tokens.weight", [4096, hidden])]
attention = 4 * hidden * hidden * 2
dense = attention + 3 * hidden * inter * 2
moe = attention + (experts + 1) * 3 * hidden * moe_inter * 2 + experts * hidden * 2
layers = max(2, 1 + (megabytes * 1_000_000 - 2 * 4096 * hidden * 2 - dense) // moe)
for i in range(layers):
    p = f"model.layers.{i}."
    tensors += [
        (p + "input_layernorm.weight", [hidden]),
        (p + "post_attention_layernorm.weight", [hidden]),
        (p + "self_attn.q_proj.weight", [hidden, hidden]),
        (p + "self_attn.k_proj.weight", [hidden, hidden]),
        (p + "self_attn.v_proj.weight", [hidden, hidden]),
        (p + "self_attn.o_proj.weight", [hidden, hidden]),
    ]
    if i == 0:
        tensors += [
            (p + "mlp.gate_proj.weight", [inter, hidden]),
            (p + "mlp.up_proj.weight", [inter, hidden]),
            (p + "mlp.down_proj.weight", [hidden, inter]),
        ]
        continue
    tensors.append((p + "mlp.gate.weight", [experts, hidden]))
    for e in [f"experts.{k}." for k in range(experts)] + ["shared_experts."]:
        tensors += [
            (p + "mlp." + e + "gate_proj.weight", [moe_inter, hidden]),
            (p + "mlp." + e + "up_proj.weight", [moe_inter, hidden]),
            (p + "mlp." + e + "down_proj.weight", [hidden, moe_inter]),
        ]
tensors += [("model.norm.weight", [hidden]), ("lm_head.weight", [4096, hidden])]

shard_count = 4
per_shard = (len(tensors) + shard_count - 1) // shard_count
weight_map = {}
total = 0
for s in range(shard_count):
    chunk = tensors[s * per_shard : (s + 1) * per_shard]
    name = f"model-{s + 1:05d}-of-{shard_count:05d}.safetensors"
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for tensor, shape in chunk:
        size = 2
        for d in shape:
            size *= d
        header[tensor] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
        weight_map[tensor] = name
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(out, name), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for salt, (tensor, shape) in enumerate(chunk):
            f.write(data(header[tensor]["data_offsets"][1] - header[tensor]["data_offsets"][0], salt + s * 1000))
    total += offset

with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump({"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": hidden,
               "intermediate_size": inter, "num_hidden_layers": layers, "torch_dtype": "bfloat16",
               "moe_intermediate_size": moe_inter, "n_routed_experts": experts, "n_shared_experts": 1,
               "num_experts_per_tok": 4, "first_k_dense_replace": 1}, f, indent=2)
with open(os.path.join(out, "tokenizer.json"), "w") as f:
    f.write('{"model": {"type": "WordLevel"}}\n')
print(f"{out}: {len(tensors)} tensors, {layers} layers, {total / 1e6:.0f} MB in {shard_count} shards")
