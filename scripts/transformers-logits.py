"""The logits of a bundled sample under transformers' own model class, in float32 on the CPU: the reference for an
architecture Smelt has no forward pass of (Qwen3.5-MoE's Gated DeltaNet layers).

    $PY scripts/transformers-logits.py SAMPLE_DIR TOKENS OUT.npy     # TOKENS: comma-separated ids

Run in the venv of scripts/requirements-samples.txt + requirements-golden.txt (torch, transformers).
"""
import json
import sys

import numpy as np
import torch
import transformers

sample, tokens, out = sys.argv[1], [int(t) for t in sys.argv[2].split(",")], sys.argv[3]
config = json.load(open(f"{sample}/config.json"))
# A vision-language wrapper's model class (Qwen3_5MoeForConditionalGeneration) runs text-only input too.
auto = transformers.AutoModelForImageTextToText if "vision_config" in config else transformers.AutoModelForCausalLM
torch.manual_seed(0)
model = auto.from_pretrained(sample, dtype=torch.float32).eval()
with torch.no_grad():
    logits = model(input_ids=torch.tensor([tokens])).logits[0]
np.save(out, logits.double().numpy())
print(f"transformers {transformers.__version__} {type(model).__name__}: logits {tuple(logits.shape)} of {sample}")
