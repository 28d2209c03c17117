#!/usr/bin/env python3
"""Interop proof for Smelt's 4-bit outputs: the reference libraries decompress what Smelt wrote, bit for bit.

For every layout Smelt converts the BF16 sample (`smelt convert SAMPLE OUT --to LAYOUT`), writes its own
dequantization (`smelt convert OUT DEQ --to f32`), and this script decompresses OUT with the consumer's own code
and compares every quantized weight with DEQ bit for bit:

  int4-g128, int4-asym, mxfp4, nvfp4-ct  compressed-tensors decompressors (BaseCompressor registry), with the
                                          QuantizationArgs taken from OUT's config.json config group that matches
                                          the module (vLLM's target-matching rules: every Linear must match a
                                          target or `ignore`)
  mlx-affine                              mlx.core.dequantize with bits/group from config.json `quantization` as
                                          mlx-lm resolves it (per-module entry, else the top level)
  mxfp4-gpt-oss                           transformers.integrations.mxfp4._convert_moe_packed_tensors
  nvfp4                                   modelopt NVFP4QTensor.dequantize; hf_quant_config.json converted by
                                          modelopt's convert_hf_quant_config_format must equal config.json's block
  gptq                                    AutoGPTQ's torch dequantization, transcribed (AutoGPTQ is not installed):
                                          scales[g_idx] * (q - (qzeros + 1)) in F16; config parsed by
                                          transformers.GPTQConfig

  nvfp4-ct-fused                          llm-compressor's fused-layer rule for NVFP4 global scales
                                          (`update_fused_layer_weight_global_scales`, reproduced from its source:
                                          llm-compressor itself is not installed): siblings' globals from
                                          compressed-tensors' generate_gparam, the min shared, then
                                          compressed-tensors' own qparams and compressor; Smelt's weight_packed,
                                          weight_scale and weight_global_scale must equal those bytes
  fp8-block-ct-config                     `--to fp8-block --compressed-tensors` config: the config group's
                                          weights / input_activations equal compressed-tensors' FP8_BLOCK preset
                                          as QuantizationConfig serializes it, embed_tokens and lm_head ignored,
                                          every FP8 weight matched by a target

Part two, logits: every `--to` output of both samples (BF16 and FP8 block) is loaded by its consumer's own
loader and model code where one runs on this CPU (transformers 5.23 with compressed-tensors decompressing at load
and FP8 block dequantized as transformers does without a GPU; mlx-lm 0.32 after `--drop-mtp`, dequantized by
mlx-lm's own dequantize_model) and run in F32 on fixed tokens; its logits are compared with `smelt forward` on
the same output (max |Δlogit| / max |logit| <= 1e-4, the golden-logits bound: both sides F32 on the same
weights). Targets no consumer loads here print SKIP with the reason and the loader's own error (each is tried);
known consumer defects print KNOWN only after the differing weights are shown to be exactly the ones the defect
names (see Known). A negative control (the FP8 sample without its quantization_config, what `--to f8-e4m3` wrote
before issue 14) must fail the gate: transformers runs the unscaled codes there.

Prints one PASS/FAIL/SKIP/KNOWN/INFO line per layout and target; exits 1 on any FAIL, 0 otherwise (a missing
library is a SKIP).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")


def log(line):
    print(line, flush=True)


try:
    import numpy as np
    import torch
    from safetensors.torch import load_file
except Exception as error:  # pragma: no cover - environment dependent
    log(f"SKIP: reference libraries unavailable ({error})")
    sys.exit(0)


def optional(module):
    try:
        return __import__(module)
    except Exception:
        return None


LAYOUTS = [
    # (name, --to, extra smelt flags, the library it needs)
    ("int4-g128", "int4-g64", [], "compressed_tensors"),
    ("int4-asym", "int4-asym", ["--group-size", "64"], "compressed_tensors"),
    ("int4-g128-search", "int4-g64", ["--search"], "compressed_tensors"),
    ("gptq", "gptq", ["--group-size", "64"], "transformers"),
    ("mlx-affine-4", "mlx-affine", [], "mlx.core"),
    ("mlx-affine-8", "mlx-affine", ["--bits", "8", "--group-size", "32"], "mlx.core"),
    ("mxfp4", "mxfp4", [], "compressed_tensors"),
    # (a DeepSeek sample in the gpt-oss layout loads in no engine: --force-layout writes it for the decode check)
    ("mxfp4-gpt-oss", "mxfp4-gpt-oss", ["--force-layout"], "transformers"),
    ("nvfp4", "nvfp4", [], "modelopt"),
    ("nvfp4-ct", "nvfp4-ct", [], "compressed_tensors"),
    ("fp8-to-int4", "int4-g64", [], "compressed_tensors"),  # FP8-block sample as input
    ("nvfp4-ct-fused", "nvfp4-ct", [], "compressed_tensors"),
    ("fp8-block-ct-config", "fp8-block", ["--compressed-tensors"], "compressed_tensors"),
    ("recipe-ct", None, ["--rule", "*.mlp.experts.*=int4-g64", "--rule", "*.self_attn.*=fp8-block",
                         "--rule", "*.shared_experts.*=nvfp4-ct"], "compressed_tensors"),
]


def smelt(binary, *args):
    result = subprocess.run([binary, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"smelt {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")


def load_dir(directory):
    tensors = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(directory, name)))
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    return tensors, config


def modules_with(tensors, leaf):
    return sorted(name[: -len(leaf) - 1] for name in tensors if name.endswith("." + leaf))


def same_bits(reference, smelt_values):
    a = reference.to(torch.float32).contiguous()
    b = smelt_values.to(torch.float32).contiguous()
    if a.shape != b.shape:
        return False, f"shape {tuple(a.shape)} vs {tuple(b.shape)}"
    differ = (a.view(torch.int32) != b.view(torch.int32)) & ~(torch.isnan(a) & torch.isnan(b))
    count = int(differ.sum())
    if count:
        i = int(differ.flatten().nonzero()[0])
        return False, f"{count} of {a.numel()} values differ (first at {i}: {a.flatten()[i].item()} vs {b.flatten()[i].item()})"
    return True, ""


# --- compressed-tensors -------------------------------------------------------------------------------------

def vllm_match(name, target):
    if target.startswith("re:"):
        return re.match(target[3:], name) is not None
    return target == name


def check_compressed_tensors(out, deq, config):
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import QuantizationConfig, QuantizationScheme

    block = config["quantization_config"]
    parsed = QuantizationConfig.model_validate(block)  # the library accepts the block as written
    groups = list(parsed.config_groups.items())
    linear = set()
    for name, tensor in out.items():
        module, _, leaf = name.rpartition(".")
        if leaf in ("weight", "weight_packed") and tensor.dim() == 2:
            linear.add(module)
    checked = 0
    for module in sorted(linear):
        matches = [(key, scheme) for key, scheme in groups if any(vllm_match(module, t) for t in scheme.targets)]
        ignored = any(vllm_match(module, t) for t in parsed.ignore)
        if not matches and not ignored:
            return False, f"{module} matches no config group and is not ignored (vLLM would refuse to load)", 0
        if not matches:
            if module + ".weight_packed" in out or module + ".weight_scale" in out:
                return False, f"{module} is quantized but ignored by the config", 0
            continue
        key, scheme = matches[0]
        fmt = scheme.format or parsed.format
        if fmt == "float-quantized":
            # FP8: weight * weight_scale in the scale dtype, the compressed-tensors naive decompressor.
            compressor = BaseCompressor.get_value_from_registry(fmt)
            state = {"weight": out[module + ".weight"], "weight_scale": out[module + ".weight_scale"]}
        else:
            compressor = BaseCompressor.get_value_from_registry(fmt)
            state = {k.rpartition(".")[2]: v for k, v in out.items() if k.startswith(module + ".")}
        scheme = QuantizationScheme(targets=["Linear"], weights=scheme.weights)
        reference = compressor.decompress(dict(state), scheme)["weight"]
        ok, why = same_bits(reference, deq[module + ".weight"])
        if not ok:
            return False, f"{module} ({key}, {fmt}): {why}", checked
        checked += 1
    return True, "", checked


# --- llm-compressor's NVFP4 fused global scales ------------------------------------------------------------

# vLLM's fused layers (llm-compressor fuses exactly these sibling sets under one parent module).
FUSED_SETS = [("gate_proj", "up_proj"), ("q_a_proj", "kv_a_proj_with_mqa"), ("q_proj", "k_proj", "v_proj")]


def check_nvfp4_fused(out, source):
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    from compressed_tensors.quantization.quant_scheme import PRESET_SCHEMES
    from compressed_tensors.quantization.utils import compute_dynamic_scales_and_zp, generate_gparam

    args = QuantizationArgs(**PRESET_SCHEMES["NVFP4A16"]["weights"].model_dump())
    scheme = QuantizationScheme(targets=["Linear"], weights=args)
    compressor = BaseCompressor.get_value_from_registry("nvfp4-pack-quantized")
    modules = modules_with(out, "weight_global_scale")
    present = set(modules)

    def gparam(module):
        w = source[module + ".weight"]
        return generate_gparam(torch.amin(w), torch.amax(w))

    checked = fused = 0
    for module in modules:
        parent, _, leaf = module.rpartition(".")
        siblings = [module]
        for group in FUSED_SETS:
            if leaf in group and all(f"{parent}.{s}" in present for s in group):
                siblings = [f"{parent}.{s}" for s in group]
        # update_fused_layer_weight_global_scales: torch.min over the siblings' weight_global_scale.
        gs = torch.min(torch.cat([gparam(s).reshape(1) for s in siblings])).reshape([1])
        fused += len(siblings) > 1
        w = source[module + ".weight"]
        scale, zp = compute_dynamic_scales_and_zp(value=w, args=args, module=None, global_scale=gs)
        state = {"weight": w, "weight_scale": scale.to(w.dtype), "weight_zero_point": zp, "weight_global_scale": gs}
        reference = compressor.compress(state, scheme)
        for leaf_name in ("weight_packed", "weight_scale", "weight_global_scale"):
            a, b = reference[leaf_name].contiguous(), out[module + "." + leaf_name].contiguous()
            if a.dtype != b.dtype or a.shape != b.shape or a.view(torch.uint8).flatten().tolist() != b.view(torch.uint8).flatten().tolist():
                return False, f"{module}.{leaf_name} differs from compressed-tensors with llm-compressor's fused rule", checked
        checked += 1
    if fused == 0:
        return False, "no fused siblings found", checked
    return True, "", checked


# --- compressed-tensors FP8 block config -------------------------------------------------------------------

def check_fp8_block_config(out, config):
    from compressed_tensors.quantization import QuantizationConfig, preset_name_to_scheme

    block = config["quantization_config"]
    parsed = QuantizationConfig.model_validate(block)
    preset = preset_name_to_scheme("FP8_BLOCK", ["Linear"])
    if len(parsed.config_groups) != 1:
        return False, f"{len(parsed.config_groups)} config groups", 0
    (key, group), = parsed.config_groups.items()
    for field in ("weights", "input_activations", "output_activations"):
        ours, theirs = getattr(group, field), getattr(preset, field)
        if (ours and ours.model_dump()) != (theirs and theirs.model_dump()):
            return False, f"{field} {ours and ours.model_dump()} is not FP8_BLOCK's {theirs and theirs.model_dump()}", 0
    if parsed.format != "float-quantized" or parsed.quantization_status != "compressed":
        return False, f"format {parsed.format}, status {parsed.quantization_status}", 0
    for module in ("model.embed_tokens", "lm_head"):
        if not any(vllm_match(module, t) for t in parsed.ignore):
            return False, f"{module} is not in ignore (compressed-tensors' Linear matcher would select it)", 0
    checked = 0
    for module in modules_with(out, "weight_scale"):
        if not any(vllm_match(module, t) for t in group.targets):
            return False, f"{module} is FP8 but matches no target", checked
        checked += 1
    return True, "", checked


# --- MLX ----------------------------------------------------------------------------------------------------

def mlx_alias(module):
    parts = module.split(".")
    for i, part in enumerate(parts[:-1]):
        if part == "experts" and parts[i + 1].isdigit():
            return ".".join(parts[:i] + ["switch_mlp"] + parts[i + 2:])
    return module


def check_mlx(out, deq, config):
    import mlx.core as mx

    q = config["quantization"]
    if config.get("quantization_config") != q:
        return False, "quantization_config differs from quantization (mlx-lm writes both)", 0
    checked = 0
    for module in modules_with(out, "scales"):
        params = q.get(module, q.get(mlx_alias(module), q))
        if params is False:
            return False, f"{module} has scales but the config says false", checked
        w = mx.array(out[module + ".weight"].view(torch.int32).numpy()).view(mx.uint32)
        def to_mx(t):
            return mx.array(t.float().numpy()).astype(mx.bfloat16) if t.dtype == torch.bfloat16 else mx.array(t.numpy())
        ref = mx.dequantize(w, to_mx(out[module + ".scales"]), to_mx(out[module + ".biases"]),
                            group_size=params["group_size"], bits=params["bits"])
        reference = torch.from_numpy(np.array(ref.astype(mx.float32)))
        ok, why = same_bits(reference, deq[module + ".weight"])
        if not ok:
            return False, f"{module}: {why}", checked
        checked += 1
    for module, value in q.items():
        if value is False and (module + ".scales") in out:
            return False, f"{module} is false in the config but quantized", checked
    return True, "", checked


# --- gpt-oss ------------------------------------------------------------------------------------------------

def check_gpt_oss(out, deq, config):
    from transformers.integrations.mxfp4 import _convert_moe_packed_tensors

    qc = config["quantization_config"]
    if qc.get("quant_method") != "mxfp4":
        return False, f"quant_method is {qc.get('quant_method')}", 0
    checked = 0
    for stem in modules_with(out, "weight_blocks"):
        blocks, scales = out[stem + ".weight_blocks"], out[stem + ".weight_scales"]
        # _convert_moe_packed_tensors takes [E, rows, G, 16] and returns the transposed [E, in, out].
        ref = _convert_moe_packed_tensors(blocks.unsqueeze(0), scales.unsqueeze(0), dtype=torch.bfloat16)
        ok, why = same_bits(ref[0].transpose(0, 1).contiguous(), deq[stem + ".weight"])
        if not ok:
            return False, f"{stem}: {why}", checked
        checked += 1
    return True, "", checked


# --- ModelOpt -----------------------------------------------------------------------------------------------

def check_modelopt(out, deq, config, directory):
    from modelopt.torch.export.convert_hf_config import convert_hf_quant_config_format
    from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor

    with open(os.path.join(directory, "hf_quant_config.json")) as f:
        hf = json.load(f)
    if convert_hf_quant_config_format(hf) != config["quantization_config"]:
        return False, "config.json quantization_config is not modelopt's conversion of hf_quant_config.json", 0
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(config.get("torch_dtype"), torch.bfloat16)
    checked = 0
    for module in modules_with(out, "weight_scale_2"):
        packed = out[module + ".weight"]
        shape = torch.Size([packed.shape[0], packed.shape[1] * 2])
        qt = NVFP4QTensor(shape, dtype, packed)
        ref = qt.dequantize(dtype=dtype, scale=out[module + ".weight_scale"], double_scale=out[module + ".weight_scale_2"],
                            block_sizes={-1: 16})
        ok, why = same_bits(ref, deq[module + ".weight"])
        if not ok:
            return False, f"{module}: {why}", checked
        checked += 1
    return True, "", checked


# --- GPTQ ---------------------------------------------------------------------------------------------------

def check_gptq(out, deq, config, directory):
    from transformers import GPTQConfig

    qc = config["quantization_config"]
    parsed = GPTQConfig.from_dict(dict(qc))
    if parsed.bits != 4 or parsed.desc_act or not parsed.sym:
        return False, f"unexpected config {qc}", 0
    with open(os.path.join(directory, "quantize_config.json")) as f:
        if json.load(f) != qc:
            return False, "quantize_config.json differs from config.json quantization_config", 0
    shifts = torch.arange(0, 32, 4, dtype=torch.int32)
    checked = 0
    for module in modules_with(out, "qweight"):
        qweight, qzeros = out[module + ".qweight"], out[module + ".qzeros"]
        scales, g_idx = out[module + ".scales"], out[module + ".g_idx"]
        # AutoGPTQ (qlinear_cuda_old / torch fallback): unpack along dims, zeros + 1 (v1), F16 arithmetic.
        zeros = (qzeros.unsqueeze(2) >> shifts.view(1, 1, -1)) & 0xF
        zeros = (zeros + 1).reshape(qzeros.shape[0], -1)
        weight = (qweight.unsqueeze(1) >> shifts.view(1, -1, 1)) & 0xF
        weight = weight.reshape(-1, qweight.shape[1])
        ref = scales[g_idx.long()] * (weight - zeros[g_idx.long()]).to(torch.float16)
        if g_idx.tolist() != [i // parsed.group_size for i in range(g_idx.numel())]:
            return False, f"{module}: g_idx is not i // group_size", checked
        ok, why = same_bits(ref.t().contiguous(), deq[module + ".weight"])
        if not ok:
            return False, f"{module}: {why}", checked
        checked += 1
    return True, "", checked


# --- logits: each consumer's forward pass vs `smelt forward` on the same output --------------------------------

# The tiny samples' fixed token ids (scripts/golden-logits.py TOKENS["tiny-deepseek-v3"]).
LOGIT_TOKENS = [
    [0, 23, 481, 77, 302, 5, 199, 411, 64, 350, 12, 275],
    [417, 88, 3, 260, 134, 509, 46, 391, 222, 17, 143, 500],
]
# Both forward passes run in F32 on the same dequantized weights (the consumer's own dequantization, which
# check-interop's first part proves bit-equal to Smelt's), so they differ only by F32 summation order: the bound
# of Tests/ReferenceModelTests/GoldenLogitsTests (smelt forward vs transformers on the BF16 sample).
SAME_OUTPUT_TOLERANCE = 1e-4
# mlx-lm as users run it (BF16 activations, mlx's quantized kernels) is measured, not gated: BF16 can flip a
# near-tie of the tiny samples' random routers, which moves a position's logits by their own scale.

# (name, sample, --to, extra flags, consumer, why the consumer cannot load it or None). A target with a reason
# is tried all the same: a load failure prints SKIP with the reason and the loader's own error, a load that
# works is compared and gated like the others. A Known reason is a consumer defect that the check proves rather
# than assumes: when the logits differ, every weight the consumer holds is compared with Smelt's own F32
# dequantization of the output (`smelt convert OUT --to f32`, which part one proves equal to the libraries'
# decompressors); the row prints KNOWN only if exactly the weights the defect names differ, FAIL otherwise.


class Known:
    def __init__(self, reason, differs):
        self.reason, self.differs = reason, differs


# transformers 5.23 merges a layer's experts into gate_up_proj / down_proj and dequantizes them through its
# own conversion ops, which get compressed-tensors' float-quantized scales, NVFP4 global scales and experts kept
# at source precision by --skip-incompatible wrong; every other weight is bit-equal to compressed-tensors'.
KNOWN_EXPERTS = Known("transformers' fused-expert loader dequantizes the MoE experts differently from "
                      "compressed-tensors (every other weight is bit-equal)", lambda name, shape: ".mlp.experts." in name)
# Fp8Dequantize takes the block size from the scale grid (rows / scale rows): 80 for kv_a_proj_with_mqa's 160
# rows under a 2-row grid, not the config's 128 (DeepSeek's own weight_dequant crops the last block). Every
# weight with a side that 128 does not divide is misread; the others are bit-equal.
KNOWN_BLOCK_GRID = Known("transformers' Fp8Dequantize takes the block size from the scale grid (e.g. 160 rows / 2 = 80, "
                         "not weight_block_size 128): weights with a ragged last block are misread",
                         lambda name, shape: len(shape) >= 2 and (shape[-1] % 128 != 0 or shape[-2] % 128 != 0))
GROUP_64 = ["--group-size", "64"]
LOGIT_TARGETS = [
    (f"{sample}:{name}", sample, to, flags, consumer, reason)
    for sample in ("bf16", "fp8")
    for name, to, flags, consumer, reason in [
        ("bf16", "bf16", [], "transformers", None),
        ("f16", "f16", [], "transformers", None),
        ("f32", "f32", [], "transformers", None),
        ("fp8-block", "fp8-block", [], "transformers-fp8", KNOWN_BLOCK_GRID),
        ("fp8-block-32", "fp8-block", ["--block-size", "32x32"], "transformers-fp8", None),
        ("fp8-block-ct", "fp8-block", ["--compressed-tensors"], "transformers-ct",
         "transformers' CompressedTensorsDequantize of MoE experts multiplies the [out/128, in/128] block-scale grid "
         "as if it were per channel"),
        ("fp8-channel", "fp8-channel", [], "transformers-ct", KNOWN_EXPERTS),
        ("fp8-tensor", "fp8-tensor", [], "transformers-ct", KNOWN_EXPERTS),
        ("f8-e4m3", "f8-e4m3", [], "transformers", None),
        ("f8-e5m2", "f8-e5m2", [], "transformers", None),
        ("int4-g128", "int4-g128", ["--skip-incompatible"], "transformers-ct", KNOWN_EXPERTS),
        ("int4-g64", "int4-g64", [], "transformers-ct", None),
        ("int4-g32", "int4-g32", [], "transformers-ct", None),
        ("int4-asym", "int4-asym", GROUP_64, "transformers-ct",
         "transformers allocates weight_zero_point unpacked [out, groups]; compressed-tensors packs it [out/8, groups]"),
        ("gptq", "gptq", GROUP_64, "transformers",
         "transformers' GPTQ loader needs optimum and gptqmodel (CUDA kernels), not in this CPU venv"),
        # mlx-lm's deepseek_v3 sanitize drops only layer 61 as MTP (hence --drop-mtp), and re-quantizes a quantized
        # kv_b_proj after splitting it (the k half transposed) for its absorbed attention: a second rounding no
        # other consumer does. The gated rows keep kv_b_proj at source precision; mlx-affine-kvb measures the rest.
        ("mlx-affine", "mlx-affine", ["--drop-mtp", "--exclude", "*.kv_b_proj.*"], "mlx-lm", None),
        ("mlx-affine-native", "mlx-affine", ["--drop-mtp", "--exclude", "*.kv_b_proj.*"], "mlx-lm-native", None),
        ("mlx-affine-8", "mlx-affine", ["--drop-mtp", "--exclude", "*.kv_b_proj.*", "--bits", "8", "--group-size", "32"],
         "mlx-lm", None),
        ("mlx-affine-kvb", "mlx-affine", ["--drop-mtp"], "mlx-lm-requantized", None),
        ("mxfp4", "mxfp4", [], "transformers-ct", None),
        ("mxfp4-gpt-oss", "mxfp4-gpt-oss", [], "transformers",
         "the gpt-oss layout loads only as GptOssForCausalLM: smelt refuses it for DeepSeek-V3 (--force-layout)"),
        ("nvfp4", "nvfp4", [], "transformers", "transformers has no ModelOpt NVFP4 loader"),
        ("nvfp4-ct", "nvfp4-ct", [], "transformers-ct", KNOWN_EXPERTS),
    ]
]


def smelt_logits(binary, directory, path):
    tokens = ";".join(",".join(str(t) for t in row) for row in LOGIT_TOKENS)
    smelt(binary, "forward", directory, "--tokens", tokens, "--output", path, "--top", "0", "--quiet")
    return load_file(path)["logits"].to(torch.float32)


def consumer_logits(directory, consumer):
    """The consumer's F32 logits of LOGIT_TOKENS for the checkpoint in `directory`."""
    if consumer.startswith("mlx-lm"):
        import mlx.core as mx
        from pathlib import Path
        from mlx_lm.utils import dequantize_model, load_model

        model, _ = load_model(Path(directory))
        if consumer in ("mlx-lm", "mlx-lm-requantized"):
            # mlx-lm's own dequantization (mlx.core.dequantize, as `mlx_lm.convert --dequantize`), then F32.
            model = dequantize_model(model)
            model.set_dtype(mx.float32)
        logits = model(mx.array(LOGIT_TOKENS)).astype(mx.float32)
        return torch.from_numpy(np.array(logits)), None
    import transformers

    transformers.logging.set_verbosity_error()
    kwargs = {"dtype": torch.float32, "attn_implementation": "eager", "experts_implementation": "eager"}
    if consumer == "transformers-fp8":
        # What transformers does by itself without a GPU (FineGrainedFP8 dequantize=True), made explicit.
        kwargs["quantization_config"] = transformers.FineGrainedFP8Config(dequantize=True)
    elif consumer == "transformers-ct":
        # compressed-tensors decompresses every weight at load (its decompressors, in the scale dtype).
        kwargs["quantization_config"] = transformers.CompressedTensorsConfig(run_compressed=False)
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, **kwargs)
    # Decompressed weights stay in their scale dtype (BF16): widen them (exactly) so the pass runs in F32.
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor.data = tensor.data.to(torch.float32)
    model.eval()
    with torch.no_grad():
        return model(torch.tensor(LOGIT_TOKENS)).logits.to(torch.float32), model


