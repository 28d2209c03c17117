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
and __metadata__ with versions, source and the smallest selection margins (see check_margins).
"""

from __future__ import annotations

import argparse
import json
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
        "generator": "scripts/golden-logits.py",
    }
    out = GOLDEN / f"{name}.golden.safetensors"
    save_file(result, str(out), metadata=meta)
    print(f"{out.relative_to(REPO)}: logits {list(logits.shape)}, max |logit| {np.abs(logits).max():.4f}, "
          f"margins group {group_gap:.3g} expert {expert_gap:.3g}, {out.stat().st_size / 1e3:.0f} kB")


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
