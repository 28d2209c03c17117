#!/usr/bin/env python3
"""Generate Smelt's bundled tiny checkpoints, deterministically, with the reference libraries.

    PY=$(scripts/lib/venv.sh scripts/requirements-samples.txt scripts/requirements-golden.txt)
    $PY scripts/make-samples.py            # writes samples/ and Tests/ReferenceModelTests/Golden/<variant>/
    $PY scripts/make-samples.py --check    # regenerates into a temp dir and fails if anything differs

The DeepSeek-V3 samples below use numpy, ml_dtypes and safetensors only; the per-family samples
(samples/tiny-<family>*, built from transformers' own classes) come from scripts/family_samples.py and need
torch and transformers (requirements-golden.txt).

Outputs
  samples/tiny-deepseek-v3/        BF16, DeepSeek-V3 names/config schema, MTP layer, 2 shards + index
  samples/tiny-deepseek-v3-fp8/    its twin in the release FP8 convention (F8_E4M3 + F32 weight_scale_inv,
                                   128x128 blocks), 2 shards + index, quantization_config in config.json
  Tests/ReferenceModelTests/Golden/tiny-q-proj/   smaller BF16 variant with q_lora_rank null (q_proj) and a
                                                  YaRN setup whose correction actually bites at short lengths
  Tests/ReferenceModelTests/Golden/tiny-no-yarn/  smaller BF16 variant with rope_scaling null
  samples/README.md                provenance, formulas, SHA-256 of every generated file

Only numpy, ml_dtypes and safetensors are used (no Smelt code), so the samples are an independent oracle.
Weights are generated in float32, rounded to bfloat16 by ml_dtypes (round-to-nearest-even); the FP8 twin is
computed from those bfloat16 values widened to float32 (see quantize_fp8_block).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family_samples  # noqa: E402  (scripts/family_samples.py: per-family samples, needs torch + transformers)

REPO = Path(__file__).resolve().parent.parent
BASE_SEED = 20250101
FP8_MAX = np.float32(448.0)
BLOCK = 128

# ----------------------------------------------------------------------------------------------------------
# Configurations
# ----------------------------------------------------------------------------------------------------------

QUANTIZATION_CONFIG = {
    "activation_scheme": "dynamic",
    "fmt": "e4m3",
    "quant_method": "fp8",
    "weight_block_size": [128, 128],
}


def release_style_config(**overrides) -> dict:
    """DeepSeek-V3's hub config.json schema (same keys, same order), with tiny sizes."""
    cfg = {
        "architectures": ["DeepseekV3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "auto_map": {
            "AutoConfig": "configuration_deepseek.DeepseekV3Config",
            "AutoModel": "modeling_deepseek.DeepseekV3Model",
            "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM",
        },
        "aux_loss_alpha": 0.001,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "ep_size": 1,
        "first_k_dense_replace": 1,
        "hidden_act": "silu",
        "hidden_size": 256,
        "initializer_range": 0.02,
        "intermediate_size": 384,
        "kv_lora_rank": 128,
        "max_position_embeddings": 163840,
        "model_type": "deepseek_v3",
        "moe_intermediate_size": 64,
        "moe_layer_freq": 1,
        "n_group": 4,
        "n_routed_experts": 16,
        "n_shared_experts": 1,
        "norm_topk_prob": True,
        "num_attention_heads": 4,
        "num_experts_per_tok": 4,
        "num_hidden_layers": 4,
        "num_key_value_heads": 4,
        "num_nextn_predict_layers": 1,
        "pretraining_tp": 1,
        "q_lora_rank": 192,
        "qk_nope_head_dim": 64,
        "qk_rope_head_dim": 32,
        "rms_norm_eps": 1e-06,
        "rope_scaling": {
            "beta_fast": 32,
            "beta_slow": 1,
            "factor": 40,
            "mscale": 1.0,
            "mscale_all_dim": 1.0,
            "original_max_position_embeddings": 4096,
            "type": "yarn",
        },
        "rope_theta": 10000,
        "routed_scaling_factor": 2.5,
        "scoring_func": "sigmoid",
        "seq_aux": True,
        "tie_word_embeddings": False,
        "topk_group": 2,
        "topk_method": "noaux_tc",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.3",
        "use_cache": True,
        "v_head_dim": 64,
        "vocab_size": 512,
    }
    for key, value in overrides.items():
        if key not in cfg:
            raise KeyError(f"unknown config key {key}")
        cfg[key] = value
    return cfg


