#!/usr/bin/env python3
"""Prove that safetensors files (e.g. everything Smelt wrote) load in the official `safetensors` library.

    scripts/check-safetensors DIR_OR_FILE...            # wrapper: sets up the venv, then runs this
    python scripts/check-safetensors.py [--header-only] DIR_OR_FILE...

For every *.safetensors file found (directories are searched recursively):
  - the header loads with safetensors.safe_open (framework "np"; the library enforces its own rules:
    header size, JSON, dtypes, shapes, contiguous in-bounds offsets);
  - every tensor reads (numpy, with ml_dtypes for BF16/F8/F4...; and with torch too when it is installed) and
    has the dtype and shape the header declares; torch and numpy see the same bytes;
For every directory with a model.safetensors.index.json:
  - it is strict JSON with a `weight_map` and `metadata.total_size`;
  - every weight_map entry names a relative file in that directory that contains that tensor, and every
    tensor of the referenced files is in the map;
  - metadata.total_size equals the sum of the tensors' data bytes;
For every *.json next to a checked file (config.json, generation_config.json, tokenizer files, ...):
  - strict JSON (no duplicate keys, no NaN/Infinity); config.json must be an object.

Prints one line per file and a summary; exits 1 on any failure, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

try:
    import ml_dtypes

    # safetensors' numpy backend looks these dtypes up on the numpy module; ml_dtypes provides them.
    for _name in ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
                  "float8_e8m0fnu", "float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn"):
        if hasattr(ml_dtypes, _name) and not hasattr(np, _name):
            setattr(np, _name, getattr(ml_dtypes, _name))
except ImportError:  # pragma: no cover - the venv always has it
    ml_dtypes = None

import safetensors
from safetensors import safe_open

try:
    import torch  # optional second reader
except ImportError:
    torch = None

# Bits per element of every dtype the safetensors crate knows.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


class Failure(Exception):
    pass


def strict_json(path: Path):
    def no_duplicates(pairs):
        obj = {}
        for key, value in pairs:
            if key in obj:
                raise Failure(f"duplicate key {key!r}")
            obj[key] = value
        return obj

    def no_constants(name):
        raise Failure(f"non-standard JSON constant {name}")

    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Failure(f"invalid JSON: {e}") from None


def tensor_bytes(dtype: str, shape: list[int]) -> int:
    if dtype not in DTYPE_BITS:
        raise Failure(f"unknown dtype {dtype}")
    count = 1
    for d in shape:
        count *= d
    bits = count * DTYPE_BITS[dtype]
    if bits % 8:
        raise Failure(f"{dtype} {shape} is not a whole number of bytes")
    return bits // 8


def check_file(path: Path, header_only: bool) -> dict[str, int]:
    """Returns {tensor name: data bytes}. Raises Failure."""
    sizes: dict[str, int] = {}
    dtypes: Counter[str] = Counter()
    try:
        with safe_open(str(path), framework="np") as f:
            names = list(f.keys())
            for name in names:
                sl = f.get_slice(name)
                dtype, shape = sl.get_dtype(), list(sl.get_shape())
                sizes[name] = tensor_bytes(dtype, shape)
                dtypes[dtype] += 1
                if header_only:
                    continue
                try:
                    arr = f.get_tensor(name)
                except Exception as e:  # sub-byte dtypes etc. that numpy cannot represent
                    if DTYPE_BITS.get(dtype, 8) < 8:
                        continue
                    raise Failure(f"tensor {name} ({dtype}) does not read with numpy: {e}") from None
                if list(arr.shape) != shape:
                    raise Failure(f"tensor {name}: read shape {list(arr.shape)} != header shape {shape}")
                if arr.nbytes != sizes[name]:
                    raise Failure(f"tensor {name}: read {arr.nbytes} bytes, header implies {sizes[name]}")
        if torch is not None and not header_only:
            with safe_open(str(path), framework="pt") as f, safe_open(str(path), framework="np") as g:
                for name in names:
                    try:
                        t = f.get_tensor(name)
                    except Exception as e:
                        if DTYPE_BITS.get(g.get_slice(name).get_dtype(), 8) < 8:
                            continue
                        raise Failure(f"tensor {name} does not read with torch: {e}") from None
                    if list(t.shape) != list(g.get_slice(name).get_shape()):
                        raise Failure(f"tensor {name}: torch shape {list(t.shape)} differs from header")
                    a = g.get_tensor(name)
                    tb = t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""
                    if tb != a.tobytes():
                        raise Failure(f"tensor {name}: torch and numpy read different bytes")
    except Failure:
        raise
    except Exception as e:  # SafetensorError, OSError, ...
        raise Failure(f"{type(e).__name__}: {e}") from None
    summary = " ".join(f"{d}x{n}" for d, n in sorted(dtypes.items()))
    total = sum(sizes.values())
    print(f"ok    {path}  ({len(sizes)} tensors, {total} bytes{', ' + summary if summary else ''})")
    return sizes


def check_index(index_path: Path, file_tensors: dict[Path, dict[str, int]]) -> list[str]:
    errors = []
    try:
        index = strict_json(index_path)
    except Failure as e:
        return [f"{index_path}: {e}"]
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        return [f"{index_path}: no weight_map object"]
    meta = index.get("metadata")
    total = meta.get("total_size") if isinstance(meta, dict) else None
    if not isinstance(total, int) or isinstance(total, bool):
        errors.append(f"{index_path}: metadata.total_size missing or not an integer")
    base = index_path.parent
    referenced: set[Path] = set()
    unloadable: dict[str, int] = {}
    byte_sum = 0
    for name, fname in index["weight_map"].items():
        if not isinstance(fname, str) or os.path.isabs(fname) or ".." in Path(fname).parts:
            errors.append(f"{index_path}: {name} maps to unsafe path {fname!r}")
            continue
        path = base / fname
        referenced.add(path)
        tensors = file_tensors.get(path)
        if tensors is None:
            unloadable[fname] = unloadable.get(fname, 0) + 1
            continue
        if name not in tensors:
            errors.append(f"{index_path}: {name} maps to {fname}, which does not contain it")
            continue
        byte_sum += tensors[name]
    for path in sorted(referenced):
        for name in file_tensors.get(path, {}):
            if name not in index["weight_map"]:
                errors.append(f"{index_path}: {path.name} holds {name}, which is not in weight_map")
            elif base / index["weight_map"][name] != path:
                errors.append(f"{index_path}: {name} is in {path.name} but weight_map says "
                              f"{index['weight_map'][name]}")
    for fname, count in sorted(unloadable.items()):
        errors.append(f"{index_path}: {count} entries map to {fname}, which is missing or failed to load")
    if len(errors) > 20:
        errors = errors[:20] + [f"{index_path}: ... and {len(errors) - 20} more index errors"]
    if unloadable:
        errors.append(f"{index_path}: total_size not checked because some files did not load")
    elif isinstance(total, int) and total != byte_sum:
        errors.append(f"{index_path}: metadata.total_size {total} != sum of tensor bytes {byte_sum}")
    for path in sorted(base.glob("*.safetensors")):
        if path not in referenced:
            print(f"note  {path}: not referenced by {index_path.name}")
    if not errors:
        print(f"ok    {index_path}  ({len(index['weight_map'])} entries in {len(referenced)} files, "
              f"total_size {byte_sum})")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--header-only", action="store_true",
                        help="check headers, shapes and indexes without reading tensor data (for huge files)")
    args = parser.parse_args()

    files: list[Path] = []
    for p in args.paths:
        if p.is_dir():
            files += sorted(p.rglob("*.safetensors"))
        elif p.is_file():
            files.append(p)
        else:
            print(f"FAIL  {p}: no such file or directory")
            return 1
    if not files:
        print("FAIL  no *.safetensors files found under " + " ".join(map(str, args.paths)))
        return 1

    failures: list[str] = []
    file_tensors: dict[Path, dict[str, int]] = {}
    for path in files:
        try:
            file_tensors[path] = check_file(path, args.header_only)
        except Failure as e:
            failures.append(f"{path}: {e}")
            print(f"FAIL  {path}: {e}")

    dirs = sorted({p.parent for p in files})
    index_count = json_count = 0
    for d in dirs:
        index = d / "model.safetensors.index.json"
        if index.exists():
            index_count += 1
            errs = check_index(index, file_tensors)
            for e in errs:
                print(f"FAIL  {e}")
            failures += errs
        for js in sorted(d.glob("*.json")):
            if js.name == "model.safetensors.index.json":
                continue
            json_count += 1
            try:
                obj = strict_json(js)
                if js.name == "config.json" and not isinstance(obj, dict):
                    raise Failure("config.json is not a JSON object")
            except Failure as e:
                failures.append(f"{js}: {e}")
                print(f"FAIL  {js}: {e}")

    readers = "numpy" + (f" + torch {torch.__version__}" if torch is not None else "")
    mode = "headers only" if args.header_only else readers
    print(f"checked {len(files)} safetensors files, {index_count} indexes, {json_count} other JSON files "
          f"with safetensors {safetensors.__version__} ({mode}): "
          + ("all ok" if not failures else f"{len(failures)} FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