def differing_weights(model, out_dir, binary):
    """(name, shape) of the consumer's weights that are not bit-equal to Smelt's F32 dequantization of `out_dir`
    (transformers' fused experts compared expert by expert: gate_up_proj[e] = gate ++ up, down_proj[e])."""
    f32_dir = out_dir + "-f32"
    smelt(binary, "convert", out_dir, f32_dir, "--to", "f32", "--force", "-q")
    reference, _ = load_dir(f32_dir)
    differing = []
    for key, value in model.state_dict().items():
        expected = reference.get(key)
        stem = key.rpartition(".")[0] + "."
        if expected is None and key.endswith(".experts.gate_up_proj"):
            expected = torch.stack([torch.cat([reference[f"{stem}{e}.gate_proj.weight"], reference[f"{stem}{e}.up_proj.weight"]])
                                    for e in range(value.shape[0])])
        elif expected is None and key.endswith(".experts.down_proj"):
            expected = torch.stack([reference[f"{stem}{e}.down_proj.weight"] for e in range(value.shape[0])])
        if expected is None or not value.is_floating_point():
            continue
        if value.shape != expected.shape or not torch.equal(value.to(torch.float32), expected.to(torch.float32)):
            differing.append((key, tuple(expected.shape)))
    return differing


def relative_difference(a, b):
    """max |a - b| / max |b|: the measure of Tests/ReferenceModelTests/GoldenLogitsTests."""
    return float((a - b).abs().max() / b.abs().max())


