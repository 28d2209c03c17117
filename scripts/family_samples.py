"""Tiny checkpoints of every model family Smelt describes (imported by scripts/make-samples.py).

Each sample is built from the family's transformers 5.23 class: the class (instantiated on the meta device from
the sample's config) gives the tensor list and shapes; the script writes them under the release's own names,
dtypes and config schema, with deterministic random values, quantized the way that release is. Every sample's
BF16 form (the reference dequantization, see below) is loaded back into its transformers class with
`from_pretrained` before anything is written: a sample whose names or shapes transformers does not accept
fails generation.

For every quantized sample the script also writes the family's own dequantization to BF16, as SHA-256 per
tensor, to Tests/SmeltEndToEndTests/Golden/families/<sample>.json: `smelt convert --to bf16` must reproduce it
bit for bit.

    dequantization (the reference, computed here in torch)
    FP8 block    bf16(f32(q) * s) per 128x128 block, edge blocks cropped (DeepSeek's weight_dequant; the same as
                 transformers' finegrained-FP8 dequantizer, which needs whole blocks); BF16 scales widen exactly
    MXFP4        transformers' integrations.mxfp4.convert_moe_packed_tensors (BF16 LUT, ldexp, transposed to
                 [E, in, out])
    int4 pack    compressed-tensors' rule: int4 code cast to the scale dtype (BF16) times the scale, in BF16
    FP4 + E8M0   transformers' finegrained-FP8 FP4 path: bf16(LUT[nibble] * 2^(e - 127)), 1x32 blocks
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

SEED = 20250202
FP8_MAX = np.float32(448.0)
E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=np.float32)

# ----------------------------------------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------------------------------------


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def values_for(name: str, shape: tuple, vocab: int = 0, experts: int = 0, top_k: int = 0) -> np.ndarray:
    """Float32 (or int64) values by what the tensor is: linears with a few outlier input channels, norms near 1,
    positive router biases, small biases, sinks, hash tables."""
    rng = rng_for(name)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "tid2eid":
        return np.stack([rng.choice(experts, size=top_k, replace=False) for _ in range(shape[0])]).astype(np.int64)
    if leaf in ("e_score_correction_bias",) or name.endswith("gate.bias"):
        return (1.0 + rng.uniform(-0.3, 0.3, size=shape)).astype(np.float32)
    module = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else name
    if "norm" in module or leaf in ("enorm", "hnorm"):
        if leaf == "bias":
            return (0.05 * rng.standard_normal(shape)).astype(np.float32)
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    if leaf in ("sinks", "attn_sink"):
        return rng.standard_normal(shape).astype(np.float32)
    if leaf == "A_log":
        return np.log(rng.uniform(1, 16, size=shape)).astype(np.float32)
    if leaf == "dt_bias":
        return rng.standard_normal(shape).astype(np.float32)
    if leaf == "bias" or leaf.endswith("_bias") or "hc_" in name or leaf in ("ape", "position_bias") or "hc." in name:
        return (0.05 * rng.standard_normal(shape)).astype(np.float32)
    if "embed" in name and len(shape) == 2 and shape[0] == vocab:
        return (0.5 * rng.standard_normal(shape)).astype(np.float32)
    if len(shape) >= 2:
        fan_in = shape[-1]
        w = rng.standard_normal(shape, dtype=np.float32)
        flat = w.reshape(-1, shape[-1])
        cols = rng.choice(shape[-1], size=min(3, shape[-1]), replace=False)
        flat[:, cols] *= rng.uniform(8.0, 20.0, size=len(cols)).astype(np.float32)
        return (flat * np.float32(0.9 / math.sqrt(fan_in * 30))).reshape(shape).astype(np.float32)
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)


def bf16(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(ml_dtypes.bfloat16)


# ----------------------------------------------------------------------------------------------------------
# Release quantizers (independent of Smelt) and the reference dequantizers
# ----------------------------------------------------------------------------------------------------------


def fp8_block(w: np.ndarray, ue8m0: bool = False, scale_dtype=np.float32, block: int = 128):
    """DeepSeek's 128x128 block FP8: s = amax/448 (ue8m0: 2^ceil(log2 s), DeepGEMM's ceil_to_ue8m0; BF16 scale
    dtype: s rounded to BF16 first), q = e4m3(clip(x / s)) with the stored s."""
    x = np.asarray(w, dtype=np.float32)
    rows, cols = x.shape
    br, bc = -(-rows // block), -(-cols // block)
    scale = np.empty((br, bc), dtype=np.float32)
    q = np.empty(x.shape, dtype=ml_dtypes.float8_e4m3fn)
    for i in range(br):
        for j in range(bc):
            tile = x[i * block:(i + 1) * block, j * block:(j + 1) * block]
            amax = np.float32(np.max(np.abs(tile)))
            s = np.float32(1.0) if amax == 0 else np.float32(amax / FP8_MAX)
            if ue8m0:
                s = np.float32(2.0 ** math.ceil(math.log2(float(s))))
            if scale_dtype is not np.float32:
                s = np.float32(np.float32(s).astype(ml_dtypes.bfloat16))
            q[i * block:(i + 1) * block, j * block:(j + 1) * block] = np.clip(tile / s, -FP8_MAX, FP8_MAX).astype(
                ml_dtypes.float8_e4m3fn)
            scale[i, j] = s
    stored = scale if scale_dtype is np.float32 else scale.astype(ml_dtypes.bfloat16)
    return q, stored


def e2m1_codes(y: np.ndarray) -> np.ndarray:
    """The E2M1 code nearest to y (a tie goes to the even code, round-to-nearest-even), saturating at +-6."""
    mags = E2M1[:8]
    a = np.minimum(np.abs(y), 6.0)
    lower = np.clip(np.searchsorted(mags, a, side="right") - 1, 0, 7)
    upper = np.minimum(lower + 1, 7)
    dl, du = a - mags[lower], mags[upper] - a
    code = np.where(du < dl, upper, lower)
    code = np.where((du == dl) & (lower % 2 == 1), upper, code)
    return (code + np.where(np.signbit(y) & (code != 0), 8, 0)).astype(np.uint8)


def mx_block(x: np.ndarray):
    """One OCP MX block size-32 quantization along the last axis: shared exponent floor(log2 amax) - 2 (E2M1's
    emax), codes of x / 2^e. Returns (codes [..., n], biased exponents [..., n/32] as uint8)."""
    blocks = x.reshape(*x.shape[:-1], -1, 32)
    amax = np.max(np.abs(blocks), axis=-1)
    e = np.where(amax > 0, np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - 2, -127).astype(np.int32)
    e = np.clip(e, -127, 127)
    codes = e2m1_codes(blocks / np.exp2(e)[..., None].astype(np.float32))
    return codes.reshape(x.shape), (e + 127).astype(np.uint8)


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """Two codes per byte, the even element in the low nibble."""
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def int4_pack(w: np.ndarray, group: int = 32):
    """compressed-tensors symmetric int4, group `group`: s = bf16(amax / 7.5) (its bit_range / 2), q =
    clamp(round(x / s), -8, 7), stored +8 as unsigned nibbles, 8 per I32, low nibble first."""
    x = np.asarray(w, dtype=np.float32)
    g = x.reshape(x.shape[0], -1, group)
    amax = np.max(np.abs(g), axis=-1)
    s = np.where(amax > 0, amax / np.float32(7.5), 1.0).astype(np.float32).astype(ml_dtypes.bfloat16)
    q = np.clip(np.round(g / s.astype(np.float32)[..., None]), -8, 7).astype(np.int32).reshape(x.shape)
    u = (q + 8).astype(np.uint32).reshape(x.shape[0], -1, 8)
    packed = np.zeros(u.shape[:2], dtype=np.uint32)
    for i in range(8):
        packed |= u[..., i] << np.uint32(4 * i)
    return packed.view(np.int32), s, np.array(x.shape, dtype=np.int64), q


_REFERENCE = None


def torch_reference():
    """(fp8_dequant, mxfp4_gpt_oss, int4_dequant, fp4_e8m0): the reference dequantizers, in torch."""
    global _REFERENCE
    if _REFERENCE is None:
        _REFERENCE = _make_reference()
    return _REFERENCE


def _make_reference():
    import torch

    def fp8_dequant(q: np.ndarray, s: np.ndarray, block: int = 128) -> np.ndarray:
        tq = torch.from_numpy(q.view(np.uint8)).view(torch.float8_e4m3fn).float()
        ts = torch.from_numpy(np.asarray(s, dtype=np.float32))
        rows, cols = tq.shape
        full = ts.repeat_interleave(block, 0).repeat_interleave(block, 1)[:rows, :cols]
        return (tq * full).to(torch.bfloat16).view(torch.int16).numpy().view(ml_dtypes.bfloat16)

    def mxfp4_gpt_oss(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
        from transformers.integrations.mxfp4 import convert_moe_packed_tensors
        out = convert_moe_packed_tensors(torch.from_numpy(blocks), torch.from_numpy(scales), dtype=torch.bfloat16)
        return out.view(torch.int16).numpy().view(ml_dtypes.bfloat16)

    def int4_dequant(q: np.ndarray, s: np.ndarray, group: int = 32) -> np.ndarray:
        tq = torch.from_numpy(q.astype(np.int8)).to(torch.bfloat16)
        ts = torch.from_numpy(s.view(np.int16)).view(torch.bfloat16).repeat_interleave(group, 1)
        return (tq * ts).view(torch.int16).numpy().view(ml_dtypes.bfloat16)

    def fp4_e8m0(packed: np.ndarray, scales: np.ndarray) -> np.ndarray:
        lut = torch.tensor(E2M1, dtype=torch.float32)
        u8 = torch.from_numpy(packed.view(np.uint8))
        vals = torch.stack([lut[(u8 & 0xF).long()], lut[(u8 >> 4).long()]], dim=-1).reshape(u8.shape[0], -1)
        sf = (torch.from_numpy(scales.view(np.uint8)).float() - 127.0).exp2()
        rows, cols = vals.shape
        return (vals.reshape(rows, cols // 32, 32) * sf[..., None]).reshape(rows, cols).to(torch.bfloat16).view(
            torch.int16).numpy().view(ml_dtypes.bfloat16)

    return fp8_dequant, mxfp4_gpt_oss, int4_dequant, fp4_e8m0


# ----------------------------------------------------------------------------------------------------------
# Families
# ----------------------------------------------------------------------------------------------------------

FP8_BLOCK = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}


def meta_state(model_type: str, cfg: dict, cls_name: str = "AutoModelForCausalLM"):
    """(name, shape) of the transformers model built from `cfg` on the meta device (no memory, any size)."""
    import torch
    import transformers
    skip = ("model_type", "quantization_config", "architectures", "rotary_dim")
    # A deep copy: transformers' config classes edit nested dicts in place (they add rope_theta to rope_scaling),
    # and the sample configs share them (DEEPSEEK_TINY's rope_scaling is Kimi's too).
    fields = json.loads(json.dumps({k: v for k, v in cfg.items() if k not in skip}))
    for sub in ("text_config", "vision_config"):
        if sub in fields:
            fields[sub] = {k: v for k, v in fields[sub].items() if k != "quantization_config"}
    config = transformers.AutoConfig.for_model(model_type, **fields)
    with torch.device("meta"):
        model = getattr(transformers, cls_name).from_config(config)
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def lazy(name: str, shape: tuple, *args):
    """The values of `name` (see values_for), computed on first use only (skeletons never compute them)."""
    cache = []

    def make():
        if not cache:
            cache.append(values_for(name, shape, *args))
        return cache[0]
    return make


HF_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")
MIXTRAL_PROJECTIONS = ("w1", "w3", "w2")


def is_fused_experts(name: str) -> bool:
    return name.endswith(("experts.gate_up_proj", "experts.down_proj"))


def per_expert(name: str, shape: tuple, make, projections=HF_PROJECTIONS):
    """transformers' fused `experts.gate_up_proj [E, 2I, H]` / `experts.down_proj [E, H, I]` as the release's
    per-expert modules: yields (`<...>.experts.<e>.<proj>`, 2-D shape, values), gate rows first (transformers'
    Concatenate(dim=1))."""
    base = name.rsplit(".experts.", 1)[0]
    gate, up, down = projections
    for e in range(shape[0]):
        if name.endswith("gate_up_proj"):
            half = shape[1] // 2
            yield f"{base}.experts.{e}.{gate}", (half, shape[2]), (lambda e=e: make()[e, :half])
            yield f"{base}.experts.{e}.{up}", (half, shape[2]), (lambda e=e: make()[e, half:])
        else:
            yield f"{base}.experts.{e}.{down}", tuple(shape[1:]), (lambda e=e: make()[e])


def linear_like(name: str, shape: tuple) -> bool:
    return len(shape) == 2 and name.endswith(".weight") and "norm" not in name and "embed" not in name


BYTES = {"BF16": 2, "F32": 4, "I64": 8, "I32": 4, "I8": 1, "U8": 1, "F8_E4M3": 1, "F8_E8M0": 1}


class Sample:
    """One checkpoint: its release tensors (name, dtype, shape) and, unless `dry` (a skeleton), their values and the
    family's BF16 dequantization of each."""

    def __init__(self, name: str, family: str, note: str, dry: bool = False):
        self.name, self.family, self.note, self.dry = name, family, note, dry
        self.config: dict = {}
        self.specs: list[tuple[str, str, tuple]] = []
        self.tensors: dict[str, np.ndarray] = {}
        self.reference: dict[str, np.ndarray] = {}  # BF16 dequantization of every output tensor
        self.file_of: dict[str, str] | None = None
        self.model_type = ""
        self.cls_name = "AutoModelForCausalLM"
        self.ignored_on_load: list[str] = []
        self.extra_files: dict[str, str] = {}  # e.g. a tokenizer: file name -> text

    def _store(self, name: str, dtype: str, shape: tuple, value=None):
        self.specs.append((name, dtype, tuple(shape)))
        if value is not None:
            self.tensors[name] = value

    def plain(self, name: str, shape: tuple, dtype: str, make):
        """A tensor kept as is: BF16, F32 or I64 (hash tables)."""
        if self.dry:
            return self._store(name, dtype, shape)
        x = make()
        value = bf16(x) if dtype == "BF16" else x.astype(np.float32) if dtype == "F32" else x
        self._store(name, dtype, shape, value)
        self.reference[name] = value

    def fp8(self, name: str, shape: tuple, make, ue8m0: bool = False, scale_dtype: str = "F32",
            scale_leaf: str = "weight_scale_inv"):
        """A 128x128 block FP8 linear: `weight` F8_E4M3 and its scale (F32 / BF16 `weight_scale_inv`, or DeepSeek-V4's
        F8_E8M0 `scale`)."""
        scale_name = name[: -len("weight")] + scale_leaf
        scale_shape = (-(-shape[0] // 128), -(-shape[1] // 128))
        if self.dry:
            self._store(name, "F8_E4M3", shape)
            return self._store(scale_name, scale_dtype, scale_shape)
        q, sc = fp8_block(bf16(make()).astype(np.float32), ue8m0=ue8m0 or scale_dtype == "F8_E8M0",
                          scale_dtype=ml_dtypes.bfloat16 if scale_dtype == "BF16" else np.float32)
        self._store(name, "F8_E4M3", shape, q)
        stored = sc.astype(ml_dtypes.float8_e8m0fnu) if scale_dtype == "F8_E8M0" else sc
        self._store(scale_name, scale_dtype, scale_shape, stored)
        self.reference[name] = torch_reference()[0](q, sc.astype(np.float32))

    def int4(self, module: str, shape: tuple, make, group: int = 32):
        """compressed-tensors int4 pack-quantized (symmetric, `group`): weight_packed, weight_scale, weight_shape."""
        specs = [(module + ".weight_packed", "I32", (shape[0], shape[1] // 8)),
                 (module + ".weight_scale", "BF16", (shape[0], shape[1] // group)), (module + ".weight_shape", "I64", (2,))]
        if self.dry:  # the 16-byte weight_shape is data even in a skeleton: readers take the logical shape from it
            self._store(*specs[0])
            self._store(*specs[1])
            return self._store(*specs[2], np.array(shape, dtype=np.int64))
        packed, sc, wshape, q = int4_pack(bf16(make()).astype(np.float32), group)
        for (name, dtype, sh), value in zip(specs, (packed, sc, wshape)):
            self._store(name, dtype, sh, value)
        self.reference[module + ".weight"] = torch_reference()[2](q, sc, group)

    def mxfp4_gpt_oss(self, name: str, shape: tuple, make):
        """gpt-oss's MXFP4 experts: `shape` is transformers' [E, in, out]; stored [E, out, in/32, 16] + [E, out, in/32]."""
        experts, inputs, outputs = shape
        specs = [(name + "_blocks", "U8", (experts, outputs, inputs // 32, 16)), (name + "_scales", "U8", (experts, outputs, inputs // 32))]
        if self.dry:
            return [self._store(*spec) for spec in specs]
        w = bf16(make()).astype(np.float32).transpose(0, 2, 1)
        codes, exps = mx_block(w)
        blocks = pack_nibbles(codes).reshape(experts, outputs, inputs // 32, 16)
        self._store(*specs[0], blocks)
        self._store(*specs[1], exps)
        self.reference[name] = torch_reference()[1](blocks, exps)

    def fp4(self, module: str, shape: tuple, make):
        """DeepSeek-V4's FP4 experts: E2M1 pairs in I8 `weight` [out, in/2], F8_E8M0 `scale` [out, in/32]."""
        specs = [(module + ".weight", "I8", (shape[0], shape[1] // 2)), (module + ".scale", "F8_E8M0", (shape[0], shape[1] // 32))]
        if self.dry:
            return [self._store(*spec) for spec in specs]
        codes, exps = mx_block(bf16(make()).astype(np.float32))
        packed = pack_nibbles(codes).view(np.int8)
        self._store(*specs[0], packed)
        self._store(*specs[1], exps.view(ml_dtypes.float8_e8m0fnu))
        self.reference[module + ".weight"] = torch_reference()[3](packed, exps)


# ----------------------------------------------------------------------------------------------------------
# Families: each builder takes the config (tiny for a sample, the published one for a skeleton)
# ----------------------------------------------------------------------------------------------------------

FP8_BLOCK = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}


def in_decoder_linear(name: str, shape: tuple) -> bool:
    return name.startswith("model.layers.") and linear_like(name, shape) and ".mlp.gate.weight" not in name


def deepseek_like(s: Sample, cfg: dict, model_type: str, keep_f32=(), bf16_linears=(), experts: str = "fp8"):
    """DeepSeek-V3-architecture checkpoints (V3.1, V3.2, Kimi K2): transformers' names are the release's, MTP
    layers (`num_nextn_predict_layers`) repeat the last block after the trunk with V3's extras."""
    text = cfg.get("text_config", cfg)
    s.config, s.model_type = cfg, model_type
    state = meta_state(model_type, cfg, s.cls_name)
    ue8m0 = (text.get("quantization_config") or cfg.get("quantization_config") or {}).get("scale_fmt") == "ue8m0"
    quantized = experts != "bf16"
    args = (text["vocab_size"], text["n_routed_experts"], text["num_experts_per_tok"])
    for name, shape in state + deepseek_mtp(state, text):
        make = lazy(name, shape, *args)
        if is_fused_experts(name):
            for module, shape2, make2 in per_expert(name, shape, make):
                if experts == "int4":
                    s.int4(module, shape2, make2)
                elif experts == "fp8":
                    s.fp8(module + ".weight", shape2, make2, ue8m0=ue8m0)
                else:
                    s.plain(module + ".weight", shape2, "BF16", make2)
        elif name.endswith("e_score_correction_bias") or any(k in name for k in keep_f32):
            s.plain(name, shape, "F32", make)
        elif (quantized and experts != "int4" and in_decoder_linear(name, shape)
              and not any(b in name for b in bf16_linears) and not name.endswith(("eh_proj.weight", "shared_head.head.weight"))):
            s.fp8(name, shape, make, ue8m0=ue8m0)
        else:
            s.plain(name, shape, "BF16", make)


def deepseek_mtp(state: list, text: dict) -> list:
    """DeepSeek-V3 / GLM-4.5 MTP layers: layer `num_hidden_layers + k` = embed_tokens, enorm, hnorm, eh_proj,
    shared_head.{norm,head} and a copy of the last trunk layer's block (which transformers drops on load)."""
    count = text.get("num_nextn_predict_layers", 0) or 0
    trunk, h, v = text["num_hidden_layers"], text["hidden_size"], text["vocab_size"]
    prefix = next(n.split(".layers.")[0] for n, _ in state if ".layers." in n) + ".layers."
    out = []
    for k in range(count):
        p = f"{prefix}{trunk + k}."
        out += [(p + "embed_tokens.weight", (v, h)), (p + "enorm.weight", (h,)), (p + "hnorm.weight", (h,)),
                (p + "eh_proj.weight", (h, 2 * h)), (p + "shared_head.norm.weight", (h,)), (p + "shared_head.head.weight", (v, h))]
        last = f"{prefix}{trunk - 1}."
        out += [(p + n[len(last):], sh) for n, sh in state if n.startswith(last)]
    return out


DEEPSEEK_TINY = {
    "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 0,
    "eos_token_id": 1, "first_k_dense_replace": 1, "hidden_act": "silu", "hidden_size": 128,
    "initializer_range": 0.02, "intermediate_size": 128, "kv_lora_rank": 128, "max_position_embeddings": 4096,
    "model_type": "deepseek_v3", "moe_intermediate_size": 64, "moe_layer_freq": 1, "n_group": 2,
    "n_routed_experts": 4, "n_shared_experts": 1, "norm_topk_prob": True, "num_attention_heads": 2,
    "num_experts_per_tok": 2, "num_hidden_layers": 2, "num_key_value_heads": 2, "num_nextn_predict_layers": 0,
    "q_lora_rank": 128, "qk_nope_head_dim": 64, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                     "original_max_position_embeddings": 4096, "type": "yarn"},
    "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "tie_word_embeddings": False,
    "topk_group": 1, "topk_method": "noaux_tc", "torch_dtype": "bfloat16", "use_cache": True, "v_head_dim": 64,
    "vocab_size": 256,
}

# The published DeepSeek-V3 config (inference/configs/config_671B.json in HF schema): the base of V3.1 / V3.2 / Kimi.
DEEPSEEK_V3_FULL = dict(
    DEEPSEEK_TINY, first_k_dense_replace=3, hidden_size=7168, intermediate_size=18432, kv_lora_rank=512,
    max_position_embeddings=163840, moe_intermediate_size=2048, n_group=8, n_routed_experts=256,
    num_attention_heads=128, num_experts_per_tok=8, num_hidden_layers=61, num_key_value_heads=128,
    num_nextn_predict_layers=1, q_lora_rank=1536, qk_nope_head_dim=128, qk_rope_head_dim=64, topk_group=4,
    v_head_dim=128, vocab_size=129280)


def build_v31(cfg: dict, dry: bool = False) -> Sample:
    s = Sample("tiny-deepseek-v3.1-fp8", "deepseek-v3.1", "", dry)
    deepseek_like(s, dict(cfg, quantization_config=dict(FP8_BLOCK, scale_fmt="ue8m0")), "deepseek_v3")
    return s


def build_v32(cfg: dict, dry: bool = False) -> Sample:
    s = Sample("tiny-deepseek-v3.2-fp8", "deepseek-v3.2", "", dry)
    cfg = dict(cfg, architectures=["DeepseekV32ForCausalLM"], model_type="deepseek_v32",
               quantization_config=dict(FP8_BLOCK, scale_fmt="ue8m0"))
    deepseek_like(s, cfg, "deepseek_v32", keep_f32=(".indexer.k_norm.",), bf16_linears=(".indexer.weights_proj.",))
    return s


def build_kimi_k2(cfg: dict, dry: bool = False, experts: str = "fp8") -> Sample:
    """Kimi K2 (FP8, flat config) or K2-Thinking (int4 experts, compressed-tensors)."""
    s = Sample("kimi-k2", "kimi-k2", "", dry)
    cfg = dict(cfg, model_type="kimi_k2")
    cfg["quantization_config"] = FP8_BLOCK if experts == "fp8" else KIMI_INT4
    deepseek_like(s, cfg, "deepseek_v3", experts=experts)
    s.config["model_type"] = "kimi_k2"
    return s


KIMI_INT4 = {
    "config_groups": {"group_0": {
        "format": "pack-quantized", "input_activations": None, "output_activations": None, "targets": ["Linear"],
        "weights": {"actorder": None, "block_structure": None, "dynamic": False, "group_size": 32, "num_bits": 4,
                    "observer": "minmax", "observer_kwargs": {}, "strategy": "group", "symmetric": True, "type": "int"}}},
    "format": "pack-quantized",
    "ignore": ["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*", "re:.*mlp\\.(gate|up|down)_proj.*",
               "re:vision_tower.*", "re:mm_projector.*"],
    "kv_cache_scheme": None, "quant_method": "compressed-tensors", "quantization_status": "compressed",
}


def build_kimi_k25(cfg: dict, dry: bool = False) -> Sample:
    """Kimi K2.5: the wrapper's names (inverse of transformers' kimi_k25 conversion mapping), int4 routed experts."""
    s = Sample("tiny-kimi-k2.5", "kimi-k2", "", dry)
    s.cls_name = "AutoModelForImageTextToText"
    load_cfg = json.loads(json.dumps(cfg))
    load_cfg["text_config"]["model_type"] = "deepseek_v3"
    load_cfg["text_config"].pop("quantization_config", None)
    s.load_config = load_cfg
    s.config, s.model_type = cfg, "kimi_k25"
    text = cfg["text_config"]
    state = meta_state("kimi_k25", load_cfg, s.cls_name)

    def release(name: str) -> str:
        for old, new in [("model.language_model.", "language_model.model."), ("lm_head.", "language_model.lm_head."),
                         ("model.mm_projector.in_proj.", "mm_projector.proj.0."),
                         ("model.mm_projector.out_proj.", "mm_projector.proj.2."),
                         ("model.vision_tower.patch_embed.pos_emb.position_embeddings", "vision_tower.patch_embed.pos_emb.weight")]:
            if name.startswith(old):
                return new + name[len(old):]
        if name.startswith("model.vision_tower."):
            tail = name[len("model.vision_tower."):]
            for old, new in [(".norm1.", ".norm0."), (".norm2.", ".norm1."), (".mlp.fc1.", ".mlp.fc0."), (".mlp.fc2.", ".mlp.fc1."),
                             (".attn.proj.", ".wo.")]:
                tail = tail.replace(old, new)
            return "vision_tower.encoder." + tail.replace("layers.", "blocks.")
        return name

    args = (text["vocab_size"], text["n_routed_experts"], text["num_experts_per_tok"])
    for name, shape in state:
        r = release(name)
        make = lazy(r, shape, *args)
        if is_fused_experts(name):
            for module, shape2, make2 in per_expert(r, shape, make):
                s.int4(module, shape2, make2)
        else:
            s.plain(r, shape, "F32" if r.endswith("e_score_correction_bias") else "BF16", make)
    s.extra_files = kimi_tiktoken_files()
    return s


# Kimi's tokenizer is tiktoken's format, not tokenizer.json: `tiktoken.model` (base64 token, rank per line) and
# tokenizer_config.json's added_tokens_decoder for the 258 special ids after the base vocabulary, read by its
# remote-code TikTokenTokenizer. The sample's is a real byte-level BPE in that format: newline and printable ASCII,
# then KIMI_MERGES merges learnt greedily from KIMI_CORPUS (the most frequent adjacent pair first, ties by bytes),
# 196 base tokens; the sample's vocab_size 256 holds the first 60 special ids, named as Kimi K2 names them.
KIMI_CORPUS = (
    "The quick brown fox jumps over the lazy dog. Smelt converts checkpoints: it reads the release, "
    "quantizes the experts and writes the shards. 0123456789 tokens, tokens, tokens! A mixture of experts "
    "routes every token to the experts its router picks; the shared expert sees them all.\n"
    "def forward(x):\n    return x + attention(norm(x))\n"
)
KIMI_MERGES = 100
KIMI_SPECIALS = {0: "[BOS]", 1: "[EOS]", 2: "<|im_end|>", 3: "<|im_user|>", 4: "<|im_assistant|>",
                 6: "<|start_header_id|>", 7: "<|end_header_id|>", 9: "[EOT]", 10: "<|im_system|>", 17: "<|im_middle|>"}
KIMI_CHAT_TEMPLATE = (
    "{%- for message in messages -%}<|im_{{ message['role'] }}|>{{ message['role'] }}<|im_middle|>"
    "{{ message['content'] }}<|im_end|>{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_assistant|>assistant<|im_middle|>{%- endif -%}"
)


def kimi_tiktoken_files() -> dict[str, str]:
    import base64
    import re
    from collections import Counter
    ranks = {bytes([b]): i for i, b in enumerate([0x0A] + list(range(0x20, 0x7F)))}
    words = [[bytes([c]) for c in w.encode()] for w in re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9\s]+|\s+", KIMI_CORPUS)]
    for _ in range(KIMI_MERGES):
        pairs = Counter((a, b) for w in words for a, b in zip(w, w[1:]))
        (a, b), _count = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        ranks[a + b] = len(ranks)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if w[i] == a and w[i + 1] == b:
                    w[i:i + 2] = [a + b]
                i += 1
    base = len(ranks)
    model = "".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items())
    decoder = {str(base + i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                               "special": True} for i, c in KIMI_SPECIALS.items()}
    config = {"added_tokens_decoder": decoder, "additional_special_tokens": [c for c in KIMI_SPECIALS.values() if c[0] == "<"],
              "auto_map": {"AutoTokenizer": ["tokenization_kimi.TikTokenTokenizer", None]}, "bos_token": "[BOS]",
              "chat_template": KIMI_CHAT_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "[EOS]",
              "model_max_length": 262144, "pad_token": "[EOS]", "tokenizer_class": "TikTokenTokenizer", "unk_token": "[EOS]"}
    return {"tiktoken.model": model, "tokenizer_config.json": json.dumps(config, indent=2) + "\n"}


def build_qwen3(cfg: dict, dry: bool = False) -> Sample:
    s = Sample("tiny-qwen3-moe-fp8", "qwen3-moe", "", dry)
    s.config, s.model_type = cfg, "qwen3_moe"
    fp8 = "quantization_config" in cfg
    for name, shape in meta_state("qwen3_moe", cfg):
        make = lazy(name, shape, cfg["vocab_size"])
        if is_fused_experts(name):  # transformers holds experts fused; the release stores them per expert
            for module, shape2, make2 in per_expert(name, shape, make):
                s.fp8(module + ".weight", shape2, make2) if fp8 else s.plain(module + ".weight", shape2, "BF16", make2)
        elif fp8 and in_decoder_linear(name, shape):
            s.fp8(name, shape, make)
        else:
            s.plain(name, shape, "BF16", make)
    return s


def build_minimax(cfg: dict, dry: bool = False) -> Sample:
    s = Sample("tiny-minimax-m2-fp8", "minimax-m2", "", dry)
    s.config, s.model_type = cfg, "minimax_m2"
    for name, shape in meta_state("minimax_m2", cfg):
        release = name.replace(".mlp.", ".block_sparse_moe.")
        if release.endswith("gate.e_score_correction_bias"):
            release = release.replace(".block_sparse_moe.gate.", ".block_sparse_moe.")
        make = lazy(release, shape, cfg["vocab_size"])
        if is_fused_experts(name):
            for module, shape2, make2 in per_expert(release, shape, make, MIXTRAL_PROJECTIONS):
                s.fp8(module + ".weight", shape2, make2)
        elif release.endswith((".gate.weight", "e_score_correction_bias")):
            s.plain(release, shape, "F32", make)  # modules_to_not_convert: the router stays F32
        elif ".self_attn." in release and linear_like(release, shape):
            s.fp8(release, shape, make)
        else:
            s.plain(release, shape, "BF16", make)
    return s


def build_glm(cfg: dict, dry: bool = False) -> Sample:
    """GLM-4.5: DeepSeek's conventions (names, FP8 decoder linears, F32 router bias, NextN layer after the trunk)."""
    s = Sample("tiny-glm4-moe-fp8", "glm4-moe", "", dry)
    s.ignored_on_load = [f"model.layers.{cfg['num_hidden_layers']}."]
    deepseek_like(s, cfg, "glm4_moe")
    return s


def build_gpt_oss(cfg: dict, dry: bool = False) -> Sample:
    s = Sample("tiny-gpt-oss", "gpt-oss", "", dry)
    s.config, s.model_type = cfg, "gpt_oss"
    for name, shape in meta_state("gpt_oss", cfg):
        make = lazy(name, shape, cfg["vocab_size"])
        if is_fused_experts(name):
            s.mxfp4_gpt_oss(name, shape, make)
        else:
            s.plain(name, shape, "BF16", make)
    return s


def build_qwen35(cfg: dict, dry: bool = False) -> Sample:
    """Qwen3.5-MoE: BF16 (fused trunk experts, per-expert MTP experts) or FP8 (per-expert, BF16 scales)."""
    fp8 = "quantization_config" in cfg
    s = Sample("tiny-qwen3.5-moe" + ("-fp8" if fp8 else ""), "qwen3.5-moe", "", dry)
    s.config, s.model_type, s.cls_name = cfg, "qwen3_5_moe", "AutoModelForImageTextToText"
    text = cfg["text_config"]
    state = meta_state("qwen3_5_moe", cfg, s.cls_name)
    h = text["hidden_size"]
    # MTP (ignored by transformers): fc [H, 2H], two pre-fc norms, full-attention decoder layers, a final norm.
    full = text["layer_types"].index("full_attention")
    prefix = f"model.language_model.layers.{full}."
    mtp = [("mtp.fc.weight", (h, 2 * h)), ("mtp.pre_fc_norm_embedding.weight", (h,)),
           ("mtp.pre_fc_norm_hidden.weight", (h,)), ("mtp.norm.weight", (h,))]
    for k in range(text.get("mtp_num_hidden_layers", 1)):
        mtp += [(f"mtp.layers.{k}." + n[len(prefix):], sh) for n, sh in state if n.startswith(prefix)]
    s.ignored_on_load = ["mtp."]
    kept = ("mlp.gate.weight", "shared_expert_gate.weight", "in_proj_a.weight", "in_proj_b.weight", "mtp.fc.weight")
    for name, shape in state + mtp:
        make = lazy(name, shape, text["vocab_size"])
        if is_fused_experts(name) and (fp8 or name.startswith("mtp.")):
            for module, shape2, make2 in per_expert(name, shape, make):
                if fp8:
                    s.fp8(module + ".weight", shape2, make2, scale_dtype="BF16")
                else:
                    s.plain(module + ".weight", shape2, "BF16", make2)
        elif (fp8 and linear_like(name, shape) and not name.startswith("model.visual") and not name.endswith(kept)
              and name != "lm_head.weight"):
            s.fp8(name, shape, make, scale_dtype="BF16")
        else:
            s.plain(name, shape, "BF16", make)
    return s


def build_v4(cfg: dict, dry: bool = False) -> Sample:
    """DeepSeek-V4 in its own names (the inverse of transformers' deepseek_v4 conversion mapping)."""
    s = Sample("tiny-deepseek-v4", "deepseek-v4", "", dry)
    s.config, s.model_type = cfg, "deepseek_v4"
    state = meta_state("deepseek_v4", cfg)

    def release(name: str) -> str:
        n = name[len("model."):] if name.startswith("model.") else name
        if n == "embed_tokens.weight":
            return "embed.weight"
        if n == "lm_head.weight":
            return "head.weight"
        n = n.replace("hc_head.hc_", "hc_head_")
        n = n.replace(".self_attn.compressor.indexer.scorer.weights_proj.", ".attn.indexer.weights_proj.")
        n = n.replace(".self_attn.compressor.indexer.q_b_proj.", ".attn.indexer.wq_b.")
        n = n.replace(".self_attn.compressor.indexer.", ".attn.indexer.compressor.")
        for old, new in [(".self_attn.", ".attn."), (".mlp.", ".ffn."), (".input_layernorm.", ".attn_norm."),
                         (".post_attention_layernorm.", ".ffn_norm."), (".attn_hc.", ".hc_attn_"), (".ffn_hc.", ".hc_ffn_"),
                         (".sinks", ".attn_sink"), (".position_bias", ".ape"), (".q_a_proj.", ".wq_a."),
                         (".q_b_proj.", ".wq_b."), (".kv_proj.", ".wkv."), (".gate_proj.", ".wgate."),
                         (".o_a_proj.", ".wo_a."), (".o_b_proj.", ".wo_b."), (".q_a_norm.", ".q_norm."),
                         (".gate.e_score_correction_bias", ".gate.bias")]:
            n = n.replace(old, new)
        n = n.replace(".compressor.kv_norm.", ".compressor.norm.")
        n = n.replace(".shared_experts.wgate.", ".shared_experts.w1.").replace(".shared_experts.up_proj.", ".shared_experts.w3.")
        return n.replace(".shared_experts.down_proj.", ".shared_experts.w2.")

    def add(r: str, shape: tuple, make):
        if r.endswith("tid2eid"):
            s.plain(r, shape, "I64", make)
        elif r.endswith(("norm.weight", ".attn_sink", ".ape", ".gate.bias")) or "hc_" in r:
            s.plain(r, shape, "F32", make)
        elif (".compressor.wkv." in r or ".compressor.wgate." in r or r.endswith("weights_proj.weight")
              or r.endswith(".ffn.gate.weight") or r in ("embed.weight", "head.weight") or len(shape) != 2):
            s.plain(r, shape, "BF16", make)
        else:
            s.fp8(r, shape, make, scale_dtype="F8_E8M0", scale_leaf="scale")

    args = (cfg["vocab_size"], cfg["n_routed_experts"], cfg["num_experts_per_tok"])
    last = cfg["num_hidden_layers"] - 1
    h = cfg["hidden_size"]
    # MTP module 0, in its own shard: the last layer's block renamed, plus its projections and norms [names as
    # DeepSeek's inference code calls them; unverified]; transformers drops mtp.* on load.
    mtp = [("mtp.0.e_proj.weight", (h, h)), ("mtp.0.h_proj.weight", (h, h)), ("mtp.0.enorm.weight", (h,)),
           ("mtp.0.hnorm.weight", (h,)), ("mtp.0.norm.weight", (h,))]
    trunk = [(release(n), sh) for n, sh in state]
    mtp += [(r.replace(f"layers.{last}.", "mtp.0.", 1), sh) for r, sh in trunk if r.startswith(f"layers.{last}.")]
    for r, shape in trunk + mtp:
        make = lazy(r, shape, *args)
        if is_fused_experts(r):
            for module, shape2, make2 in per_expert(r, shape, make, MIXTRAL_PROJECTIONS):
                s.fp4(module, shape2, make2)
        else:
            add(r, shape, make)
    s.file_of = {n: ("model-00002-of-00002.safetensors" if n.startswith("mtp.") else "model-00001-of-00002.safetensors")
                 for n, _, _ in s.specs}
    s.ignored_on_load = ["mtp."]
    return s


# ----------------------------------------------------------------------------------------------------------
# The tiny samples
# ----------------------------------------------------------------------------------------------------------

QWEN3_TINY = {
    "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 0, "decoder_sparse_step": 1, "eos_token_id": 1, "head_dim": 64, "hidden_act": "silu",
    "hidden_size": 128, "initializer_range": 0.02, "intermediate_size": 128, "max_position_embeddings": 4096,
    "max_window_layers": 2, "mlp_only_layers": [0], "model_type": "qwen3_moe", "moe_intermediate_size": 64,
    "norm_topk_prob": True, "num_attention_heads": 4, "num_experts": 4, "num_experts_per_tok": 2,
    "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_scaling": None,
    "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": None, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False, "vocab_size": 256,
}
MINIMAX_TINY = {
    "architectures": ["MiniMaxM2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 1,
    "head_dim": 64, "hidden_act": "silu", "hidden_size": 128, "initializer_range": 0.02,
    "intermediate_size": 64, "max_position_embeddings": 4096, "model_type": "minimax_m2",
    "num_attention_heads": 4, "num_experts_per_tok": 2, "num_hidden_layers": 2, "num_key_value_heads": 2,
    "num_local_experts": 4, "qk_norm_type": "per_layer", "rms_norm_eps": 1e-06, "rope_theta": 5000000,
    "rotary_dim": 32, "scoring_func": "sigmoid", "shared_intermediate_size": 0, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "use_cache": True, "use_mtp": False, "use_qk_norm": True, "use_routing_bias": True,
    "vocab_size": 256,
    "quantization_config": {"activation_scheme": "dynamic", "fmt": "float8_e4m3fn", "quant_method": "fp8",
                            "weight_block_size": [128, 128],
                            "modules_to_not_convert": ["gate", "e_score_correction_bias", "lm_head"]},
}
GLM_TINY = {
    "architectures": ["Glm4MoeForCausalLM"], "attention_bias": True, "attention_dropout": 0.0,
    "bos_token_id": 0, "eos_token_id": 1, "first_k_dense_replace": 1, "head_dim": 64, "hidden_act": "silu",
    "hidden_size": 128, "initializer_range": 0.02, "intermediate_size": 128, "max_position_embeddings": 4096,
    "model_type": "glm4_moe", "moe_intermediate_size": 64, "n_group": 1, "n_routed_experts": 4,
    "n_shared_experts": 1, "norm_topk_prob": True, "num_attention_heads": 2, "num_experts_per_tok": 2,
    "num_hidden_layers": 2, "num_key_value_heads": 1, "num_nextn_predict_layers": 1,
    "partial_rotary_factor": 0.5, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 1000000,
    "routed_scaling_factor": 2.5, "tie_word_embeddings": False, "topk_group": 1, "torch_dtype": "bfloat16",
    "use_cache": True, "use_qk_norm": True, "vocab_size": 256, "quantization_config": FP8_BLOCK,
}
GPT_OSS_TINY = {
    "architectures": ["GptOssForCausalLM"], "attention_bias": True, "attention_dropout": 0.0,
    "eos_token_id": 1, "experts_per_token": 2, "head_dim": 64, "hidden_act": "silu", "hidden_size": 128,
    "initial_context_length": 4096, "initializer_range": 0.02, "intermediate_size": 64,
    "layer_types": ["sliding_attention", "full_attention"], "max_position_embeddings": 131072,
    "model_type": "gpt_oss", "num_attention_heads": 4, "num_experts_per_tok": 2, "num_hidden_layers": 2,
    "num_key_value_heads": 2, "num_local_experts": 4, "output_router_logits": False, "pad_token_id": 0,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0, "original_max_position_embeddings": 4096,
                     "rope_type": "yarn", "truncate": False},
    "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": 128, "swiglu_limit": 7.0,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 256,
    "quantization_config": {"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                       "model.embed_tokens", "lm_head"], "quant_method": "mxfp4"},
}
KIMI_K25_TINY = {
    "architectures": ["KimiK25ForConditionalGeneration"], "model_type": "kimi_k25", "media_placeholder_token_id": 250,
    "projection_hidden_size": 32, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "text_config": dict(
        {k: v for k, v in DEEPSEEK_TINY.items() if k != "torch_dtype"}, architectures=["DeepseekV3ForCausalLM"],
        model_type="kimi_k2", n_group=1, topk_group=1, rope_theta=50000, q_lora_rank=64, kv_lora_rank=64,
        qk_nope_head_dim=32, qk_rope_head_dim=32, v_head_dim=32, intermediate_size=96, quantization_config=KIMI_INT4),
    "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 1,
                      "patch_size": 14, "pos_emb_height": 4, "pos_emb_width": 4, "merge_kernel_size": [2, 2]},
}
QWEN35_TEXT = {
    "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": None, "eos_token_id": 1, "head_dim": 32,
    "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
    "layer_types": ["linear_attention", "full_attention"], "linear_conv_kernel_dim": 4, "linear_key_head_dim": 32,
    "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_value_head_dim": 32,
    "max_position_embeddings": 32768, "model_type": "qwen3_5_moe_text", "moe_intermediate_size": 64,
    "mtp_num_hidden_layers": 1, "num_attention_heads": 2, "num_experts": 4, "num_experts_per_tok": 2,
    "num_hidden_layers": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-06,
    "rope_parameters": {"mrope_interleaved": True, "mrope_section": [2, 1, 1], "partial_rotary_factor": 0.25,
                        "rope_theta": 10000000, "rope_type": "default"},
    "router_aux_loss_coef": 0.001, "shared_expert_intermediate_size": 32, "tie_word_embeddings": False,
    "use_cache": True, "vocab_size": 256,
}
QWEN35_TINY = {
    "architectures": ["Qwen3_5MoeForConditionalGeneration"], "image_token_id": 250, "model_type": "qwen3_5_moe",
    "text_config": QWEN35_TEXT, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "video_token_id": 251,
    "vision_config": {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                      "num_position_embeddings": 16, "patch_size": 8, "model_type": "qwen3_5_moe_vision"},
    "vision_end_token_id": 253, "vision_start_token_id": 252,
}
QWEN35_FP8_MODULES = ["lm_head", "model.language_model.embed_tokens", "model.visual", "mlp.gate", "mlp.shared_expert_gate",
                      "linear_attn.A_log", "linear_attn.dt_bias", "linear_attn.conv1d", "norm", "mtp.fc"]
V4_TINY = {
    "architectures": ["DeepseekV4ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 0, "compress_rates": {"compressed_sparse_attention": 4, "heavily_compressed_attention": 128},
    "compress_rope_theta": 160000.0, "eos_token_id": 1, "hc_eps": 1e-06, "hc_mult": 4, "hc_sinkhorn_iters": 20,
    "head_dim": 64, "hidden_act": "silu", "hidden_size": 128, "index_head_dim": 64, "index_n_heads": 2,
    "index_topk": 4, "initializer_range": 0.02,
    "layer_types": ["heavily_compressed_attention", "compressed_sparse_attention"],
    "max_position_embeddings": 1048576, "mlp_bias": False, "mlp_layer_types": ["hash_moe", "moe"],
    "model_type": "deepseek_v4", "moe_intermediate_size": 64, "n_routed_experts": 4, "n_shared_experts": 1,
    "norm_topk_prob": True, "num_attention_heads": 2, "num_experts_per_tok": 2, "num_hidden_layers": 2,
    "num_key_value_heads": 1, "num_nextn_predict_layers": 1, "o_groups": 2, "o_lora_rank": 64,
    "partial_rotary_factor": 0.125, "q_lora_rank": 64, "qk_rope_head_dim": 8, "rms_norm_eps": 1e-06,
    "rope_theta": 10000.0, "routed_scaling_factor": 1.5, "scoring_func": "sqrtsoftplus", "sliding_window": 8,
    "swiglu_limit": 10.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 256,
    "quantization_config": {"activation_scheme": "dynamic", "expert_dtype": "fp4", "fmt": "e4m3",
                            "quant_method": "fp8", "scale_fmt": "ue8m0", "weight_block_size": [128, 128]},
}


def named(sample: Sample, name: str, note: str) -> Sample:
    sample.name, sample.note = name, note
    return sample


SAMPLES = [
    lambda: named(build_v31(DEEPSEEK_TINY), "tiny-deepseek-v3.1-fp8",
                  "DeepSeek-V3.1 release FP8: F8_E4M3 + F32 weight_scale_inv 128x128 with power-of-two (ue8m0) scales"),
    lambda: named(build_v32(dict(DEEPSEEK_TINY, index_head_dim=128, index_n_heads=2, index_topk=4)), "tiny-deepseek-v3.2-fp8",
                  "DeepSeek-V3.2 release FP8 with the lightning indexer: wq_b / wk FP8, weights_proj BF16, k_norm F32"),
    lambda: named(build_v4(V4_TINY), "tiny-deepseek-v4", "DeepSeek-V4 in its own names: routed experts FP4 E2M1 pairs in I8 with F8_E8M0 .scale per 1x32, other "
                  "linears F8_E4M3 with F8_E8M0 .scale per 128x128, compressors / weights_proj BF16, norms, sinks, ape "
                  "and hyper-connections F32, a hash-routed layer (tid2eid I64), an MTP module in its own shard"),
    lambda: named(build_kimi_k25(KIMI_K25_TINY), "tiny-kimi-k2.5", "Kimi K2.5 (kimi_k25 wrapper, config in text_config, quantization_config nested there): routed experts "
                  "compressed-tensors int4 pack-quantized, symmetric, group 32, BF16 scales; the rest BF16; tiny MoonViT "
                  "vision tower and projector"),
    lambda: named(build_qwen3(dict(QWEN3_TINY, quantization_config=FP8_BLOCK)), "tiny-qwen3-moe-fp8", "Qwen3-MoE FP8 release: attention and experts F8_E4M3 + F32 weight_scale_inv 128x128; layer 0 dense "
                  "(mlp_only_layers), release config schema (rope_theta, num_experts)"),
    lambda: named(build_qwen3(dict(QWEN3_TINY, mlp_only_layers=[])), "tiny-qwen3-moe", "Qwen3-MoE BF16 release layout: every layer MoE (mlp_only_layers [], as in "
                  "Qwen3-30B-A3B and 235B-A22B), per-expert experts, QK-norm; the sample llama.cpp's qwen3moe loads"),
    lambda: named(build_qwen35(QWEN35_TINY), "tiny-qwen3.5-moe", "Qwen3.5-MoE BF16 release: fused 3-D routed experts (gate_up_proj [E, 2I, H], down_proj [E, H, I]) "
                  "in the trunk, per-expert experts in the MTP layer; config in text_config (transformers >= 5 "
                  "schema: rope_parameters); tiny vision tower"),
    lambda: named(build_qwen35(dict(QWEN35_TINY, quantization_config=dict(FP8_BLOCK, modules_to_not_convert=QWEN35_FP8_MODULES))),
                  "tiny-qwen3.5-moe-fp8", "Qwen3.5-MoE FP8 release: per-expert F8_E4M3 with BF16 weight_scale_inv 128x128; "
                  "modules_to_not_convert (lm_head, embeddings, norms, routers, shared_expert_gate, linear-attention "
                  "state, vision) BF16; MTP module under mtp."),
    lambda: named(build_glm(GLM_TINY), "tiny-glm4-moe-fp8", "GLM-4.5 FP8 (block 128x128): q/k/v biases, QK-norm, partial rotary, shared expert, sigmoid router "
                  "with F32 e_score_correction_bias, NextN/MTP layer after the trunk"),
    lambda: named(build_minimax(MINIMAX_TINY), "tiny-minimax-m2-fp8", "MiniMax-M2 release FP8 (fmt float8_e4m3fn): attention and block_sparse_moe experts w1/w2/w3 F8_E4M3 "
                  "+ F32 weight_scale_inv; router gate and e_score_correction_bias F32; modules_to_not_convert"),
    lambda: named(build_gpt_oss(GPT_OSS_TINY), "tiny-gpt-oss", "gpt-oss release: experts MXFP4 (U8 _blocks [E, out, in/32, 16] low nibble first, U8 E8M0 _scales, BF16 "
                  "_bias), attention with biases and sinks, router with bias, all BF16; alternating sliding/full layers"),
]

# ----------------------------------------------------------------------------------------------------------
# Writing and checking
# ----------------------------------------------------------------------------------------------------------


def write_sample(root: Path, sample: Sample) -> Path:
    out = root / "samples" / sample.name
    out.mkdir(parents=True, exist_ok=True)
    for p in out.iterdir():
        if p.is_file():
            p.unlink()
    tensors = {k: np.ascontiguousarray(v) for k, v in sorted(sample.tensors.items())}
    assert sorted(tensors) == sorted(n for n, _, _ in sample.specs), sample.name
    if sample.file_of:
        files = sorted(set(sample.file_of.values()))
        weight_map, total = {}, 0
        for f in files:
            part = {k: v for k, v in tensors.items() if sample.file_of[k] == f}
            save_file(part, str(out / f), metadata={"format": "pt"})
            for k, v in part.items():
                weight_map[k] = f
                total += v.nbytes
        (out / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2) + "\n")
    else:
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(sample.config, indent=2) + "\n")
    for name, text in sample.extra_files.items():
        (out / name).write_text(text)
    return out


def check_loads(sample: Sample, tmp: Path) -> None:
    """The BF16 reference form loads into the family's transformers class with no missing or unexpected keys."""
    import torch
    import transformers
    from safetensors.torch import save_file as save_torch
    d = tmp / sample.name
    d.mkdir(parents=True, exist_ok=True)
    ref = {}
    for k, v in sample.reference.items():
        if any(k.startswith(p) for p in sample.ignored_on_load):
            continue
        if v.dtype == ml_dtypes.bfloat16:
            ref[k] = torch.from_numpy(v.view(np.int16).copy()).view(torch.bfloat16)
        else:
            ref[k] = torch.from_numpy(np.ascontiguousarray(v))
    save_torch(ref, str(d / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads(json.dumps(getattr(sample, "load_config", sample.config)))
    cfg.pop("quantization_config", None)
    if "text_config" in cfg:
        cfg["text_config"].pop("quantization_config", None)
    (d / "config.json").write_text(json.dumps(cfg))
    cls = getattr(transformers, sample.cls_name)
    _, info = cls.from_pretrained(str(d), output_loading_info=True, dtype=torch.bfloat16)
    missing = [k for k in info["missing_keys"]]
    unexpected = [k for k in info["unexpected_keys"]]
    if missing or unexpected or info.get("mismatched_keys"):
        raise SystemExit(f"{sample.name}: transformers does not load the BF16 form: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}, mismatched {info.get('mismatched_keys')}")


def golden(sample: Sample) -> dict:
    """SHA-256 of every tensor of `smelt convert --to bf16`'s expected output: the reference dequantization."""
    out = {}
    for k, v in sorted(sample.reference.items()):
        dtype = {np.dtype(ml_dtypes.bfloat16): "BF16", np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[v.dtype]
        out[k] = {"dtype": dtype, "shape": list(v.shape), "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()}
    return out


def make_all(root: Path, tmp: Path) -> list[Path]:
    dirs = []
    golden_dir = root / "Tests" / "SmeltEndToEndTests" / "Golden" / "families"
    golden_dir.mkdir(parents=True, exist_ok=True)
    for make in SAMPLES:
        sample = make()
        check_loads(sample, tmp)
        dirs.append(write_sample(root, sample))
        doc = {"sample": sample.name, "family": sample.family, "note": sample.note, "bf16": golden(sample)}
        (golden_dir / f"{sample.name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return dirs


README_SECTION = """## Per-family samples (`scripts/family_samples.py`)

Each is built from its family's transformers 5.23 class (the class, instantiated from the sample's config on the
meta device, gives the tensors and shapes), written under the release's own names, dtypes and `config.json`
schema, with deterministic random values (one numpy generator per tensor seeded from `[20250202, crc32(name)]`),
and quantized the way that release is. Generation fails unless the BF16 form loads back into the transformers
class with no missing, unexpected or mismatched keys (MTP modules, which transformers drops, excepted). The
family's own dequantization of every tensor (see `scripts/family_samples.py`) is recorded as SHA-256 in
`Tests/SmeltEndToEndTests/Golden/families/<sample>.json`; `smelt convert --to bf16` reproduces it bit for bit.

| sample | family | what it holds |
|---|---|---|
""" + "".join(f"| `{name}` | {family} | {note} |\n" for name, family, note in [
    ("tiny-deepseek-v3.1-fp8", "DeepSeek-V3.1", "V3 names, 1 dense + 1 MoE layer (4 experts + shared); F8_E4M3 with F32 power-of-two (ue8m0) weight_scale_inv 128x128, `scale_fmt: ue8m0`"),
    ("tiny-deepseek-v3.2-fp8", "DeepSeek-V3.2", "as V3.1 plus the lightning indexer: `indexer.wq_b` / `wk` FP8, `weights_proj` BF16, `k_norm` weight and bias F32"),
    ("tiny-deepseek-v4", "DeepSeek-V4", "DeepSeek's own names (`layers.L.attn.wq_a`, `embed.weight`); routed experts FP4 (I8 pairs + F8_E8M0 `.scale` 1x32), other linears F8_E4M3 + F8_E8M0 `.scale` 128x128; a hash layer (`tid2eid` I64), compressors, indexer, hyper-connections; `mtp.0.*` in its own shard [MTP names unverified]"),
    ("tiny-kimi-k2.5", "Kimi K2", "K2.5 wrapper (`kimi_k25`, `text_config` with its `quantization_config`, `language_model.` prefix, MoonViT tower): routed experts compressed-tensors int4 pack-quantized g32 symmetric (I32 `weight_packed`, BF16 `weight_scale`, I64 `weight_shape`), the rest BF16; Kimi's tiktoken vocabulary format (`tiktoken.model`: 196 byte-level BPE tokens; `tokenizer_config.json`: Kimi's special token names after them)"),
    ("tiny-qwen3-moe-fp8", "Qwen3-MoE", "release config schema (`rope_theta`, `num_experts`, `mlp_only_layers: [0]`); attention and experts F8_E4M3 + F32 weight_scale_inv"),
    ("tiny-qwen3-moe", "Qwen3-MoE", "BF16, every layer MoE as in the releases (`mlp_only_layers: []`): the layout llama.cpp's `qwen3moe` loads (scripts/check-gguf)"),
    ("tiny-qwen3.5-moe", "Qwen3.5-MoE", "BF16 release: `text_config` (transformers >= 5 `rope_parameters`), Gated DeltaNet + full attention layers, fused 3-D experts in the trunk, per-expert experts in the MTP layer (`mtp.layers.0`), tiny vision tower"),
    ("tiny-qwen3.5-moe-fp8", "Qwen3.5-MoE", "FP8 release: per-expert F8_E4M3 with BF16 weight_scale_inv 128x128, `modules_to_not_convert` kept BF16"),
    ("tiny-glm4-moe-fp8", "GLM-4.5", "q/k/v biases, QK-norm, partial rotary, shared expert, F32 router bias; FP8 block 128x128; NextN layer 2"),
    ("tiny-minimax-m2-fp8", "MiniMax-M2", "`block_sparse_moe.experts.E.w1/w3/w2`, per-layer QK-norm; `fmt: float8_e4m3fn`, `modules_to_not_convert`: router `gate` and `e_score_correction_bias` F32"),
    ("tiny-gpt-oss", "gpt-oss", "MXFP4 experts (U8 `_blocks` [E, out, in/32, 16], U8 E8M0 `_scales`, BF16 `_bias`), attention with biases and sinks, router with bias, alternating sliding/full layers"),
])


def sample_names() -> list[str]:
    return ["tiny-deepseek-v3.1-fp8", "tiny-deepseek-v3.2-fp8", "tiny-deepseek-v4", "tiny-kimi-k2.5",
            "tiny-qwen3-moe-fp8", "tiny-qwen3-moe", "tiny-qwen3.5-moe", "tiny-qwen3.5-moe-fp8", "tiny-glm4-moe-fp8",
            "tiny-minimax-m2-fp8", "tiny-gpt-oss"]


# ----------------------------------------------------------------------------------------------------------
# Full-size skeletons (scripts/make-skeleton --model NAME): the published configs
# ----------------------------------------------------------------------------------------------------------

KIMI_K2_FULL = dict(
    DEEPSEEK_V3_FULL, first_k_dense_replace=1, max_position_embeddings=131072, n_group=1, n_routed_experts=384,
    num_attention_heads=64, num_key_value_heads=64, num_nextn_predict_layers=0, rope_theta=50000,
    rope_scaling={"beta_fast": 1.0, "beta_slow": 1.0, "factor": 32.0, "mscale": 1.0, "mscale_all_dim": 1.0,
                  "original_max_position_embeddings": 4096, "type": "yarn"},
    routed_scaling_factor=2.827, topk_group=1, vocab_size=163840)


def transformers_defaults(model_type: str, **overrides) -> dict:
    """transformers 5.23's default config for `model_type` (its docstring: "similar to" the flagship release),
    as a plain dict in the transformers >= 5 schema."""
    import transformers
    config = transformers.AutoConfig.for_model(model_type).to_dict()
    for key in ("transformers_version", "output_hidden_states", "return_dict", "chunk_size_feed_forward",
                "is_encoder_decoder", "id2label", "label2id", "problem_type", "_name_or_path", "output_attentions"):
        config.pop(key, None)
    for sub in ("text_config", "vision_config"):
        for key in ("transformers_version", "output_hidden_states", "return_dict", "chunk_size_feed_forward",
                    "is_encoder_decoder", "id2label", "label2id", "problem_type", "_name_or_path", "output_attentions"):
            config.get(sub, {}).pop(key, None)
    config.update(overrides)
    return config


def skeleton_models() -> dict:
    """Model name -> (builder, config, published total and active parameters in billions, the source)."""
    qwen3_30b = dict(QWEN3_TINY, head_dim=128, hidden_size=2048, intermediate_size=6144, max_position_embeddings=40960,
                     max_window_layers=48, mlp_only_layers=[], moe_intermediate_size=768, num_attention_heads=32,
                     num_experts=128, num_experts_per_tok=8, num_hidden_layers=48, num_key_value_heads=4,
                     vocab_size=151936, quantization_config=FP8_BLOCK)
    qwen3_235b = dict(qwen3_30b, hidden_size=4096, intermediate_size=12288, max_window_layers=94,
                      moe_intermediate_size=1536, num_attention_heads=64, num_hidden_layers=94)
    glm45 = dict(GLM_TINY, first_k_dense_replace=3, head_dim=128, hidden_size=5120, intermediate_size=12288,
                 max_position_embeddings=131072, moe_intermediate_size=1536, n_routed_experts=160,
                 num_attention_heads=96, num_experts_per_tok=8, num_hidden_layers=92, num_key_value_heads=8,
                 vocab_size=151552)
    glm45_air = dict(glm45, first_k_dense_replace=1, hidden_size=4096, intermediate_size=10944, moe_intermediate_size=1408,
                     n_routed_experts=128, num_hidden_layers=46, use_qk_norm=False)
    minimax = dict(MINIMAX_TINY, head_dim=128, hidden_size=3072, intermediate_size=1536, max_position_embeddings=196608,
                   num_attention_heads=48, num_experts_per_tok=8, num_hidden_layers=62, num_key_value_heads=8,
                   num_local_experts=256, rotary_dim=64, vocab_size=200064, use_mtp=True, num_mtp_modules=3)
    gpt_120b = dict(GPT_OSS_TINY, experts_per_token=4, head_dim=64, hidden_size=2880, intermediate_size=2880,
                    layer_types=["sliding_attention", "full_attention"] * 18, num_attention_heads=64, num_experts_per_tok=4,
                    num_hidden_layers=36, num_key_value_heads=8, num_local_experts=128, vocab_size=201088)
    gpt_20b = dict(gpt_120b, layer_types=["sliding_attention", "full_attention"] * 12, num_hidden_layers=24, num_local_experts=32)
    kimi_k25 = json.loads(json.dumps(KIMI_K25_TINY))
    kimi_k25["text_config"] = dict({k: v for k, v in KIMI_K2_FULL.items() if k != "torch_dtype"}, model_type="kimi_k2",
                                   quantization_config=KIMI_INT4)
    kimi_k25["vision_config"] = {k: v for k, v in transformers_defaults("kimi_k25")["vision_config"].items()
                                 if k != "model_type"}
    kimi_k25["projection_hidden_size"] = 1152
    v4 = transformers_defaults("deepseek_v4", architectures=["DeepseekV4ForCausalLM"], torch_dtype="bfloat16",
                               quantization_config=V4_TINY["quantization_config"])
    qwen36 = transformers_defaults("qwen3_5_moe", architectures=["Qwen3_5MoeForConditionalGeneration"], torch_dtype="bfloat16")
    qwen36["text_config"]["mtp_num_hidden_layers"] = 1
    qwen36_fp8 = dict(qwen36, quantization_config=dict(FP8_BLOCK, modules_to_not_convert=QWEN35_FP8_MODULES))
    k2_thinking = dict(KIMI_K2_FULL, max_position_embeddings=262144)
    return {
        "deepseek-v3.1": (build_v31, DEEPSEEK_V3_FULL, 671, 37, "deepseek-ai/DeepSeek-V3 README_WEIGHTS.md (671B main + 14B MTP; 36.6B activated incl. 0.9B head), V3.1 card"),
        "deepseek-v3.2": (build_v32, dict(DEEPSEEK_V3_FULL, index_head_dim=128, index_n_heads=64, index_topk=2048), 671, 37,
                          "deepseek-ai/DeepSeek-V3.2-Exp: V3.1-Terminus's architecture plus the indexer (685B with MTP on the hub)"),
        "deepseek-v4-flash": (build_v4, v4, 284, 13, "DeepSeek-V4-Flash card: 284B total, 13B activated (config: transformers 5.23's deepseek_v4 defaults)"),
        "kimi-k2": (build_kimi_k2, KIMI_K2_FULL, 1000, 32, "MoonshotAI/Kimi-K2 README: 1T total, 32B activated"),
        "kimi-k2-thinking": (lambda c, dry: build_kimi_k2(c, dry, experts="int4"), k2_thinking, 1000, 32,
                             "Kimi-K2-Thinking card: K2's 1T / 32B, INT4 experts"),
        "kimi-k2.5": (build_kimi_k25, kimi_k25, 1000, 32, "Kimi-K2.5 card: 1T total, 32B activated (plus the MoonViT tower)"),
        "qwen3-30b-a3b-fp8": (build_qwen3, qwen3_30b, 30.5, 3.3, "Qwen/Qwen3-30B-A3B card: 30.5B total, 3.3B activated"),
        "qwen3-235b-a22b-fp8": (build_qwen3, qwen3_235b, 235, 22, "Qwen/Qwen3-235B-A22B card: 235B total, 22B activated"),
        "qwen3.6-35b-a3b": (build_qwen35, qwen36, 35, 3, "Qwen3.6-35B-A3B card: 35B total, 3B activated (config: transformers 5.23's qwen3_5_moe defaults)"),
        "qwen3.6-35b-a3b-fp8": (build_qwen35, qwen36_fp8, 35, 3, "as qwen3.6-35b-a3b, FP8 release layout"),
        "glm-4.5-fp8": (build_glm, glm45, 355, 32, "zai-org/GLM-4.5 card: 355B total, 32B active"),
        "glm-4.5-air-fp8": (build_glm, glm45_air, 106, 12, "zai-org/GLM-4.5-Air card: 106B total, 12B active"),
        "minimax-m2": (build_minimax, minimax, 230, 10, "MiniMaxAI/MiniMax-M2 card: 230B total, 10B active"),
        "gpt-oss-120b": (build_gpt_oss, gpt_120b, 116.83, 5.13, "OpenAI gpt-oss model card, table 1: 116.83B total, 5.13B active"),
        "gpt-oss-20b": (build_gpt_oss, gpt_20b, 20.91, 3.61, "OpenAI gpt-oss model card, table 1: 20.91B total, 3.61B active"),
    }
