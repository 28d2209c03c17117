#!/usr/bin/env python3
"""Golden vectors for Smelt's 4-bit (and MLX 8-bit) group quantizers, made by the reference libraries.

Run in a throwaway venv (outside the repo or in .venv*/):

    python3 -m venv /tmp/int4-venv
    /tmp/int4-venv/bin/pip install compressed-tensors==0.20.0 ml_dtypes numpy safetensors 'mlx[cpu]' \
        nvidia-modelopt requests
    /tmp/int4-venv/bin/python scripts/make-golden-int4.py Tests/QuantizationTests/Golden/int4

Every output file `<case>.safetensors` holds:
  - `input`: the weight as the library saw it (BF16 or F32, shape [out, in]);
  - the tensors the library wrote, under their checkpoint names (`weight_packed`, `weight_scale`, ...);
  - `dequant`: what the library's own decompressor returns for those tensors.
The Swift tests quantize `input` and compare bytes, then dequantize and compare values.
"""

import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/QuantizationTests/Golden/int4"
os.makedirs(OUT, exist_ok=True)
manifest = {}


def fixture(rows, cols, dtype, seed):
    """Gaussian weights (sigma 0.02) with outliers and a few hand-made groups that hit edge cases."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g, dtype=torch.float32) * 0.02
    outliers = torch.rand(rows, cols, generator=g) < 0.01
    w = torch.where(outliers, w * 12, w)
    w[0, 0:32] = 0.0  # an all-zero group (every group size here divides 32)
    w[1, 0:32] = -w[1, 0:32].abs() - 1e-3  # all negative
    w[2, 0:32] = w[2, 0:32].abs() + 1e-3  # all positive
    w[3, 5] = -0.0
    w[3, 6] = 1e-30  # tiny values
    w[3, 7] = -1e-30
    w[4, 0:32] = 0.0
    w[4, 3] = 0.5  # one non-zero element in a group
    return w.to(dtype)


def record(case, tensors, meta):
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, f"{case}.safetensors"))
    manifest[case] = meta


FIXTURES = {
    "bf16": fixture(16, 256, torch.bfloat16, 1),
    "f32": fixture(12, 128, torch.float32, 2),
    "f16": fixture(16, 128, torch.float16, 3),
}

# ---------------------------------------------------------------------------------------------------------
# compressed-tensors (real library): observer = memoryless min/max over each group (llm-compressor's
# default for weights), qparams by calculate_qparams / generate_gparam, bytes by the registered compressors.
# ---------------------------------------------------------------------------------------------------------
from compressed_tensors.compressors import BaseCompressor
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
from compressed_tensors.quantization.quant_scheme import PRESET_SCHEMES
from compressed_tensors.quantization.utils import compute_dynamic_scales_and_zp, generate_gparam


def ct_scheme(preset, group_size):
    weights = PRESET_SCHEMES[preset]["weights"].model_copy(update={"group_size": group_size})
    return QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(**weights.model_dump()))


def ct_case(name, w, preset, fmt, group_size, global_scale=False, scale_dtype=None):
    scheme = ct_scheme(preset, group_size)
    args = scheme.weights
    gs = None
    if global_scale:
        gs = generate_gparam(torch.amin(w), torch.amax(w))
    scale, zp = compute_dynamic_scales_and_zp(value=w, args=args, module=None, global_scale=gs)
    # llm-compressor keeps weight_scale in the weight dtype (initialize.py: scale_dtype = observed dtype)
    scale = scale.to(scale_dtype or w.dtype)
    state = {"weight": w, "weight_scale": scale, "weight_zero_point": zp}
    if gs is not None:
        state["weight_global_scale"] = gs
    compressor = BaseCompressor.get_value_from_registry(fmt)
    compressed = compressor.compress(state, scheme)
    out = {k: v for k, v in compressed.items() if isinstance(v, torch.Tensor)}
    decompressed = compressor.decompress(dict(compressed), scheme)
    out["dequant"] = decompressed["weight"]
    out["input"] = w
    record(name, out, {"library": "compressed-tensors", "format": fmt, "preset": preset, "group_size": group_size,
                       "weight_dtype": str(w.dtype), "tensors": {k: [str(v.dtype), list(v.shape)] for k, v in out.items()}})


for fx, w in FIXTURES.items():
    for g in (32, 128):
        ct_case(f"ct-int4-sym-g{g}-{fx}", w, "W4A16", "pack-quantized", g)
        ct_case(f"ct-int4-asym-g{g}-{fx}", w, "W4A16_ASYM", "pack-quantized", g)
    ct_case(f"ct-mxfp4-{fx}", w, "MXFP4A16", "mxfp4-pack-quantized", 32)
    if fx == "f32":
        # F32 weights (e.g. an FP8 dequantization) with a BF16 weight_scale parameter.
        ct_case("ct-int4-sym-g128-f32-bf16scale", w, "W4A16", "pack-quantized", 128, scale_dtype=torch.bfloat16)
        ct_case("ct-int4-asym-g32-f32-bf16scale", w, "W4A16_ASYM", "pack-quantized", 32, scale_dtype=torch.bfloat16)
    ct_case(f"ct-nvfp4-{fx}", w, "NVFP4A16", "nvfp4-pack-quantized", 16, global_scale=True)

# ---------------------------------------------------------------------------------------------------------
# MLX affine (real library, CPU backend): mx.quantize / mx.dequantize.
# ---------------------------------------------------------------------------------------------------------
import mlx.core as mx


def to_mx(w):
    if w.dtype == torch.bfloat16:
        return mx.array(w.float().numpy()).astype(mx.bfloat16)
    if w.dtype == torch.float16:
        return mx.array(w.numpy())
    return mx.array(w.numpy())


def from_mx(a, like):
    if a.dtype == mx.bfloat16:
        return torch.from_numpy(np.array(a.astype(mx.float32))).to(torch.bfloat16)
    if a.dtype == mx.float16:
        return torch.from_numpy(np.array(a))
    if a.dtype == mx.uint32:
        return torch.from_numpy(np.array(a).view(np.int32)).view(torch.uint32)
    return torch.from_numpy(np.array(a))


for fx, w in FIXTURES.items():
    for bits in (4, 8):
        for g in (32, 64, 128):
            xm = to_mx(w)
            wq, scales, biases = mx.quantize(xm, group_size=g, bits=bits)
            deq = mx.dequantize(wq, scales, biases, group_size=g, bits=bits)
            out = {"weight": from_mx(wq, w), "scales": from_mx(scales, w), "biases": from_mx(biases, w),
                   "dequant": from_mx(deq, w), "input": w}
            record(f"mlx-affine-b{bits}-g{g}-{fx}", out,
                   {"library": f"mlx {mx.__version__} (cpu)", "bits": bits, "group_size": g,
                    "weight_dtype": str(w.dtype)})

# ---------------------------------------------------------------------------------------------------------
# gpt-oss MXFP4 layout: transformers' quantize_to_mxfp4 = triton_kernels downcast_to_mxfp_torch(w.to(bf16)).
# triton_kernels itself is fetched from the HF hub at run time (not available offline), so its torch
# fallback is transcribed here line by line from triton-lang/triton
# python/triton_kernels/triton_kernels/numerics_details/mxfp.py @ 018a674f (DequantScaleRoundingMode.ROUND_UP).
# The decompression is transformers' own _convert_moe_packed_tensors (real library code).
# ---------------------------------------------------------------------------------------------------------
from transformers.integrations.mxfp4 import _convert_moe_packed_tensors


def rsu(x, shift):
    return (x >> shift) & ((1 << (32 - shift)) - 1)


def downcast_to_mxfp4_torch(w):
    src = w.to(torch.bfloat16).to(torch.float32)
    rows, cols = src.shape
    groups = src.view(rows, cols // 32, 32)
    max_val = groups.abs().max(dim=-1, keepdim=True).values
    dequant_scale = max_val / 6.0
    ds_int = dequant_scale.view(torch.int32)
    ds_int_rounded = (ds_int + 0x007FFFFF) & 0x7F800000
    dequant_scale_rounded = ds_int_rounded.view(torch.float32)
    quant_scale = torch.where(dequant_scale_rounded == 0, torch.tensor(0.0), 1.0 / dequant_scale_rounded)
    q = (groups * quant_scale).view(rows, cols)
    q_int = q.contiguous().view(torch.int32)
    signs = q_int & 0x80000000
    exponents = rsu(q_int, 23) & 0xFF
    mantissas_orig = q_int & 0x7FFFFF
    E8_BIAS, E2_BIAS = 127, 1
    is_subnormal = exponents < E8_BIAS
    shift = E8_BIAS - exponents - 1
    mantissas_pre = 0x400000 | rsu(mantissas_orig, 1)
    bit0_dropped = (mantissas_orig & 0x1) != 0
    mask = (1 << shift.clamp(max=31)) - 1
    dropped_post = (mantissas_pre & mask) != 0
    sticky = is_subnormal & (bit0_dropped | dropped_post)
    mantissas = torch.where(is_subnormal, mantissas_pre >> shift, mantissas_orig)
    exponents = torch.maximum(exponents, torch.tensor(E8_BIAS - E2_BIAS)) - (E8_BIAS - E2_BIAS)
    m2bits = rsu(mantissas, 21) & 0x3
    lsb_keep = rsu(m2bits, 1) & 0x1
    guard = m2bits & 0x1
    sticky |= (mantissas & ((1 << 21) - 1)) != 0
    round_inc = guard & (sticky.to(torch.int32) | lsb_keep)
    e2m1_tmp = rsu(((exponents << 2) | m2bits) + round_inc, 1)
    e2m1_tmp = torch.minimum(e2m1_tmp, torch.tensor(0x7))
    e2m1 = (rsu(signs, 28) | e2m1_tmp).to(torch.uint8).view(rows, cols // 2, 2)
    packed = e2m1[..., 0] | (e2m1[..., 1] << 4)
    scales = (ds_int_rounded.view(rows, cols // 32) >> 23).to(torch.uint8)
    return packed.view(rows, cols // 32, 16), scales


for fx, w in FIXTURES.items():
    blocks, scales = downcast_to_mxfp4_torch(w)
    # _convert_moe_packed_tensors wants [E, rows, G, 16] and returns the transposed [E, in, out] matrix.
    deq = _convert_moe_packed_tensors(blocks.unsqueeze(0), scales.unsqueeze(0), dtype=torch.bfloat16)
    deq = deq[0].transpose(0, 1).contiguous()
    record(f"gptoss-mxfp4-{fx}", {"blocks": blocks, "scales": scales, "dequant": deq, "input": w},
           {"library": "triton_kernels downcast_to_mxfp_torch (transcribed) + transformers dequant",
            "weight_dtype": str(w.dtype)})

# ---------------------------------------------------------------------------------------------------------
# NVFP4, ModelOpt naming (real library: NVFP4QTensor.quantize / dequantize, dynamic path).
# ---------------------------------------------------------------------------------------------------------
from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor
import modelopt

for fx, w in FIXTURES.items():
    qt, wsf, wsf2 = NVFP4QTensor.quantize(w.clone(), 16)
    deq = qt.dequantize(dtype=w.dtype, scale=wsf, double_scale=wsf2, block_sizes={-1: 16})
    record(f"modelopt-nvfp4-{fx}",
           {"weight": qt._quantized_data, "weight_scale": wsf, "weight_scale_2": wsf2.reshape([]),
            "dequant": deq, "input": w},
           {"library": f"nvidia-modelopt {modelopt.__version__}", "weight_dtype": str(w.dtype)})

import compressed_tensors
import ml_dtypes
import transformers

manifest["_versions"] = {"torch": torch.__version__, "compressed-tensors": compressed_tensors.__version__,
                         "mlx": mx.__version__, "nvidia-modelopt": modelopt.__version__,
                         "transformers": transformers.__version__, "numpy": np.__version__,
                         "ml_dtypes": ml_dtypes.__version__}
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
print(f"wrote {len(manifest) - 1} cases to {OUT}")
