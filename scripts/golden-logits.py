#!/usr/bin/env python3
"""Golden F32 logits (and per-layer hidden states and routing) from transformers' DeepseekV3ForCausalLM.

    PY=$(scripts/lib/venv.sh scripts/requirements-samples.txt scripts/requirements-golden.txt)
    $PY scripts/golden-logits.py          # writes Tests/ReferenceModelTests/Golden/*.golden.safetensors

Models (all loaded with dtype=torch.float32, attn_implementation="eager", experts_implementation="eager"):
  tiny-deepseek-v3             samples/tiny-deepseek-v3 (BF16 values widened to F32; MTP layer ignored)
  tiny-deepseek-v3-fp8-dequant samples/tiny-deepseek-v3-fp8 dequantized in F32 (float32(q) * weight_scale_inv),
                               written to a temp F32 checkpoint, then loaded like the others
  tiny-q-proj                  Tests/ReferenceModelTests/Golden/tiny-q-proj (q_lora_rank null, YaRN 4x over 8)
  tiny-no-yarn                 Tests/ReferenceModelTests/Golden/tiny-no-yarn (rope_scaling null)

Each output file `Tests/ReferenceModelTests/Golden/<model>.golden.safetensors` holds:
  input_ids                    I64 [batch, seq]            the fixed token ids (no padding, no attention mask)
  logits                       F32 [batch, seq, vocab]
  hidden.embed                 F32 [batch, seq, hidden]    embedding output (input of layer 0)
  hidden.layer.N               F32 [batch, seq, hidden]    output of decoder layer N (residual stream, pre-norm)
  hidden.final_norm            F32 [batch, seq, hidden]    model.norm output (input of lm_head)
  router.layer.N.logits        F32 [batch*seq, n_routed]   router logits (F32 matmul), MoE layers only
  router.layer.N.experts       I64 [batch*seq, top_k]      selected expert ids, sorted ascending per token
  router.layer.N.weights       F32 [batch*seq, top_k]      their routing weights (normalised x routed_scaling_factor)
and __metadata__ {"golden": JSON} with versions, source, softmax scale, rope parameters as transformers read
them, the smallest selection margins (see check_margins) and the numpy float64 cross-check result.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.numpy import load_file as np_load_file
from safetensors.numpy import save_file
from safetensors import safe_open

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "Tests" / "ReferenceModelTests" / "Golden"

# Fixed token ids: 2 sequences each; the first starts with BOS (0). Generated once with
# numpy.random.default_rng(7).integers(2, vocab) and then frozen here so they never change with numpy versions.
TOKENS = {
    "tiny-deepseek-v3": [
        [0, 23, 481, 77, 302, 5, 199, 411, 64, 350, 12, 275],
        [417, 88, 3, 260, 134, 509, 46, 391, 222, 17, 143, 500],
    ],
    "tiny-q-proj": [
        [0, 101, 7, 250, 33, 180, 64, 129, 211, 2, 90, 155, 47, 240, 18, 77],
        [200, 12, 99, 143, 8, 255, 61, 170, 36, 121, 230, 5, 188, 72, 44, 160],
    ],
    "tiny-no-yarn": [
        [0, 55, 200, 13, 141, 87, 249, 30, 166, 9],
        [120, 66, 231, 4, 190, 73, 11, 207, 98, 150],
    ],
}
TOKENS["tiny-deepseek-v3-fp8-dequant"] = TOKENS["tiny-deepseek-v3"]

MIN_MARGIN = 1e-5  # selection margins below this would make the golden routing fragile (F32 noise is ~1e-6)


def load_model(path: Path):
    model = transformers.DeepseekV3ForCausalLM.from_pretrained(
        str(path),
        dtype=torch.float32,
        attn_implementation="eager",
        experts_implementation="eager",
    )
    model.eval()
    return model


def run(model, input_ids: torch.Tensor) -> dict[str, np.ndarray]:
    cfg = model.config
    captured: dict[str, torch.Tensor] = {}
    hooks = []

    def keep(name):
        def hook(_module, _inputs, output):
            captured[name] = output[0] if isinstance(output, tuple) and name.startswith("hidden") else output
        return hook

    hooks.append(model.model.embed_tokens.register_forward_hook(keep("hidden.embed")))
    for i, layer in enumerate(model.model.layers):
        hooks.append(layer.register_forward_hook(keep(f"hidden.layer.{i}")))
        if i >= cfg.first_k_dense_replace:
            hooks.append(layer.mlp.gate.register_forward_hook(keep(f"router.layer.{i}")))
    hooks.append(model.model.norm.register_forward_hook(keep("hidden.final_norm")))
    with torch.no_grad():
        out = model(input_ids=input_ids, use_cache=False)
    for h in hooks:
        h.remove()

    result = {"input_ids": input_ids.numpy().astype(np.int64), "logits": out.logits.float().numpy()}
    for name, value in captured.items():
        if name.startswith("router."):
            router_logits, weights, indices = value
            order = torch.argsort(indices, dim=-1)
            result[f"{name}.logits"] = router_logits.float().numpy()
            result[f"{name}.experts"] = torch.gather(indices, 1, order).numpy().astype(np.int64)
            result[f"{name}.weights"] = torch.gather(weights, 1, order).float().numpy()
        else:
            result[name] = value.float().numpy()
    return {k: np.ascontiguousarray(v) for k, v in result.items()}


def check_margins(model, result: dict[str, np.ndarray]) -> tuple[float, float]:
    """Smallest gaps, in float64 recomputed from the golden F32 router logits, between the last selected and
    the first rejected group score and expert selection score. Small gaps mean an implementation with
    slightly different F32 rounding could pick other experts."""
    cfg = model.config
    group_gap, expert_gap = float("inf"), float("inf")
    for i in range(cfg.first_k_dense_replace, cfg.num_hidden_layers):
        logits = result[f"router.layer.{i}.logits"].astype(np.float64)
        bias = model.model.layers[i].mlp.gate.e_score_correction_bias.double().numpy()
        c = 1.0 / (1.0 + np.exp(-logits)) + bias
        groups = c.reshape(c.shape[0], cfg.n_group, -1)
        gscore = np.sort(groups, axis=-1)[..., -2:].sum(-1)
        gs = np.sort(gscore, axis=-1)[:, ::-1]
        if cfg.topk_group < cfg.n_group:
            group_gap = min(group_gap, float(np.min(gs[:, cfg.topk_group - 1] - gs[:, cfg.topk_group])))
        keep = np.argsort(-gscore, axis=-1)[:, : cfg.topk_group]
        masked = np.full_like(c, -np.inf)
        per = cfg.n_routed_experts // cfg.n_group
        for t in range(c.shape[0]):
            for g in keep[t]:
                masked[t, g * per:(g + 1) * per] = c[t, g * per:(g + 1) * per]
        cs = np.sort(masked, axis=-1)[:, ::-1]
        k = cfg.num_experts_per_tok
        expert_gap = min(expert_gap, float(np.min(cs[:, k - 1] - cs[:, k])))
        chosen = np.sort(np.argsort(-masked, axis=-1)[:, :k], axis=-1)
        if not np.array_equal(chosen, result[f"router.layer.{i}.experts"]):
            raise SystemExit(f"layer {i}: float64 re-selection disagrees with transformers' routing")
    return group_gap, expert_gap


# ----------------------------------------------------------------------------------------------------------
# Independent check: the same model in numpy float64, written from DeepSeek's description (interleaved-pair
# RoPE on the checkpoint's own layout as in DeepSeek's inference/model.py, YaRN and mscale formulas, -inf
# group masking), not from transformers. It must agree with transformers' F32 logits, which pins down how
# transformers interprets the config (rope_interleave, mscale, attention factor, routing).
# ----------------------------------------------------------------------------------------------------------

def load_f64(path: Path) -> dict[str, np.ndarray]:
    import ml_dtypes
    for attr in ("bfloat16", "float8_e4m3fn"):
        if not hasattr(np, attr):
            setattr(np, attr, getattr(ml_dtypes, attr))  # lets safetensors' numpy backend build these dtypes
    files = sorted(path.glob("*.safetensors"))
    out = {}
    for f in files:
        for k, v in np_load_file(str(f)).items():
            out[k] = v.astype(np.float64)
    return out


def yarn_mscale(scale: float, m: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0


def numpy_forward(path: Path, ids: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    cfg = json.loads((path / "config.json").read_text())
    w = load_f64(path)
    nh, dn, dr, dv = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    eps = cfg["rms_norm_eps"]

    def rms(x, weight, e=eps):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + e) * weight

    def lin(x, name):
        return x @ w[name + ".weight"].T

    # RoPE / YaRN
    inv = cfg["rope_theta"] ** (-np.arange(0, dr, 2, dtype=np.float64) / dr)
    softmax_scale = (dn + dr) ** -0.5
    attn_factor = 1.0
    rs = cfg.get("rope_scaling")
    if rs:
        factor, orig = rs["factor"], rs["original_max_position_embeddings"]

        def corr(rot):
            return dr * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(cfg["rope_theta"]))

        low = max(math.floor(corr(rs["beta_fast"])), 0)
        high = min(math.ceil(corr(rs["beta_slow"])), dr - 1)
        ramp = np.clip((np.arange(dr // 2) - low) / ((high - low) or 0.001), 0, 1)
        inv = inv / factor * ramp + inv * (1 - ramp)
        ms, msa = rs.get("mscale"), rs.get("mscale_all_dim")
        attn_factor = yarn_mscale(factor, ms) / yarn_mscale(factor, msa) if ms and msa else yarn_mscale(factor)
        if msa:
            softmax_scale *= yarn_mscale(factor, msa) ** 2
    seq = ids.shape[1]
    ang = np.arange(seq)[:, None] * inv[None, :]
    cos, sin = np.cos(ang) * attn_factor, np.sin(ang) * attn_factor

    def rope(x):  # [..., seq, dr]; rotate interleaved pairs (x[2j], x[2j+1]) by angle j
        out = np.empty_like(x)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x1 * cos + x0 * sin
        return out

    def mlp(x, p):
        g = lin(x, p + ".gate_proj")
        return lin(g / (1 + np.exp(-g)) * lin(x, p + ".up_proj"), p + ".down_proj")

    routing = {}
    all_logits = []
    for b in range(ids.shape[0]):
        h = w["model.embed_tokens.weight"][ids[b]]
        for layer in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{layer}"
            x = rms(h, w[p + ".input_layernorm.weight"])
            if cfg["q_lora_rank"] is None:
                q = lin(x, p + ".self_attn.q_proj")
            else:
                q = lin(rms(lin(x, p + ".self_attn.q_a_proj"), w[p + ".self_attn.q_a_layernorm.weight"], 1e-6),
                        p + ".self_attn.q_b_proj")
            q = q.reshape(seq, nh, dn + dr).transpose(1, 0, 2)              # [nh, seq, dn+dr]
            kv = lin(x, p + ".self_attn.kv_a_proj_with_mqa")                 # [seq, kv_lora_rank + dr]
            c_kv = rms(kv[:, : cfg["kv_lora_rank"]], w[p + ".self_attn.kv_a_layernorm.weight"], 1e-6)
            k_pe = rope(kv[:, cfg["kv_lora_rank"]:])                         # [seq, dr], shared by all heads
            kvb = lin(c_kv, p + ".self_attn.kv_b_proj").reshape(seq, nh, dn + dv).transpose(1, 0, 2)
            k_nope, v = kvb[..., :dn], kvb[..., dn:]
            q_pe = rope(q[..., dn:])
            scores = (q[..., :dn] @ k_nope.transpose(0, 2, 1) + q_pe @ k_pe.T) * softmax_scale
            scores = np.where(np.tril(np.ones((seq, seq), bool)), scores, -np.inf)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            o = (probs @ v).transpose(1, 0, 2).reshape(seq, nh * dv)
            h = h + lin(o, p + ".self_attn.o_proj")
            x = rms(h, w[p + ".post_attention_layernorm.weight"])
            if layer < cfg["first_k_dense_replace"]:
                h = h + mlp(x, p + ".mlp")
                continue
            e_count, groups = cfg["n_routed_experts"], cfg["n_group"]
            s = 1 / (1 + np.exp(-(x @ w[p + ".mlp.gate.weight"].T)))            # [seq, E], unbiased scores
            c = s + w[p + ".mlp.gate.e_score_correction_bias"]               # selection scores
            gscore = np.sort(c.reshape(seq, groups, -1), axis=-1)[..., -2:].sum(-1)
            keep = np.argsort(-gscore, axis=-1)[:, : cfg["topk_group"]]
            mask = np.zeros((seq, groups), bool)
            np.put_along_axis(mask, keep, True, axis=-1)
            c = np.where(np.repeat(mask, e_count // groups, axis=-1), c, -np.inf)
            idx = np.sort(np.argsort(-c, axis=-1)[:, : cfg["num_experts_per_tok"]], axis=-1)
            wt = np.take_along_axis(s, idx, axis=-1)
            if cfg["norm_topk_prob"]:
                wt = wt / (wt.sum(-1, keepdims=True) + 1e-20)
            wt = wt * cfg["routed_scaling_factor"]
            y = mlp(x, p + ".mlp.shared_experts")
            for t in range(seq):
                for k in range(idx.shape[1]):
                    y[t] += wt[t, k] * mlp(x[t:t + 1], f"{p}.mlp.experts.{idx[t, k]}")[0]
            h = h + y
            routing.setdefault(f"router.layer.{layer}.experts", []).append(idx)
        all_logits.append(rms(h, w["model.norm.weight"]) @ w["lm_head.weight"].T)
    return np.stack(all_logits), {k: np.concatenate(v) for k, v in routing.items()}


def independent_check(name: str, path: Path, result: dict[str, np.ndarray]) -> float:
    logits, routing = numpy_forward(path, result["input_ids"])
    for key, idx in routing.items():
        if not np.array_equal(idx, result[key]):
            raise SystemExit(f"{name}: numpy reference selects other experts than transformers in {key}")
    rel = float(np.abs(logits - result["logits"]).max() / np.abs(result["logits"]).max())
    if rel > 1e-5:
        raise SystemExit(f"{name}: numpy float64 reference differs from transformers by {rel:.3g} x max|logit|")
    return rel


def dequantized_checkpoint(fp8_dir: Path, out_dir: Path) -> Path:
    """F32 copy of the FP8 sample: every F8_E4M3 weight becomes float32(q) * weight_scale_inv (block-wise, edge
    blocks cropped); scales are dropped; everything else is widened to F32 (the bias is already F32)."""
    index = json.loads((fp8_dir / "model.safetensors.index.json").read_text())
    tensors: dict[str, torch.Tensor] = {}
    for fname in sorted(set(index["weight_map"].values())):
        with safe_open(str(fp8_dir / fname), framework="pt") as f:
            for name in f.keys():
                tensors[name] = f.get_tensor(name)
    out: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name.endswith(".weight_scale_inv"):
            continue
        if t.dtype == torch.float8_e4m3fn:
            scale = tensors[name + "_scale_inv"]
            assert scale.dtype == torch.float32
            rows, cols = t.shape
            full = scale.repeat_interleave(128, 0).repeat_interleave(128, 1)[:rows, :cols]
            out[name] = t.to(torch.float32) * full
        else:
            out[name] = t.to(torch.float32)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous().numpy() for k, v in out.items()}, str(out_dir / "model.safetensors"),
              metadata={"format": "pt"})
    cfg = json.loads((fp8_dir / "config.json").read_text())
    cfg.pop("quantization_config")
    cfg["torch_dtype"] = "float32"
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2))
    return out_dir


def make_golden(name: str, path: Path, source: str) -> None:
    model = load_model(path)
    ids = torch.tensor(TOKENS[name], dtype=torch.long)
    assert int(ids.max()) < model.config.vocab_size
    result = run(model, ids)
    group_gap, expert_gap = check_margins(model, result)
    if min(group_gap, expert_gap) < MIN_MARGIN:
        raise SystemExit(f"{name}: routing margin {min(group_gap, expert_gap):.3g} < {MIN_MARGIN}; change tokens")
    rel = independent_check(name, path, result)
    logits = result["logits"]
    meta = {
        "source": source,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": "float32",
        "attn_implementation": "eager",
        "experts_implementation": "eager",
        "rope_interleave": str(model.config.rope_interleave),
        "rope_parameters": json.dumps(model.config.rope_parameters, sort_keys=True),
        "softmax_scale": repr(model.model.layers[0].self_attn.scaling),
        "rope_attention_scaling": repr(model.model.rotary_emb.attention_scaling),
        "min_group_margin": repr(group_gap),
        "min_expert_margin": repr(expert_gap),
        "max_abs_logit": repr(float(np.abs(logits).max())),
        "numpy_float64_max_abs_diff_over_max_abs_logit": repr(rel),
        "generator": "scripts/golden-logits.py",
    }
    out = GOLDEN / f"{name}.golden.safetensors"
    # One metadata key holding sorted JSON: the writer emits several keys in hash-map order, which would make
    # the file bytes differ from run to run.
    save_file(result, str(out), metadata={"golden": json.dumps(meta, sort_keys=True)})
    print(f"{out.relative_to(REPO)}: logits {list(logits.shape)}, max |logit| {np.abs(logits).max():.4f}, "
          f"margins group {group_gap:.3g} expert {expert_gap:.3g}, numpy f64 check {rel:.2g}, "
          f"{out.stat().st_size / 1e3:.0f} kB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()  # the MTP layer's keys are reported as unexpected; that is fine
    transformers.utils.logging.disable_progress_bar()
    make_golden("tiny-deepseek-v3", REPO / "samples" / "tiny-deepseek-v3", "samples/tiny-deepseek-v3")
    with tempfile.TemporaryDirectory() as tmp:
        deq = dequantized_checkpoint(REPO / "samples" / "tiny-deepseek-v3-fp8", Path(tmp) / "deq")
        make_golden("tiny-deepseek-v3-fp8-dequant", deq, "samples/tiny-deepseek-v3-fp8 dequantized to F32")
    for variant in ("tiny-q-proj", "tiny-no-yarn"):
        make_golden(variant, GOLDEN / variant, f"Tests/ReferenceModelTests/Golden/{variant}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
