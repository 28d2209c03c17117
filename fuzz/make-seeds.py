#!/usr/bin/env python3
"""Regenerates fuzz/corpus/ (the fuzzer's hand-made seeds) from samples/. Stdlib only, deterministic.

    python3 fuzz/make-seeds.py

- sample-*-names.safetensors: small valid files whose headers carry 60 real tensor names and dtypes of the
  samples (shapes shrunk to ones), so the fuzzer starts from DeepSeek-shaped headers and weight groups;
- config-*.json, index-small.json: the samples' config.json and 40 entries of an index;
- manifest.json: a smelt-manifest.json-shaped document;
- recipe.json, rule.txt: a `convert --recipe` file and a `--rule` text.
The malformed corpus (Tests/SafeTensorsTests/Malformed/) is the other seed directory scripts/fuzz passes.
"""
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
os.makedirs(OUT, exist_ok=True)
SIZES = {"F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "I64": 8, "I32": 4, "U8": 1}


def header_of(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


for name, sample in [("sample-bf16", "tiny-deepseek-v3/model-00001-of-00002.safetensors"),
                     ("sample-fp8", "tiny-deepseek-v3-fp8/model-00002-of-00002.safetensors")]:
    header = header_of(os.path.join(ROOT, "samples", sample))
    metadata = header.pop("__metadata__", None)
    out = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for key in sorted(header)[:60]:
        entry = header[key]
        size = SIZES[entry["dtype"]]
        out[key] = {"dtype": entry["dtype"], "shape": [1] * len(entry["shape"]), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(out, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(OUT, name + "-names.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + bytes(offset))

shutil.copy(os.path.join(ROOT, "samples/tiny-deepseek-v3/config.json"), os.path.join(OUT, "config-bf16.json"))
shutil.copy(os.path.join(ROOT, "samples/tiny-deepseek-v3-fp8/config.json"), os.path.join(OUT, "config-fp8.json"))
with open(os.path.join(ROOT, "samples/tiny-deepseek-v3/model.safetensors.index.json")) as f:
    index = json.load(f)
small = dict(sorted(index["weight_map"].items())[:40])
with open(os.path.join(OUT, "index-small.json"), "w") as f:
    json.dump({"metadata": index.get("metadata", {}), "weight_map": small}, f, indent=2)
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump({"schema": "smelt.manifest/1", "smelt_version": "0.1.0", "command": ["smelt", "convert", "a", "b", "--to", "fp8-block"],
               "files": [{"name": "model.safetensors", "bytes": 1234, "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
                         {"name": "config.json", "bytes": 12, "sha256": "00" * 32}]}, f, indent=2)
with open(os.path.join(OUT, "recipe.json"), "w") as f:
    json.dump({"rules": [{"match": "*.mlp.experts.*", "scheme": "int4-g128"},
                         {"match": "*.self_attn.*", "scheme": "mlx-affine", "group_size": 32, "bits": 8},
                         {"match": "lm_head*", "scheme": "keep"}], "default": "fp8-block"}, f, indent=2)
with open(os.path.join(OUT, "rule.txt"), "w") as f:
    f.write("*.mlp.experts.*=int4-g128:group=64")
print("wrote", OUT)
