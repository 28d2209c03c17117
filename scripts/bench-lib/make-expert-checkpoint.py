#!/usr/bin/env python3
"""Write a synthetic BF16 checkpoint in DeepSeek-V3 routed-expert shapes, for scripts/bench-convert.

    python make-expert-checkpoint.py OUTDIR [--experts 24] [--experts-per-shard 12] [--seed 0]

Each expert is `model.layers.3.mlp.experts.E.{gate,up}_proj.weight` BF16 [2048, 7168] and
`down_proj.weight` BF16 [7168, 2048]: N(0, 0.02) with a few input columns scaled x20 (the outliers real
checkpoints have). 24 experts = 72 tensors = 2.11 GB (>= 2 GiB) in two ~1.06 GB shards, plus
model.safetensors.index.json (weight_map, metadata.total_size) and a DeepSeek-V3-style config.json.
Headers are written like the official writer (sorted names, space padding to 8 bytes). Needs numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import time

import numpy as np

HIDDEN = 7168
MOE_INTERMEDIATE = 2048
LAYER = 3


class ExpertTensors:
    """Reused scratch buffers: fresh 60 MB numpy temporaries per tensor cost more in page faults than the
    arithmetic."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        count = MOE_INTERMEDIATE * HIDDEN
        self.values = np.empty(count, dtype=np.float32)
        self.work = np.empty(count, dtype=np.uint32)
        self.out = np.empty(count, dtype=np.uint16)

    def make(self, shape: list[int]) -> memoryview:
        rows, columns = shape
        values = self.values.reshape(rows, columns)
        self.rng.standard_normal(out=values, dtype=np.float32)
        values *= np.float32(0.02)
        outliers = self.rng.choice(columns, size=4, replace=False)
        values[:, outliers] *= np.float32(20.0)
        # float32 -> bfloat16 with round-to-nearest-even (all values finite).
        bits = self.values.view(np.uint32)
        np.right_shift(bits, 16, out=self.work)
        np.bitwise_and(self.work, 1, out=self.work)
        np.add(self.work, 0x7FFF, out=self.work)
        np.add(self.work, bits, out=self.work)
        np.right_shift(self.work, 16, out=self.work)
        np.copyto(self.out, self.work, casting="unsafe")
        return memoryview(self.out)


def write_shard(path: str, tensors: list[tuple[str, list[int]]], make) -> int:
    tensors = sorted(tensors)
    header: dict[str, object] = {}
    offset = 0
    for name, shape in tensors:
        size = shape[0] * shape[1] * 2
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for name, shape in tensors:
            out.write(make(shape))
    return offset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir")
    parser.add_argument("--experts", type=int, default=24)
    parser.add_argument("--experts-per-shard", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.time()
    os.makedirs(args.outdir, exist_ok=True)
    maker = ExpertTensors(args.seed)
    shards = (args.experts + args.experts_per_shard - 1) // args.experts_per_shard
    weight_map: dict[str, str] = {}
    total = 0
    for shard in range(shards):
        name = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        tensors = []
        for expert in range(shard * args.experts_per_shard, min(args.experts, (shard + 1) * args.experts_per_shard)):
            prefix = f"model.layers.{LAYER}.mlp.experts.{expert}"
            tensors.append((f"{prefix}.gate_proj.weight", [MOE_INTERMEDIATE, HIDDEN]))
            tensors.append((f"{prefix}.up_proj.weight", [MOE_INTERMEDIATE, HIDDEN]))
            tensors.append((f"{prefix}.down_proj.weight", [HIDDEN, MOE_INTERMEDIATE]))
        for tensor, _ in tensors:
            weight_map[tensor] = name
        total += write_shard(os.path.join(args.outdir, name), tensors, maker.make)

    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(args.outdir, "model.safetensors.index.json"), "w") as out:
        json.dump(index, out, indent=2)
        out.write("\n")
    config = {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "hidden_size": HIDDEN,
        "moe_intermediate_size": MOE_INTERMEDIATE,
        "intermediate_size": 18432,
        "num_hidden_layers": 61,
        "first_k_dense_replace": 3,
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "num_experts_per_tok": 8,
        "torch_dtype": "bfloat16",
    }
    with open(os.path.join(args.outdir, "config.json"), "w") as out:
        json.dump(config, out, indent=2)
        out.write("\n")
    print(f"wrote {len(weight_map)} tensors, {total / 1e9:.2f} GB in {shards} shards to {args.outdir} "
          f"in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
