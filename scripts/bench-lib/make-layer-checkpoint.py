#!/usr/bin/env python3
"""Write a one-layer DeepSeek-V3 checkpoint whose layer is full size, with synthetic FP8 weights, for
scripts/bench-layer.

    python make-layer-checkpoint.py OUTDIR [--experts 256] [--vocab 2048] [--seed 0]

The layer is DeepSeek-V3's MoE layer at its release shapes (the config is make-skeleton's, i.e. the release's,
with `num_hidden_layers` 1, `first_k_dense_replace` 0 and no MTP layer): MLA with 128 heads (q_lora 1536,
kv_lora 512, rope 64, nope 128, v 128), `--experts` routed experts of 2048 (top-8 in 8 groups, 4 groups kept;
`--experts` must be a multiple of 16) and one shared expert. Every linear is F8_E4M3 with F32 `weight_scale_inv`
per 128x128 block, as in the release: codes of N(0, 1)·64 rounded to E4M3 (ml_dtypes), block scales
0.02/64 · U(0.5, 1.5), so weights are ~N(0, 0.02). Norms are BF16 near 1, the router BF16 N(0, 0.02) with an F32
`e_score_correction_bias`. The vocabulary is small (`--vocab`, default 2048) so that the embedding and the head
cost ~2 % of the layer's FLOPs: the benchmark times the layer. Routed experts go 16 to a file. Needs numpy and
ml_dtypes.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import os
import struct
import time
from pathlib import Path

import ml_dtypes
import numpy as np

SCRIPTS = Path(__file__).resolve().parent.parent


def release_config() -> dict:
    """DeepSeek-V3's config.json, as scripts/make-skeleton writes it (one copy of the release's values)."""
    loader = importlib.machinery.SourceFileLoader("make_skeleton", str(SCRIPTS / "make-skeleton"))
    spec = importlib.util.spec_from_loader("make_skeleton", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return dict(module.CONFIG)


class Weights:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def fp8(self, rows: int, columns: int) -> list[tuple[str, str, list[int], bytes]]:
        """(suffix, dtype, shape, bytes) of an FP8 block weight and its scales."""
        values = self.rng.standard_normal((rows, columns), dtype=np.float32)
        values *= np.float32(64)
        codes = values.astype(ml_dtypes.float8_e4m3fn)
        grid = [-(-rows // 128), -(-columns // 128)]
        scales = (np.float32(0.02 / 64) * self.rng.uniform(0.5, 1.5, grid)).astype(np.float32)
        return [
            ("weight", "F8_E4M3", [rows, columns], codes.tobytes()),
            ("weight_scale_inv", "F32", grid, scales.tobytes()),
        ]

    def bf16(self, shape: list[int], mean: float, std: float) -> bytes:
        values = mean + std * self.rng.standard_normal(shape, dtype=np.float32)
        return values.astype(ml_dtypes.bfloat16).tobytes()

    def f32(self, shape: list[int], std: float) -> bytes:
        return (std * self.rng.standard_normal(shape, dtype=np.float32)).astype(np.float32).tobytes()


def write_file(path: Path, tensors: dict[str, tuple[str, list[int], bytes]]) -> int:
    """A safetensors file, names sorted, header space-padded to 8 bytes; returns the data size."""
    header: dict[str, object] = {}
    offset = 0
    names = sorted(tensors)
    for name in names:
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    temporary = path.with_suffix(".partial")
    with open(temporary, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for name in names:
            out.write(tensors[name][2])
    os.replace(temporary, path)
    return offset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir")
    parser.add_argument("--experts", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.experts <= 0 or args.experts % 16:
        # The router keeps 4 of 8 groups by the sum of each group's top 2, then picks 8 experts among them.
        parser.error("--experts must be a positive multiple of 16 (8 router groups of at least 2 experts)")

    started = time.time()
    config = release_config()
    config.update(
        num_hidden_layers=1, first_k_dense_replace=0, num_nextn_predict_layers=0, n_routed_experts=args.experts,
        vocab_size=args.vocab, bos_token_id=0, eos_token_id=1,
    )
    config.pop("auto_map", None)
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    q_lora, kv_lora = config["q_lora_rank"], config["kv_lora_rank"]
    nope, rope, v_head = config["qk_nope_head_dim"], config["qk_rope_head_dim"], config["v_head_dim"]
    expert_width = config["moe_intermediate_size"]

    weights = Weights(args.seed)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, tuple[str, list[int], bytes]]] = []

    def linear(tensors: dict, module: str, rows: int, columns: int) -> None:
        for suffix, dtype, shape, data in weights.fp8(rows, columns):
            tensors[f"{module}.{suffix}"] = (dtype, shape, data)

    layer = "model.layers.0"
    dense: dict[str, tuple[str, list[int], bytes]] = {
        "model.embed_tokens.weight": ("BF16", [args.vocab, hidden], weights.bf16([args.vocab, hidden], 0, 0.02)),
        "model.norm.weight": ("BF16", [hidden], weights.bf16([hidden], 1, 0.05)),
        "lm_head.weight": ("BF16", [args.vocab, hidden], weights.bf16([args.vocab, hidden], 0, 0.02)),
        f"{layer}.input_layernorm.weight": ("BF16", [hidden], weights.bf16([hidden], 1, 0.05)),
        f"{layer}.post_attention_layernorm.weight": ("BF16", [hidden], weights.bf16([hidden], 1, 0.05)),
        f"{layer}.self_attn.q_a_layernorm.weight": ("BF16", [q_lora], weights.bf16([q_lora], 1, 0.05)),
        f"{layer}.self_attn.kv_a_layernorm.weight": ("BF16", [kv_lora], weights.bf16([kv_lora], 1, 0.05)),
        f"{layer}.mlp.gate.weight": ("BF16", [args.experts, hidden], weights.bf16([args.experts, hidden], 0, 0.02)),
        f"{layer}.mlp.gate.e_score_correction_bias": ("F32", [args.experts], weights.f32([args.experts], 0.01)),
    }
    attention = f"{layer}.self_attn"
    linear(dense, f"{attention}.q_a_proj", q_lora, hidden)
    linear(dense, f"{attention}.q_b_proj", heads * (nope + rope), q_lora)
    linear(dense, f"{attention}.kv_a_proj_with_mqa", kv_lora + rope, hidden)
    linear(dense, f"{attention}.kv_b_proj", heads * (nope + v_head), kv_lora)
    linear(dense, f"{attention}.o_proj", hidden, heads * v_head)
    shared = f"{layer}.mlp.shared_experts"
    linear(dense, f"{shared}.gate_proj", expert_width, hidden)
    linear(dense, f"{shared}.up_proj", expert_width, hidden)
    linear(dense, f"{shared}.down_proj", hidden, expert_width)

    expert_files = -(-args.experts // 16)
    count = 1 + expert_files
    weight_map: dict[str, str] = {}
    total = 0

    def flush(index: int, tensors: dict) -> None:
        nonlocal total
        name = f"model-{index:05d}-of-{count:05d}.safetensors"
        total += write_file(out / name, tensors)
        weight_map.update({tensor: name for tensor in tensors})

    flush(1, dense)
    for file in range(expert_files):
        tensors: dict[str, tuple[str, list[int], bytes]] = {}
        for expert in range(16 * file, min(args.experts, 16 * file + 16)):
            prefix = f"{layer}.mlp.experts.{expert}"
            linear(tensors, f"{prefix}.gate_proj", expert_width, hidden)
            linear(tensors, f"{prefix}.up_proj", expert_width, hidden)
            linear(tensors, f"{prefix}.down_proj", hidden, expert_width)
        flush(2 + file, tensors)

    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {len(weight_map)} tensors, {total / 1e9:.2f} GB in {count} files to {out} in "
          f"{time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