def small_variant_config(**overrides) -> dict:
    """A smaller model for branch-coverage goldens (q_proj, no YaRN): 2 layers, no MTP, single file."""
    base = dict(
        hidden_size=128,
        intermediate_size=192,
        kv_lora_rank=64,
        moe_intermediate_size=32,
        n_group=4,
        n_routed_experts=8,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_experts_per_tok=2,
        num_hidden_layers=2,
        num_nextn_predict_layers=0,
        q_lora_rank=96,
        qk_nope_head_dim=32,
        qk_rope_head_dim=16,
        v_head_dim=32,
        vocab_size=256,
        max_position_embeddings=64,
    )
    base.update(overrides)
    return release_style_config(**base)


# The sizes of the main sample were chosen so that several FP8 weights have partial edge blocks:
#   q_a_proj            [192, 256]  -> scale [2, 2]  (last row block has 64 rows)
#   q_b_proj            [384, 192]  -> scale [3, 2]  (last column block has 64 columns)
#   kv_a_proj_with_mqa  [160, 256]  -> scale [2, 2]  (128 + 32 = 160 rows, like the release's 512 + 64 = 576)
#   kv_b_proj           [512, 128]  -> scale [4, 1]
#   o_proj              [256, 256]  -> scale [2, 2]
#   dense gate/up       [384, 256]  -> scale [3, 2];  down [256, 384] -> [2, 3]
#   expert gate/up      [64, 256]   -> scale [1, 2]  (partial rows);  down [256, 64] -> [2, 1] (partial columns)
# moe_intermediate_size is 64 rather than 128 to keep the checkpoint a few MB (17 experts x 4 MoE blocks).


# ----------------------------------------------------------------------------------------------------------
# Tensor plan: names, shapes and roles exactly as in the release
# ----------------------------------------------------------------------------------------------------------

def attention_tensors(prefix: str, cfg: dict) -> list[tuple[str, tuple, str]]:
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    qk_head = cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]
    out = []
    if cfg["q_lora_rank"] is None:
        out.append((f"{prefix}.self_attn.q_proj.weight", (heads * qk_head, h), "linear"))
    else:
        r = cfg["q_lora_rank"]
        out += [
            (f"{prefix}.self_attn.q_a_proj.weight", (r, h), "linear"),
            (f"{prefix}.self_attn.q_a_layernorm.weight", (r,), "norm"),
            (f"{prefix}.self_attn.q_b_proj.weight", (heads * qk_head, r), "linear"),
        ]
    kv = cfg["kv_lora_rank"]
    out += [
        (f"{prefix}.self_attn.kv_a_proj_with_mqa.weight", (kv + cfg["qk_rope_head_dim"], h), "linear"),
        (f"{prefix}.self_attn.kv_a_layernorm.weight", (kv,), "norm"),
        (f"{prefix}.self_attn.kv_b_proj.weight", (heads * (cfg["qk_nope_head_dim"] + cfg["v_head_dim"]), kv), "linear"),
        (f"{prefix}.self_attn.o_proj.weight", (h, heads * cfg["v_head_dim"]), "linear_out"),
    ]
    return out


def mlp_tensors(prefix: str, h: int, inter: int) -> list[tuple[str, tuple, str]]:
    return [
        (f"{prefix}.gate_proj.weight", (inter, h), "linear"),
        (f"{prefix}.up_proj.weight", (inter, h), "linear"),
        (f"{prefix}.down_proj.weight", (h, inter), "linear_out"),
    ]