def check_logits(args, only):
    """One line per LOGIT_TARGETS entry; returns the number of failures."""
    samples = {"bf16": args.sample, "fp8": args.fp8_sample}
    source_logits = {}
    failures = 0
    for name, sample, to, flags, consumer, reason in LOGIT_TARGETS:
        if only and name not in only:
            continue
        if not samples[sample]:
            log(f"SKIP logits {name}: no --fp8-sample")
            continue
        out_dir = os.path.join(args.work, "logits-" + name.replace(":", "-"))
        command = ["convert", samples[sample], out_dir, "--to", to] + flags + ["--force", "-q"]
        shown = "smelt " + " ".join(command)
        try:
            if sample not in source_logits:
                source_logits[sample] = smelt_logits(args.smelt, samples[sample], os.path.join(args.work, f"{sample}.logits.safetensors"))
            smelt(args.smelt, *command)
            ours = smelt_logits(args.smelt, out_dir, out_dir + ".logits.safetensors")
        except RuntimeError as error:
            if isinstance(reason, str):
                log(f"SKIP logits {name}: {reason} (tried: {str(error).splitlines()[0][:200]})")
            else:
                failures += 1
                log(f"FAIL logits {name}: {error}")
            continue
        try:
            theirs, model = consumer_logits(out_dir, consumer)
        except Exception as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            if isinstance(reason, str):
                log(f"SKIP logits {name}: {reason} (tried {consumer}: {type(error).__name__}: {first})")
            else:
                failures += 1
                log(f"FAIL logits {name}: {consumer} cannot load it: {type(error).__name__}: {first} ({shown})")
            continue
        tolerance = {"mlx-lm-native": None, "mlx-lm-requantized": None}.get(consumer, SAME_OUTPUT_TOLERANCE)
        if theirs.shape != ours.shape:
            failures += 1
            log(f"FAIL logits {name}: {consumer} logits {tuple(theirs.shape)} vs smelt forward {tuple(ours.shape)}")
            continue
        same = relative_difference(theirs, ours)
        source = relative_difference(ours, source_logits[sample])
        figures = f"max |Δlogit| / max |logit| = {same:.2e}"
        if tolerance is None:
            why = ("BF16 activations can flip a near-tie of the noaux_tc expert selection" if consumer == "mlx-lm-native"
                   else "mlx-lm re-quantizes kv_b_proj at load")
            log(f"INFO logits {name}: {consumer} vs smelt forward on the output: {figures} (not gated: {why}); "
                f"output vs source (smelt forward): {source:.2e} ({shown})")
            continue
        ok = same <= tolerance
        if not ok and isinstance(reason, Known) and model is not None:
            differing = differing_weights(model, out_dir, args.smelt)
            if differing and all(reason.differs(*w) for w in differing):
                log(f"KNOWN logits {name}: {consumer} vs smelt forward on the output: {figures}: {reason.reason}; "
                    f"the {len(differing)} differing weights are all of that kind, e.g. {differing[0][0]} ({shown})")
                continue
            log(f"FAIL logits {name}: {figures}; the differing weights are not only those of the known defect "
                f"({reason.reason}): {', '.join(w for w, _ in differing if not reason.differs(w, _))[:300] or 'none'} ({shown})")
            failures += 1
            continue
        failures += not ok
        log(f"{'PASS' if ok else 'FAIL'} logits {name}: {consumer} vs smelt forward on the output: {figures} "
            f"(tolerance {tolerance:.0e}); output vs source (smelt forward): {source:.2e} ({shown})")
    if samples["fp8"] and (not only or CONTROL in only):
        failures += check_control(args)
    return failures


