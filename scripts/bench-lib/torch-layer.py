#!/usr/bin/env python3
"""transformers' DeepSeek-V3 on torch CPU over a checkpoint of scripts/bench-lib/make-layer-checkpoint.py: the
baseline of scripts/bench-layer.

    $PY torch-layer.py CHECKPOINT TOKENS_FILE OUT.npy [--runs 3]

Builds `DeepseekV3ForCausalLM` (its one `DeepseekV3DecoderLayer` is the full-size MoE layer) on the meta device,
fills it in F32 with the checkpoint's weights dequantized exactly (E4M3 code · F32 block scale; BF16 widened),
then times `--runs` forward passes over the token ids (one sequence per line of TOKENS_FILE) under
`torch.no_grad()`. Prints one line per run, `forward S`, then `load S` (reading and dequantizing), and saves the
last run's logits (float32, [tokens, vocab]) to OUT.npy. torch uses every core (its default thread count).
Run in the venv of scripts/requirements-samples.txt + requirements-golden.txt.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors import safe_open
from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3RotaryEmbedding


def dequantized(handle, name: str, scales: dict[str, str], files: dict[str, object]) -> torch.Tensor:
    """A tensor in F32: FP8 block weights times their block scales (exact in F32), everything else widened."""
    tensor = handle.get_tensor(name)
    if tensor.dtype == torch.float8_e4m3fn:
        scale_name = name.removesuffix(".weight") + ".weight_scale_inv"
        scale = files[scales[scale_name]].get_tensor(scale_name)
        rows, columns = tensor.shape
        expanded = scale.repeat_interleave(128, dim=0)[:rows].repeat_interleave(128, dim=1)[:, :columns]
        return tensor.to(torch.float32) * expanded
    return tensor.to(torch.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("tokens")
    parser.add_argument("out")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    started = time.time()
    directory = Path(args.checkpoint)
    config_dict = json.loads((directory / "config.json").read_text())
    config_dict.pop("quantization_config", None)  # the weights are given dequantized, in F32
    config = transformers.DeepseekV3Config(**config_dict)
    with torch.device("meta"):
        model = transformers.DeepseekV3ForCausalLM(config)
    model = model.to_empty(device="cpu").eval()
    parameters = dict(model.named_parameters()) | dict(model.named_buffers())

    weight_map = json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"]
    files = {name: safe_open(directory / name, framework="pt") for name in sorted(set(weight_map.values()))}
    experts = config.n_routed_experts
    width = config.moe_intermediate_size
    filled = set()
    for name, file in weight_map.items():
        if name.endswith(".weight_scale_inv"):
            continue
        values = dequantized(files[file], name, weight_map, files)
        parts = name.split(".")
        if ".mlp.experts." in name:
            # transformers 5 fuses the routed experts: gate_up_proj [E, 2·I, H] (gate rows first), down_proj [E, H, I].
            expert, projection = int(parts[5]), parts[6]
            prefix = ".".join(parts[:5])
            if projection == "down_proj":
                target, rows = f"{prefix}.down_proj", slice(None)
            else:
                target = f"{prefix}.gate_up_proj"
                rows = slice(0, width) if projection == "gate_proj" else slice(width, 2 * width)
            parameters[target].data[expert, rows].copy_(values)
            filled.add(target)
        else:
            parameters[name].data.copy_(values)
            filled.add(name)
    missing = [name for name, _ in model.named_parameters() if name not in filled]
    if missing:
        raise SystemExit(f"torch-layer: no checkpoint tensor for {missing}")
    # The rotary inverse frequencies are a buffer computed at construction (left empty on the meta device).
    model.model.rotary_emb = DeepseekV3RotaryEmbedding(config)
    loaded = time.time() - started

    sequences = [[int(t) for t in line.split(",")] for line in Path(args.tokens).read_text().split() if line]
    input_ids = torch.tensor(sequences)
    with torch.no_grad():
        for _ in range(args.runs):
            start = time.time()
            logits = model(input_ids=input_ids).logits
            print(f"forward {time.time() - start:.3f}", flush=True)
    print(f"load {loaded:.3f}")
    np.save(args.out, logits.reshape(-1, logits.shape[-1]).float().numpy())
    print(f"transformers {transformers.__version__} torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{experts} experts, {input_ids.numel()} tokens")


if __name__ == "__main__":
    main()