def decoder_layer_tensors(layer: int, cfg: dict) -> list[tuple[str, tuple, str]]:
    h = cfg["hidden_size"]
    p = f"model.layers.{layer}"
    out = [(f"{p}.input_layernorm.weight", (h,), "norm")]
    out += attention_tensors(p, cfg)
    out.append((f"{p}.post_attention_layernorm.weight", (h,), "norm"))
    is_moe = layer >= cfg["first_k_dense_replace"] and layer % cfg["moe_layer_freq"] == 0
    if not is_moe:
        out += mlp_tensors(f"{p}.mlp", h, cfg["intermediate_size"])
    else:
        out.append((f"{p}.mlp.gate.weight", (cfg["n_routed_experts"], h), "router"))
        out.append((f"{p}.mlp.gate.e_score_correction_bias", (cfg["n_routed_experts"],), "bias"))
        for e in range(cfg["n_routed_experts"]):
            out += mlp_tensors(f"{p}.mlp.experts.{e}", h, cfg["moe_intermediate_size"])
        out += mlp_tensors(f"{p}.mlp.shared_experts", h, cfg["moe_intermediate_size"] * cfg["n_shared_experts"])
    return out


def mtp_layer_tensors(layer: int, cfg: dict) -> list[tuple[str, tuple, str]]:
    """The release's MTP module: layer index num_hidden_layers, a full MoE decoder block plus these extras."""
    h, v = cfg["hidden_size"], cfg["vocab_size"]
    p = f"model.layers.{layer}"
    out = [
        (f"{p}.embed_tokens.weight", (v, h), "mtp_embed"),
        (f"{p}.enorm.weight", (h,), "norm"),
        (f"{p}.hnorm.weight", (h,), "norm"),
        (f"{p}.eh_proj.weight", (h, 2 * h), "eh_proj"),
        (f"{p}.shared_head.norm.weight", (h,), "norm"),
        (f"{p}.shared_head.head.weight", (v, h), "mtp_head"),
    ]
    return out + decoder_layer_tensors(layer, cfg)


def tensor_plan(cfg: dict) -> list[tuple[str, tuple, str]]:
    h, v = cfg["hidden_size"], cfg["vocab_size"]
    plan = [("model.embed_tokens.weight", (v, h), "embed")]
    for layer in range(cfg["num_hidden_layers"]):
        plan += decoder_layer_tensors(layer, cfg)
    for k in range(cfg["num_nextn_predict_layers"]):
        plan += mtp_layer_tensors(cfg["num_hidden_layers"] + k, cfg)
    plan.append(("model.norm.weight", (h,), "norm"))
    plan.append(("lm_head.weight", (v, h), "head"))
    return plan


def is_release_fp8(name: str, role: str) -> bool:
    """The release quantizes exactly the 2-D linears inside decoder blocks (MTP's block included)."""
    return role in ("linear", "linear_out") and name.startswith("model.layers.")


# ----------------------------------------------------------------------------------------------------------
# Weight generation (float32, then bfloat16 RNE)
# ----------------------------------------------------------------------------------------------------------

def rng_for(name: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


IN_GAIN = 0.9    # output RMS of input-side linears (q/kv projections, gate/up) for a unit-RMS input
OUT_GAIN = 0.5   # output RMS of o_proj / down_proj: keeps the residual stream growing slowly
HEAD_GAIN = 2.0  # logits RMS


def generate_tensor(name: str, shape: tuple, role: str, cfg: dict, seed: int) -> np.ndarray:
    """Float32 values; not plain Gaussian: outlier input channels, norms near 1, a varied positive bias."""
    rng = rng_for(name, seed)
    if role in ("linear", "linear_out", "eh_proj"):
        out_f, in_f = shape
        w = rng.standard_normal(shape, dtype=np.float32)
        # A few outlier input channels (x10 .. x30 the typical weight), as in real checkpoints.
        count = int(rng.integers(2, 5))
        cols = rng.choice(in_f, size=count, replace=False)
        w[:, cols] *= rng.uniform(10.0, 30.0, size=count).astype(np.float32)
        # A handful of individually large weights.
        rows = rng.integers(0, out_f, size=3)
        cols = rng.integers(0, in_f, size=3)
        w[rows, cols] *= np.float32(8.0)
        # Scale so that a unit-RMS input gives an output of RMS `gain`: with the outliers, typical weights end
        # up around N(0, 0.02^2) for in = 256, the outlier columns around 0.2 .. 0.6.
        gain = OUT_GAIN if role == "linear_out" else IN_GAIN
        w *= np.float32(gain / math.sqrt(float(np.mean(np.sum(w.astype(np.float64) ** 2, axis=1)))))
        return w
    if role in ("embed", "mtp_embed"):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.5)
    if role in ("head", "mtp_head"):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(HEAD_GAIN / math.sqrt(shape[1]))
    if role == "norm":
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    if role == "router":
        # Larger than the linears so sigmoid scores spread over ~0.1..0.9 and routing depends on the token.
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(2.0 / math.sqrt(shape[1]))
    if role == "bias":
        # Per-layer offset in 0.5..3 plus a per-expert spread comparable to the sigmoid scores' spread, so the
        # bias shifts selection without deciding it alone. Kept strictly positive: then every selection score
        # is > 0 and masking with 0.0 or -inf selects the same experts.
        layer = int(name.split(".")[2])
        offset = [0.5, 1.25, 2.0, 3.0][layer % 4]
        spread = rng.uniform(-0.3, 0.3, size=shape)
        return (offset + spread).astype(np.float32)
    raise ValueError(role)