# A negative control: the gate must fail a checkpoint that a consumer misreads. The FP8 sample without its
# quantization_config is what `--to f8-e4m3` wrote from an FP8 source before issue 14 (block-FP8 codes and
# weight_scale_inv kept, the config gone): transformers then runs the unscaled codes.
CONTROL = "control:fp8-without-quantization_config"


def check_control(args):
    import shutil

    broken = os.path.join(args.work, "control-fp8-without-quantization-config")
    shutil.rmtree(broken, ignore_errors=True)
    shutil.copytree(args.fp8_sample, broken)
    with open(os.path.join(broken, "config.json")) as f:
        config = json.load(f)
    config.pop("quantization_config", None)
    with open(os.path.join(broken, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    try:
        ours = smelt_logits(args.smelt, broken, broken + ".logits.safetensors")
        theirs, _ = consumer_logits(broken, "transformers")
    except Exception as error:
        log(f"FAIL logits {CONTROL}: could not run the control: {type(error).__name__}: {str(error)[:200]}")
        return 1
    same = relative_difference(theirs, ours)
    if same > SAME_OUTPUT_TOLERANCE:
        log(f"PASS logits {CONTROL}: the gate fails FP8 codes whose quantization_config is gone (the pre-issue-14 "
            f"--to f8-e4m3 output): transformers vs smelt forward {same:.2e} > {SAME_OUTPUT_TOLERANCE:.0e}")
        return 0
    log(f"FAIL logits {CONTROL}: transformers and smelt forward agree ({same:.2e}) on a checkpoint transformers misreads: "
        "the logit gate cannot tell")
    return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smelt", required=True)
    parser.add_argument("--sample", required=True, help="the BF16 sample directory")
    parser.add_argument("--fp8-sample", help="the FP8-block sample directory (for fp8-to-int4)")
    parser.add_argument("--work", required=True)
    parser.add_argument("--only", nargs="*", help="layout names (and logit target names, SAMPLE:NAME) to check")
    args = parser.parse_args()

    failures = 0
    versions = {}
    for name, target, flags, library in LAYOUTS:
        if args.only and name not in args.only:
            continue
        module = optional(library)
        if module is None:
            log(f"SKIP {name}: python module {library} is not installed")
            continue
        versions[library.split(".")[0]] = getattr(module, "__version__", None) or getattr(sys.modules.get(library), "__version__", "?")
        sample = args.sample
        if name == "fp8-to-int4":
            if not args.fp8_sample:
                log(f"SKIP {name}: no --fp8-sample")
                continue
            sample = args.fp8_sample
        out_dir = os.path.join(args.work, name)
        deq_dir = os.path.join(args.work, name + "-f32")
        command = ["convert", sample, out_dir] + (["--to", target] if target else []) + flags + ["--force", "-q"]
        try:
            smelt(args.smelt, *command)
            smelt(args.smelt, "convert", out_dir, deq_dir, "--to", "f32", "--force", "-q")
            out, config = load_dir(out_dir)
            deq, _ = load_dir(deq_dir)
            if name == "nvfp4-ct-fused":
                source, _ = load_dir(sample)
                ok, why, count = check_nvfp4_fused(out, source)
            elif name == "fp8-block-ct-config":
                ok, why, count = check_fp8_block_config(out, config)
            elif name.startswith("int4") or name in ("mxfp4", "nvfp4-ct", "recipe-ct", "fp8-to-int4"):
                ok, why, count = check_compressed_tensors(out, deq, config)
            elif name.startswith("mlx"):
                ok, why, count = check_mlx(out, deq, config)
            elif name == "mxfp4-gpt-oss":
                ok, why, count = check_gpt_oss(out, deq, config)
            elif name == "nvfp4":
                ok, why, count = check_modelopt(out, deq, config, out_dir)
            else:
                ok, why, count = check_gptq(out, deq, config, out_dir)
        except Exception as error:
            ok, why, count = False, f"{type(error).__name__}: {error}", 0
        shown = "smelt " + " ".join(command)
        label = "AutoGPTQ's dequantization (transcribed; config parsed by transformers.GPTQConfig)" if name == "gptq" else library
        verb = {"nvfp4-ct-fused": "quantized bit-exactly as compressed-tensors does with llm-compressor's fused global scales",
                "fp8-block-ct-config": "matched by a config that equals compressed-tensors' FP8_BLOCK preset, in"}.get(
            name, "decompressed bit-exactly by")
        if ok and count > 0:
            log(f"PASS {name}: {count} weights {verb} {label} ({shown})")
        else:
            failures += 1
            log(f"FAIL {name}: {why or 'no quantized weights found'} ({shown})")
    failures += check_logits(args, args.only)
    for library in ("transformers", "mlx_lm"):
        module = optional(library)
        if module is not None:
            versions[library] = getattr(module, "__version__", "?")
    log("libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + f", torch {torch.__version__}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