def generate_weights(cfg: dict, seed: int, zero_block: str | None = None) -> dict[str, np.ndarray]:
    tensors = {}
    for name, shape, role in tensor_plan(cfg):
        x = generate_tensor(name, shape, role, cfg, seed)
        if name == zero_block:
            # One all-zero 128x128 block (columns 128..255) exercises the amax == 0 rule of the quantizer.
            x[:BLOCK, BLOCK:2 * BLOCK] = 0.0
        if role == "bias":
            tensors[name] = x  # F32 in the release
        else:
            tensors[name] = x.astype(ml_dtypes.bfloat16)  # RNE
    return tensors


# ----------------------------------------------------------------------------------------------------------
# FP8 block quantization, release convention
# ----------------------------------------------------------------------------------------------------------

def quantize_fp8_block(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """128x128 block FP8 E4M3FN quantization.

    x = float32(w); per block (i, j) over rows [128i, 128i+128) and columns [128j, 128j+128), cropped to the
    real extent (zero padding does not change amax):
      amax  = max |x| over the block's real elements (float32)
      scale = float32(amax) / float32(448)          (float32 division, correctly rounded)
              1.0 if amax == 0 (all-zero block)
      q     = float8_e4m3fn(clip(x / scale, -448, 448))   (x / scale in float32; ml_dtypes cast = RNE)
    weight_scale_inv[i, j] = scale (float32); dequantization is float32(q) * scale.
    """
    return family_samples.fp8_block(w)  # the one implementation, shared with the per-family samples


# ----------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------

def write_sharded(outdir: Path, tensors: dict[str, np.ndarray], file_of: dict[str, int], file_count: int) -> None:
    names = [f"model-{i + 1:05d}-of-{file_count:05d}.safetensors" for i in range(file_count)]
    weight_map = {}
    total = 0
    for i, fname in enumerate(names):
        part = {k: np.ascontiguousarray(v) for k, v in tensors.items() if file_of[k] == i}
        save_file(part, str(outdir / fname), metadata={"format": "pt"})
        for k, v in part.items():
            weight_map[k] = fname
            total += v.nbytes
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write_json(outdir / "model.safetensors.index.json", index)


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def generation_config(cfg: dict) -> dict:
    return {
        "_from_model_config": True,
        "bos_token_id": cfg["bos_token_id"],
        "eos_token_id": cfg["eos_token_id"],
        "do_sample": True,
        "temperature": 0.6,
        "top_p": 0.95,
        "transformers_version": "4.46.3",
    }


# A fixed training text for the samples' BPE tokenizer: English, code, digits and a little CJK, so the merges
# cover ordinary text. Changing it changes tokenizer.json (and nothing else).
BPE_CORPUS = [
    "DeepSeek-V3 is a mixture-of-experts language model with 671B total parameters, of which 37B are activated",
    "for each token. It adopts multi-head latent attention and the DeepSeekMoE architecture, and pioneers an",
    "auxiliary-loss-free strategy for load balancing together with a multi-token prediction training objective.",
    "The quick brown fox jumps over the lazy dog. The five boxing wizards jump quickly; pack my box with five",
    "dozen liquor jugs. How vexingly quick daft zebras jump! Sphinx of black quartz, judge my vow.",
    "def quantize(x, scale):\n    return [round(v / scale) for v in x]\n\nprint(quantize([0.5, -1.25, 3.0], 0.25))",
    "for (int i = 0; i < n; ++i) { sum += weights[i] * values[i]; }  // 12 345 6789 3.14159 2.71828 1e-6",
    "Convert the checkpoint, shard the experts, validate the logits: smelt convert, smelt shard, smelt validate.",
    "User: What is 17 times 23? Assistant: 17 times 23 is 391. User: And 391 divided by 17? Assistant: 23.",
    "你好，世界。深度求索。量化与分片。 こんにちは世界。 Привет, мир! Grüße aus München, ça va très bien.",
]


def write_bpe_tokenizer(outdir: Path, vocab_size: int) -> None:
    """A small real byte-level BPE tokenizer (`tokenizers`, trained on BPE_CORPUS) with DeepSeek-V3's special
    tokens, BOS template and chat template, so a GGUF conversion writes a genuine gpt2 vocabulary (tokens,
    merges, special ids). Its pre-tokenizer is GPT-2's byte-level split, not DeepSeek-V3's regex sequence."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # single-threaded training: deterministic merges
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False)
    tokenizer.train_from_iterator(BPE_CORPUS, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{specials[0]} $A", pair=f"{specials[0]} $A {specials[0]} $B", special_tokens=[(specials[0], 0)])
    assert tokenizer.get_vocab_size() == vocab_size, f"the corpus gives {tokenizer.get_vocab_size()} tokens, need {vocab_size}"
    (outdir / "tokenizer.json").write_text(tokenizer.to_str() + "\n", encoding="utf-8")
    write_json(outdir / "tokenizer_config.json", {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": {"__type": "AddedToken", "content": specials[0], "lstrip": False, "normalized": True,
                      "rstrip": False, "single_word": False},
        "eos_token": {"__type": "AddedToken", "content": specials[1], "lstrip": False, "normalized": True,
                      "rstrip": False, "single_word": False},
        "pad_token": {"__type": "AddedToken", "content": specials[2], "lstrip": False, "normalized": True,
                      "rstrip": False, "single_word": False},
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": 16384,
        "tokenizer_class": "LlamaTokenizerFast",
        "unk_token": None,
        "use_default_system_prompt": False,
        "chat_template": CHAT_TEMPLATE,
    })


# A shortened DeepSeek-V3 chat template (system prompt, user / assistant turns, generation prompt).
CHAT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}"
)


def main_sample_file_of(names: list[str], cfg: dict) -> dict[str, int]:
    """Layer-by-layer split like the release. Deliberately not alphabetical: model.norm.weight sits in file 1
    with the early layers and lm_head.weight in file 2 with the last layers and the MTP layer."""
    split_layer = 2
    file_of = {}
    for name in names:
        if name.startswith("model.layers."):
            file_of[name] = 0 if int(name.split(".")[2]) < split_layer else 1
        elif name in ("model.embed_tokens.weight", "model.norm.weight"):
            file_of[name] = 0
        else:
            file_of[name] = 1
    return file_of


# Scales that live in a different file than their weight (the release has this, e.g. layer 39 expert 92).
FP8_MOVED_SCALES = {
    "model.layers.1.self_attn.kv_a_proj_with_mqa.weight_scale_inv": 1,  # weight in file 1 (index 0)
    "model.layers.3.mlp.experts.7.gate_proj.weight_scale_inv": 0,      # weight in file 2 (index 1)
}
ZERO_BLOCK_TENSOR = "model.layers.0.mlp.up_proj.weight"


def make_main_samples(root: Path) -> tuple[Path, Path]:
    cfg = release_style_config()
    bf16 = generate_weights(cfg, BASE_SEED, zero_block=ZERO_BLOCK_TENSOR)
    plan = tensor_plan(cfg)
    names = [n for n, _, _ in plan]
    roles = {n: r for n, _, r in plan}

    out = root / "samples" / "tiny-deepseek-v3"
    out.mkdir(parents=True, exist_ok=True)
    write_sharded(out, bf16, main_sample_file_of(names, cfg), 2)
    write_json(out / "config.json", cfg)
    write_json(out / "generation_config.json", generation_config(cfg))
    write_bpe_tokenizer(out, cfg["vocab_size"])

    fp8_dir = root / "samples" / "tiny-deepseek-v3-fp8"
    fp8_dir.mkdir(parents=True, exist_ok=True)
    fp8 = {}
    for name in names:
        if is_release_fp8(name, roles[name]):
            q, s = quantize_fp8_block(bf16[name].astype(np.float32))
            fp8[name] = q
            fp8[name + "_scale_inv"] = s
        else:
            fp8[name] = bf16[name]
    base_file_of = main_sample_file_of(names, cfg)
    file_of = {}
    for name in fp8:
        weight = name[: -len("_scale_inv")] if name.endswith("_scale_inv") else name
        file_of[name] = base_file_of[weight]
    for name, index in FP8_MOVED_SCALES.items():
        assert name in fp8 and file_of[name] != index, name
        file_of[name] = index
    write_sharded(fp8_dir, fp8, file_of, 2)
    fp8_cfg = dict(cfg)
    fp8_cfg["quantization_config"] = QUANTIZATION_CONFIG
    write_json(fp8_dir / "config.json", dict(sorted(fp8_cfg.items())))
    write_json(fp8_dir / "generation_config.json", generation_config(cfg))
    write_bpe_tokenizer(fp8_dir, cfg["vocab_size"])
    return out, fp8_dir


VARIANTS = {
    # q_lora_rank null -> q_proj. YaRN with a small original context (8) so the frequency correction and the
    # attention factor change logits at the golden sequence lengths; mscale == mscale_all_dim == 0.707 as in
    # DeepSeek-V2-Lite's config.
    "tiny-q-proj": dict(
        q_lora_rank=None,
        rope_scaling={
            "beta_fast": 32,
            "beta_slow": 1,
            "factor": 4,
            "mscale": 0.707,
            "mscale_all_dim": 0.707,
            "original_max_position_embeddings": 8,
            "type": "yarn",
        },
    ),
    # Plain RoPE: rope_scaling null, softmax scale = qk_head_dim ** -0.5.
    "tiny-no-yarn": dict(rope_scaling=None),
}


def make_variant(root: Path, name: str) -> Path:
    cfg = small_variant_config(**VARIANTS[name])
    seed = BASE_SEED + 1 + sorted(VARIANTS).index(name)
    tensors = generate_weights(cfg, seed)
    out = root / "Tests" / "ReferenceModelTests" / "Golden" / name
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})
    write_json(out / "config.json", cfg)
    return out


# ----------------------------------------------------------------------------------------------------------
# README with provenance and hashes
# ----------------------------------------------------------------------------------------------------------

README_HEAD = """# Bundled samples

Tiny checkpoints for Smelt's tests, examples and README commands: two DeepSeek-V3 ones (below) and one or two
per model family (`formats/families.md`). **Generated, do not edit by hand**: regenerate with

    PY=$(scripts/lib/venv.sh scripts/requirements-samples.txt scripts/requirements-golden.txt)
    $PY scripts/make-samples.py           # rewrites samples/ and Tests/ReferenceModelTests/Golden/tiny-*/
    $PY scripts/make-samples.py --check   # verifies the committed files are byte-identical to a fresh run

Generation uses only numpy, ml_dtypes and safetensors (versions pinned in `scripts/requirements-samples.txt`),
never Smelt's own code, so the samples are an independent oracle for Smelt's readers, quantizers and
dequantizers. Everything is deterministic (fixed seeds; one generator per tensor seeded from
`[20250101, crc32(name)]`).

## `tiny-deepseek-v3/` (BF16)

- DeepSeek-V3's real `config.json` schema (same keys as the hub release) with tiny sizes: hidden 256, 4 layers
  (`first_k_dense_replace` 1: layer 0 dense, layers 1-3 MoE), 4 heads, `q_lora_rank` 192, `kv_lora_rank` 128,
  `qk_nope_head_dim` 64, `qk_rope_head_dim` 32, `v_head_dim` 64, dense `intermediate_size` 384, 16 routed experts
  + 1 shared expert of `moe_intermediate_size` 64, top-4 of `n_group` 4 / `topk_group` 2, sigmoid scoring,
  `noaux_tc`, `routed_scaling_factor` 2.5, YaRN `rope_scaling` identical to the release (factor 40, original
  4096, beta 32/1, mscale 1.0/1.0), vocab 512, `num_nextn_predict_layers` 1. `rope_interleave` is not set (as
  in the release).
- Exact release tensor names, including the MTP layer `model.layers.4.*` (`embed_tokens`, `enorm`, `hnorm`,
  `eh_proj` [256, 512], `shared_head.norm`, `shared_head.head`, and a full MoE decoder block).
- dtypes as in the release: BF16 everywhere except `mlp.gate.e_score_correction_bias`, which is F32.
- Two shards + `model.safetensors.index.json`. The split is layer by layer, deliberately not alphabetical:
  `model.norm.weight` is in file 1, `lm_head.weight` in file 2. Also `config.json`, `generation_config.json`
  and a small real byte-level BPE `tokenizer.json` / `tokenizer_config.json` (trained with `tokenizers` on a fixed
  text; DeepSeek-V3's special tokens and a shortened chat template; non-weight files a converter must
  copy).
- Values are not plain Gaussian: each linear is N(0, 1) with 2-4 outlier input channels scaled x10..x30 and 3
  single weights x8, then scaled so a unit-RMS input gives an output RMS of 0.9 (0.5 for `o_proj`/`down_proj`);
  typical weights end up near N(0, 0.02^2), outlier columns near 0.2..0.6. Embeddings N(0, 0.5^2), `lm_head`
  N(0, (2/sqrt(hidden))^2); norms 1 + N(0, 0.1^2); router N(0, (2/sqrt(hidden))^2);
  `e_score_correction_bias` = per-layer offset (0.5, 1.25, 2.0, 3.0 for layer index 0/1/2/3 mod 4, so 1.25,
  2.0, 3.0 for layers 1-3 and 0.5 for MTP layer 4) + U(-0.3, 0.3) per expert, kept in full F32 precision and
  strictly positive (so masking non-selected groups with 0.0 or with -inf gives the same experts).
  Values are generated in float32 and rounded to BF16 by ml_dtypes (round-to-nearest-even).
- `model.layers.0.mlp.up_proj.weight` has one all-zero 128x128 block (rows 0-127, columns 128-255).

## `tiny-deepseek-v3-fp8/` (release FP8 convention)

The same tensors; exactly those the release quantizes become `F8_E4M3` with an F32 `weight_scale_inv` of shape
`[ceil(out/128), ceil(in/128)]`: every 2-D linear inside a decoder block (attention `q_a_proj`, `q_b_proj`,
`kv_a_proj_with_mqa`, `kv_b_proj`, `o_proj`; dense `gate/up/down_proj`; routed and shared experts), MTP's
decoder block included. Unchanged (BF16/F32): `embed_tokens`, `lm_head`, all norms, router `mlp.gate.weight`,
`e_score_correction_bias` (F32), MTP `eh_proj`, `embed_tokens`, `shared_head.head`.

Quantization of one weight `w` (BF16 sample value), per 128x128 block (i, j) cropped to the real extent:

    x     = float32(w)                                     # exact widening
    amax  = max |x| over the block's real elements         # zero padding would not change it
    scale = float32(amax) / float32(448)                   # one float32 division, correctly rounded
    scale = 1.0 if amax == 0                               # all-zero block (there is one, see above)
    q     = float8_e4m3fn(clip(x / scale, -448, 448))      # x / scale in float32; ml_dtypes cast, RNE
    weight_scale_inv[i, j] = scale                         # dequant: float32(q) * weight_scale_inv

Note: division by the scale, not multiplication by `448/amax` (the two differ in the last bit for some
elements). Edge blocks: `kv_a_proj_with_mqa` [160, 256] -> scale [2, 2] (32 real rows in the last row block,
like the release's 576 rows), `q_a_proj` [192, 256], `q_b_proj` [384, 192], every expert `gate/up_proj`
[64, 256] and `down_proj` [256, 64].

`config.json` gains `"quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method":
"fp8", "weight_block_size": [128, 128]}`. The shard split follows the BF16 sample, except that two scales live
in the other file than their weight (the release has this):
`model.layers.1.self_attn.kv_a_proj_with_mqa.weight_scale_inv` (file 2; weight in file 1) and
`model.layers.3.mlp.experts.7.gate_proj.weight_scale_inv` (file 1; weight in file 2).

## `Tests/ReferenceModelTests/Golden/tiny-q-proj/` and `tiny-no-yarn/`

Smaller single-file BF16 checkpoints (`model.safetensors`, no index, no MTP) for the reference-model branch
coverage goldens: hidden 128, 2 layers (1 dense + 1 MoE), 2 heads, 8 experts top-2 of 4 groups / 2.
`tiny-q-proj` has `q_lora_rank: null` (uses `self_attn.q_proj`) and YaRN factor 4 over an original context of 8
with mscale = mscale_all_dim = 0.707; `tiny-no-yarn` has `q_lora_rank` 96 and `rope_scaling: null`.
Golden logits for all three BF16 models: see `Tests/ReferenceModelTests/Golden/README.md`.

## SHA-256 of every generated file
"""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def generated_dirs(root: Path) -> list[Path]:
    return [root / "samples" / "tiny-deepseek-v3", root / "samples" / "tiny-deepseek-v3-fp8"] + [
        root / "Tests" / "ReferenceModelTests" / "Golden" / name for name in sorted(VARIANTS)
    ] + [root / "samples" / name for name in family_samples.sample_names()] + [
        root / "Tests" / "SmeltEndToEndTests" / "Golden" / "families"]


def write_readme(root: Path) -> None:
    lines = [README_HEAD.replace("## SHA-256 of every generated file\n", family_samples.README_SECTION
                                 + "\n## SHA-256 of every generated file\n"),
             "| file | bytes | sha256 |", "|---|---:|---|"]
    for d in generated_dirs(root):
        for path in sorted(p for p in d.iterdir() if p.is_file()):
            rel = path.relative_to(root)
            lines.append(f"| `{rel}` | {path.stat().st_size} | `{sha256(path)}` |")
    (root / "samples" / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def generate_all(root: Path) -> None:
    for d in generated_dirs(root):
        if d.exists():
            for p in d.iterdir():
                if p.is_file() and (p.suffix in (".safetensors", ".json")):
                    p.unlink()
    make_main_samples(root)
    for name in sorted(VARIANTS):
        make_variant(root, name)
    with tempfile.TemporaryDirectory() as scratch:
        family_samples.make_all(root, Path(scratch))
    write_readme(root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO, help="repository root to write into (default: this repo)")
    parser.add_argument("--check", action="store_true", help="regenerate in a temp dir and compare with --out")
    args = parser.parse_args()
    if not args.check:
        generate_all(args.out)
        for d in generated_dirs(args.out):
            size = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
            print(f"wrote {d.relative_to(args.out)}  ({size / 1e6:.2f} MB)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp)
        generate_all(tmp_root)
        bad = 0
        for d in generated_dirs(tmp_root):
            for p in sorted(d.iterdir()):
                committed = args.out / p.relative_to(tmp_root)
                if not committed.exists() or sha256(committed) != sha256(p):
                    print(f"differs: {p.relative_to(tmp_root)}")
                    bad += 1
        readme = args.out / "samples" / "README.md"
        if not readme.exists() or readme.read_bytes() != (tmp_root / "samples" / "README.md").read_bytes():
            print("differs: samples/README.md")
            bad += 1
        print("samples are up to date" if bad == 0 else f"{bad} generated file(s) differ; rerun make-samples.py")
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
