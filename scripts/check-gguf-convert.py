"""Checks of the GGUF files `smelt convert --to gguf-*` writes, against llama.cpp itself (called by
scripts/check-gguf with the smelt binary, the llama.cpp build and a work directory).

For each bundled DeepSeek sample (BF16 and FP8 block):
  (a) byte identity with llama.cpp's quantizer: Smelt writes the sample as a BF16 GGUF (FP8 sample: F32, its
      exact dequantization) and, directly from the safetensors, every preset; llama-quantize turns Smelt's
      BF16/F32 GGUF into the same preset; tensor names, types, shapes and data bytes, and every metadata
      value, must be equal; and llama.cpp's own convert_hf_to_gguf.py (`against_converter`) writes the same
      tensors, types and bytes as Smelt's F32, BF16 (BF16 sample) and Q8_0 files without the MTP layer;
  (b) gguf-py reads every key and tensor of every file Smelt wrote and dequantizes every tensor; the values
      must be finite;
  (c) llama.cpp (through llama-cpp-python on the same libllama) loads every file Smelt wrote and evaluates a
      fixed token batch; for the F32 file its logits must equal `smelt forward` of that file to <= 1e-3
      relative (max |diff| / max |logit|); per preset the KL divergence of llama.cpp's next-token
      distribution from the F32 file's is printed.
Then the other families' samples (Kimi K2.5, gpt-oss, Qwen3-MoE, GLM-4.5, MiniMax-M2, DeepSeek-V3.2, Qwen3.5-MoE,
DeepSeek-V4) in
their own sections below; for most of them the F32 file is also compared with llama.cpp's own convert_hf_to_gguf.py
(`against_converter`), and Qwen3.5-MoE's and DeepSeek-V4's logits with transformers' (Smelt has no forward pass of
them).
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import gguf
import llama_cpp
import tiktoken
import tiktoken.load

smelt, quantize, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
# The venv with torch and transformers (llama.cpp's converter, transformers' forward pass) and llama.cpp's source.
reference_python, llama_source = sys.argv[4], sys.argv[5]
repo = Path(__file__).resolve().parent.parent
PRESETS = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m",
           "q5_k_s", "q5_k_m", "q6_k", "iq4_nl", "mxfp4_moe"]
TOKENS = [0, 17, 42, 99, 256, 311, 7, 480, 5, 63, 128, 200]
failures = []


def run(*args):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout


def read(path):
    reader = gguf.GGUFReader(path)
    fields = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        fields[name] = field.contents()
    tensors = {t.name: t for t in reader.tensors}
    return reader, fields, tensors


def tensor_differences(ours, theirs, who, other_type=None, other_bytes=None):
    """What differs per tensor both files hold (`ours`, `theirs`: name -> gguf-py tensor): a type or shape, or the
    data bytes. `other_type(name, a, b)` / `other_bytes(name, a, b)` may accept such a tensor (return None) or
    explain it (return the message); by default each is a difference."""
    bad = []
    for name in theirs:
        if name not in ours:
            continue
        a, b = ours[name], theirs[name]
        if a.tensor_type != b.tensor_type or list(a.shape) != list(b.shape):
            if other_type is not None and list(a.shape) == list(b.shape):
                message = other_type(name, a, b)
            else:
                message = f"{name}: {a.tensor_type.name}{list(a.shape)} vs {who} {b.tensor_type.name}{list(b.shape)}"
        elif a.data.tobytes() != b.data.tobytes():
            message = other_bytes(name, a, b) if other_bytes is not None else f"{name} ({a.tensor_type.name}): data bytes differ"
        else:
            continue
        if message:
            bad.append(message)
    return bad


def compare(ours_path, ref_path, label):
    _, of, ot = read(ours_path)
    _, rf, rt = read(ref_path)
    bad = []
    # Smelt writes convert_hf_to_gguf.py's order; llama-quantize rewrites in its own processing order
    # (non-layer tensors, then by layer, each by name): the same set of tensors, in that order.
    if set(ot) != set(rt):
        bad.append(f"tensor names differ: {sorted(set(ot) ^ set(rt))[:4]}")
    elif sorted(ot, key=lambda n: (int(n.split(".")[1]) if n.startswith("blk.") else -1, n.encode())) != list(rt):
        bad.append("llama-quantize's order is not the processing order of Smelt's tensors")
    bad += tensor_differences(ot, rt, "llama-quantize")
    for key in sorted(set(of) | set(rf)):
        if of.get(key) != rf.get(key):
            show = lambda v: (str(v)[:60] + "...") if len(str(v)) > 60 else str(v)
            bad.append(f"metadata {key}: {show(of.get(key))} vs llama-quantize {show(rf.get(key))}")
    if bad:
        failures.append(f"{label}: " + "; ".join(bad[:6]) + (f" (+{len(bad) - 6} more)" if len(bad) > 6 else ""))
        print(f"   {label}: DIFFERS ({len(bad)} differences)")
    else:
        print(f"   {label}: identical to llama-quantize ({len(rt)} tensors, {len(rf)} keys)")


def against_llama_quantize(sample, src, base, presets):
    """For each preset: Smelt's direct `--to gguf-<preset>` of the safetensors `src` against llama-quantize of
    Smelt's unquantized GGUF `base` (`compare`). Returns the names of the files Smelt wrote."""
    written = []
    for preset in presets:
        ours = work / f"{sample}-{preset}.gguf"
        ref = work / f"{sample}-{preset}.llama-quantize.gguf"
        run(smelt, "convert", src, ours, "--to", f"gguf-{preset}", "--quiet")
        run(quantize, base, ref, preset.upper(), "2")
        compare(ours, ref, f"{sample} {preset}")
        written.append(ours.name)
    return written


def same_values(ours, theirs):
    """Whether Smelt's F32 tensor `ours` holds the values the converter wrote as `theirs` in its own type: equal
    after exact decoding (BF16, MXFP4 and integer tables are lossless), or, for a Q8_0 tensor, encoding to the
    same bytes with gguf-py's quantizer (so the converter's F32 before quantization equals Smelt's)."""
    values = np.asarray(ours.data, dtype=np.float32)
    if theirs.tensor_type == gguf.GGMLQuantizationType.Q8_0:
        rows = values.reshape(-1, int(ours.shape[0]))
        return gguf.quants.quantize(rows, theirs.tensor_type).tobytes() == theirs.data.tobytes()
    decoded = gguf.quants.dequantize(theirs.data, theirs.tensor_type).astype(np.float32)
    return np.array_equal(values.reshape(-1), decoded.reshape(-1))


def against_converter(sample, ours_path, converter_types=False, outtype="f32"):
    """Smelt's F32 GGUF of `sample` against llama.cpp's own convert_hf_to_gguf.py run on the same safetensors
    (scripts/llama-convert-reference.py: the converter's code with its vocabulary step writing
    tokenizer.ggml.model = none): the same tensors in the same order with the same types, shapes and data bytes,
    and the same `general.architecture` and `{arch}.*` keys in the same order with the same values. Smelt also
    writes `{arch}.vocab_size` when a checkpoint has no tokenizer (llama.cpp sizes the vocabulary by it then); the
    converter's cosmetic `general.name` / `type` / `size_label` are not compared. A sample whose vocabulary the
    converter converts itself (Kimi's tiktoken) also has every `tokenizer.*` key compared. `converter_types`: the converter writes its own types whatever --outtype (DeepSeek-V4); each of its tensors must
    then hold Smelt's F32 values (`same_values`) instead of the same bytes. `outtype`: the converter's --outtype
    (Smelt's file is then `--to gguf-<outtype>`)."""
    ref_path = work / (f"{sample}.converter.gguf" if outtype == "f32" else f"{sample}.converter-{outtype}.gguf")
    run(reference_python, repo / "scripts/llama-convert-reference.py", llama_source, repo / "samples" / sample, ref_path, outtype)
    reader, of, ot = read(ours_path)
    _, rf, rt = read(ref_path)
    arch = of["general.architecture"]
    own_vocabulary = rf.get("tokenizer.ggml.model") != "none"
    keys = lambda fields: [k for k in fields if k == "general.architecture" or k.startswith(arch + ".")
                           or (own_vocabulary and k.startswith("tokenizer."))]
    ours_keys, ref_keys = keys(of), keys(rf)
    if f"{arch}.vocab_size" not in ref_keys and of.get("tokenizer.ggml.model") == "none":
        ours_keys.remove(f"{arch}.vocab_size")
    bad = []
    if ours_keys != ref_keys:
        bad.append(f"keys {[k for k in ours_keys if k not in ref_keys]} / converter's {[k for k in ref_keys if k not in ours_keys]}"
                   if set(ours_keys) != set(ref_keys) else "key order differs")
    bad += [f"{k}: {of[k]} vs converter {rf[k]}" for k in ours_keys if k in rf and of[k] != rf[k]]
    if list(ot) != list(rt):
        bad.append(f"tensor names or order differ: {[n for n in ot if n not in rt][:3]} / {[n for n in rt if n not in ot][:3]}"
                   if set(ot) != set(rt) else "tensor order differs")
    def converter_values(name, a, b):
        if converter_types and same_values(a, b):
            return None
        return f"{name}: Smelt's F32 values are not the converter's {b.tensor_type.name} ones"

    def largest_difference(name, a, b):
        exact = np.asarray(b.data, dtype=np.float64)
        return f"{name} ({a.tensor_type.name}): data bytes differ (max |diff| {np.abs(np.asarray(a.data, dtype=np.float64) - exact).max():.3g})"

    bad += tensor_differences(ot, rt, "converter", other_type=converter_values if converter_types else None,
                              other_bytes=largest_difference)
    if bad:
        failures.append(f"{sample} {outtype} vs llama.cpp's converter: " + "; ".join(bad[:6]))
        print(f"   {sample} {outtype.upper()}: DIFFERS from llama.cpp's converter ({len(bad)} differences)")
    else:
        extra = "; its Q8_0 / BF16 / MXFP4 / I32 tensors hold Smelt's F32 values" if converter_types else ""
        print(f"   {sample} {outtype.upper()}: identical to llama.cpp's convert_hf_to_gguf.py ({len(rt)} tensors, "
              f"{len(ref_keys)} {'architecture and tokenizer' if own_vocabulary else 'architecture'} keys{extra})")


def check_gguf_py(path, label):
    reader, fields, tensors = read(path)
    integers = {gguf.GGMLQuantizationType.I8, gguf.GGMLQuantizationType.I16, gguf.GGMLQuantizationType.I32,
                gguf.GGMLQuantizationType.I64}
    for name, t in tensors.items():
        # An integer table (deepseek4's token → expert map) is read as it is; gguf-py dequantizes the rest.
        values = np.asarray(t.data) if t.tensor_type in integers else gguf.quants.dequantize(t.data, t.tensor_type)
        if not np.all(np.isfinite(values)):
            failures.append(f"{label}: gguf-py dequantizes {name} to non-finite values")
    return len(fields), len(tensors)


def llama_logits(path, tokens=TOKENS):
    context = max(64, 1 << (len(tokens) - 1).bit_length())
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=context, n_batch=64, n_threads=2, logits_all=True, verbose=False)
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    llm.close()
    return logits


def read_safetensors_f32(path, name):
    blob = Path(path).read_bytes()
    length = int.from_bytes(blob[:8], "little")
    entry = json.loads(blob[8:8 + length])[name]
    assert entry["dtype"] == "F32", entry
    start, end = entry["data_offsets"]
    return np.frombuffer(blob[8 + length + start:8 + length + end], dtype="<f4").reshape(entry["shape"])


def llama_agrees_with_forward(f32, forward_input, label, tokens=TOKENS):
    """llama.cpp's logits of the F32 GGUF `f32` on `tokens`, checked against `smelt forward` of
    `forward_input` (that GGUF, or the safetensors it was made from) to <= 1e-3 relative."""
    reference = llama_logits(f32, tokens)
    run(smelt, "forward", forward_input, "--tokens", ",".join(map(str, tokens)), "--output", work / "forward.safetensors",
        "--quiet")
    ours = read_safetensors_f32(work / "forward.safetensors", "logits")[0].astype(np.float64)
    relative = np.abs(ours - reference).max() / np.abs(reference).max()
    print(f"   llama.cpp on {f32.name} vs smelt forward of {Path(forward_input).name}: max |diff| / max |logit| = {relative:.2e}")
    if not relative <= 1e-3:
        failures.append(f"{label}: llama.cpp's logits of the F32 GGUF differ from smelt forward by {relative:.2e} relative")
    return reference


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


for sample, base in [("tiny-deepseek-v3", "bf16"), ("tiny-deepseek-v3-fp8", "f32")]:
    src = repo / "samples" / sample
    print(f"== {sample}")
    run(smelt, "convert", src, work / f"{sample}-{base}.gguf", "--to", f"gguf-{base}", "--quiet")
    run(smelt, "convert", src, work / f"{sample}-f32.gguf", "--to", "gguf-f32", "--quiet", "--force")
    written = [f"{sample}-{base}.gguf", f"{sample}-f32.gguf"]
    written += against_llama_quantize(sample, src, work / f"{sample}-{base}.gguf", PRESETS)
    # llama.cpp's converter itself, for the outtypes it writes (DeepseekV2Model always drops the MTP layer:
    # Smelt's --drop-mtp file; its vocabulary step is replaced, so only the architecture keys are compared).
    for outtype in ("f32", "bf16", "q8_0") if base == "bf16" else ("f32", "q8_0"):
        dropped = work / f"{sample}-{outtype}-no-mtp.gguf"
        run(smelt, "convert", src, dropped, "--to", f"gguf-{outtype}", "--drop-mtp", "--quiet")
        against_converter(sample, dropped, outtype=outtype)
    for name in written:
        check_gguf_py(work / name, name)
    print(f"   gguf-py read and dequantized {len(written)} files")

    # llama.cpp runs Smelt's files; the F32 file agrees with Smelt's own forward pass of it.
    f32 = work / f"{sample}-f32.gguf"
    reference = llama_agrees_with_forward(f32, f32, sample)
    p = log_softmax(reference)
    for name in written[:1] + [f"{sample}-{q}.gguf" for q in PRESETS]:
        logits = llama_logits(work / name)
        if not np.all(np.isfinite(logits)):
            failures.append(f"{name}: llama.cpp produced non-finite logits")
            continue
        q = log_softmax(logits)
        kld = float((np.exp(p) * (p - q)).sum(axis=-1).mean())
        top1 = float((reference.argmax(-1) == logits.argmax(-1)).mean())
        print(f"   llama.cpp runs {name}: KLD vs F32 {kld:.5f}, top-1 {top1 * 100:.0f}%")


def llama_agrees_with_transformers(f32, src, label, tokens):
    """llama.cpp's logits of the F32 GGUF `f32` against transformers' own model class run on the safetensors `src`
    (scripts/transformers-logits.py, float32 on the CPU) to <= 1e-3 relative: for an architecture Smelt has no
    forward pass of."""
    reference = llama_logits(f32, tokens)
    out = work / f"{src.name}.transformers-logits.npy"
    run(reference_python, repo / "scripts/transformers-logits.py", src, ",".join(map(str, tokens)), out)
    theirs = np.load(out)
    relative = np.abs(theirs - reference).max() / np.abs(theirs).max()
    print(f"   llama.cpp on {f32.name} vs transformers on {src.name}: max |diff| / max |logit| = {relative:.2e}")
    if not relative <= 1e-3:
        failures.append(f"{label}: llama.cpp's logits of the F32 GGUF differ from transformers' by {relative:.2e} relative")
    return reference


def llama_runs_pair(f32, quantized, src, sample, vocab_size, token_count=len(TOKENS), reference="smelt"):
    """gguf-py reads both files; llama.cpp runs both on the first `token_count` tokens, the F32 file's logits equal
    `smelt forward` of `src` (the safetensors, or a GGUF Smelt reads back; `reference="transformers"`: transformers'
    forward of the safetensors; None: not compared), and the quantized file's KLD and top-1 against it are printed."""
    for path in (f32, quantized):
        check_gguf_py(path, path.name)
    tokens = [t % vocab_size for t in TOKENS[:token_count]]
    if reference == "smelt":
        reference = llama_agrees_with_forward(f32, src, sample, tokens)
    elif reference == "transformers":
        reference = llama_agrees_with_transformers(f32, src, sample, tokens)
    else:
        reference = llama_logits(f32, tokens)
    logits = llama_logits(quantized, tokens)
    p, q = log_softmax(reference), log_softmax(logits)
    print(f"   llama.cpp runs {quantized.name}: KLD vs F32 {float((np.exp(p) * (p - q)).sum(axis=-1).mean()):.5f}, "
          f"top-1 {float((reference.argmax(-1) == logits.argmax(-1)).mean()) * 100:.0f}%")


def read_safetensors(path):
    blob = Path(path).read_bytes()
    length = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + length])
    header.pop("__metadata__", None)
    dtypes = {"I32": "<i4", "I64": "<i8", "F32": "<f4", "U8": "u1"}

    def tensor(name):
        entry = header[name]
        start, end = entry["data_offsets"]
        raw = blob[8 + length + start:8 + length + end]
        if entry["dtype"] == "BF16":
            return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(entry["shape"])
        return np.frombuffer(raw, dtype=dtypes[entry["dtype"]]).reshape(entry["shape"])
    return header, tensor


# Kimi K2.5 (a multimodal wrapper; native int4 g32 experts): its language model as deepseek2. With a Q4_0
# preset the experts' codes and BF16 scales move into Q4_0 unchanged (Smelt reports the repack): gguf-py's
# dequantization of every expert stack must equal (code - 8) * scale computed here from the safetensors, bit
# for bit. llama.cpp loads both files; the F32 file's logits equal `smelt forward` of that F32 file.
sample = "tiny-kimi-k2.5"
src = repo / "samples" / sample
print(f"== {sample}")
f32, q4 = work / f"{sample}-f32.gguf", work / f"{sample}-q4_0.gguf"
run(smelt, "convert", src, f32, "--to", "gguf-f32", "--quiet")
against_converter(sample, f32)
# Kimi's vocabulary is tiktoken's (tiktoken.model + tokenizer_config.json, no tokenizer.json); llama.cpp's kimi-k2
# pre-tokenizer and the GGUF's merges must split text as tiktoken itself does with Kimi's pattern and special tokens.
KIMI_PATTERN = "|".join([
    r"[\p{Han}]+",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}", r" ?[^\s\p{L}\p{N}]+[\r\n]*", r"\s*[\r\n]+", r"\s+(?!\S)", r"\s+"])
ranks = tiktoken.load.load_tiktoken_bpe(str(src / "tiktoken.model"))
decoder = json.loads((src / "tokenizer_config.json").read_text())["added_tokens_decoder"]
specials = {entry["content"]: int(i) for i, entry in decoder.items()}
encoding = tiktoken.Encoding(name="tiny-kimi", pat_str=KIMI_PATTERN, mergeable_ranks=ranks, special_tokens=specials)
texts = ["The quick brown fox jumps over the lazy dog.", "def forward(x):\n    return x + 12345 tokens!",
         "<|im_user|>user<|im_middle|>Smelt the experts, then shard them.<|im_end|>"]
vocabulary = llama_cpp.Llama(model_path=str(f32), vocab_only=True, verbose=False)
mismatched = [t for t in texts if vocabulary.tokenize(t.encode(), add_bos=False, special=True)
              != encoding.encode(t, allowed_special="all")]
vocabulary.close()
if mismatched:
    failures.append(f"{sample}: llama.cpp tokenizes {mismatched[0]!r} differently from tiktoken with Kimi's pattern")
else:
    print(f"   llama.cpp's tokenization with {f32.name}'s vocabulary equals tiktoken's on {len(texts)} texts "
          f"({sum(len(encoding.encode(t, allowed_special='all')) for t in texts)} tokens, special tokens included)")
report = json.loads(run(smelt, "convert", src, q4, "--to", "gguf-q4_0", "--json", "--quiet"))
repacked = {t["name"]: t for t in report["repacked"]}
header, tensor = read_safetensors(src / "model.safetensors")
config = json.loads((src / "config.json").read_text())["text_config"]
_, _, ours = read(q4)
stacks = [n for n in ours if "_exps." in n]
if not stacks or set(stacks) != set(repacked) or any(t["inexact_blocks"] for t in repacked.values()):
    failures.append(f"{sample}: repack report {sorted(repacked)} (inexact blocks: "
                    f"{[t['inexact_blocks'] for t in repacked.values()]}) is not every expert stack {sorted(stacks)}")
for name in stacks:
    layer = int(name.split(".")[1])
    projection = {"ffn_gate_exps": "gate_proj", "ffn_up_exps": "up_proj", "ffn_down_exps": "down_proj"}[name.split(".")[2]]
    expected = []
    for e in range(config["n_routed_experts"]):
        stem = f"language_model.model.layers.{layer}.mlp.experts.{e}.{projection}"
        words = tensor(stem + ".weight_packed").astype(np.uint32)
        codes = np.stack([(words >> (4 * k)) & 0xF for k in range(8)], axis=-1).reshape(words.shape[0], -1)
        scales = np.repeat(tensor(stem + ".weight_scale"), 32, axis=1)
        expected.append((codes.astype(np.float32) - 8) * scales)
    got = gguf.quants.dequantize(ours[name].data, ours[name].tensor_type)
    if ours[name].tensor_type != gguf.GGMLQuantizationType.Q4_0 or got.tobytes() != np.stack(expected).tobytes():
        failures.append(f"{sample}: {name} ({ours[name].tensor_type.name}) is not (code - 8) * scale of the int4 experts bit for bit")
print(f"   {len(stacks)} expert stacks repacked into Q4_0, bit-exact with the int4 codes and scales")
# The F32 file holds the exact int4 products (the converter's), the safetensors decode to compressed-tensors' BF16
# rounding of them: llama.cpp is compared with `smelt forward` of the F32 GGUF itself (deepseek2 reads back).
llama_runs_pair(f32, q4, f32, sample, config["vocab_size"])

# gpt-oss (MXFP4 experts with biases, attention sinks, sliding-window layers): llama.cpp's gpt-oss architecture.
#  (a) every preset but MXFP4_MOE is byte-identical to llama-quantize of Smelt's F32 GGUF (as above); for
#      MXFP4_MOE llama-quantize of the F32 GGUF gives the same tensors, types, shapes and metadata as Smelt's
#      direct MXFP4_MOE file, the same bytes for every requantized tensor, and the same values for the expert
#      stacks (which Smelt repacks: ggml's quantizer, given the exact values, may pick another exponent for a block
#      whose largest code is below 4, so equal values, not always equal bytes);
#  (b) the repack is lossless: gguf-py's dequantization of every ffn_{gate,up,down}_exps equals the release's
#      blocks decoded here (fp4 table x 2^(scale - 127); gate = even rows of gate_up_proj, up = odd rows), and
#      the expert biases equal the release's split the same way;
#  (c) llama.cpp loads and runs both files; the F32 file's logits equal `smelt forward` of the safetensors and of
#      the F32 GGUF read back (its fused experts rebuilt from the stacks), and `smelt validate` of the release
#      against the MXFP4_MOE file passes with the expert stacks lossless.
sample = "tiny-gpt-oss"
src = repo / "samples" / sample
print(f"== {sample}")
f32, mx = work / f"{sample}-f32.gguf", work / f"{sample}-mxfp4_moe.gguf"
run(smelt, "convert", src, f32, "--to", "gguf-f32", "--quiet")
# Every other preset requantizes the experts from their exact values, as llama-quantize does from the F32 file:
# byte identity, as for the DeepSeek samples (llama-quantize's type rules for gpt-oss, fallbacks included).
for name in against_llama_quantize(sample, src, f32, [p for p in PRESETS if p != "mxfp4_moe"]):
    check_gguf_py(work / name, name)
report = json.loads(run(smelt, "convert", src, mx, "--to", "gguf-mxfp4_moe", "--json", "--quiet"))
ref = work / f"{sample}-mxfp4_moe.llama-quantize.gguf"
run(quantize, f32, ref, "MXFP4_MOE", "2")
_, ours_fields, ours = read(mx)
_, ref_fields, theirs = read(ref)
stacks = sorted(n for n in ours if "_exps.weight" in n)
bad = []
if set(ours) != set(theirs):
    bad.append(f"tensor names differ: {sorted(set(ours) ^ set(theirs))[:4]}")
for name in sorted(set(ours) & set(theirs)):
    a, b = ours[name], theirs[name]
    if a.tensor_type != b.tensor_type or list(a.shape) != list(b.shape):
        bad.append(f"{name}: {a.tensor_type.name}{list(a.shape)} vs llama-quantize {b.tensor_type.name}{list(b.shape)}")
    elif name in stacks:
        if not np.array_equal(gguf.quants.dequantize(a.data, a.tensor_type), gguf.quants.dequantize(b.data, b.tensor_type)):
            bad.append(f"{name}: values differ from llama-quantize's")
    elif a.data.tobytes() != b.data.tobytes():
        bad.append(f"{name} ({a.tensor_type.name}): data bytes differ")
for key in sorted(set(ours_fields) | set(ref_fields)):
    if ours_fields.get(key) != ref_fields.get(key):
        bad.append(f"metadata {key}: {ours_fields.get(key)} vs llama-quantize {ref_fields.get(key)}")
same_bytes = sum(ours[n].data.tobytes() == theirs[n].data.tobytes() for n in stacks if n in theirs)
if bad:
    failures.append(f"{sample} mxfp4_moe: " + "; ".join(bad[:6]))
    print(f"   {sample} mxfp4_moe: DIFFERS ({len(bad)} differences)")
else:
    print(f"   {sample} mxfp4_moe: same as llama-quantize of the F32 file ({len(theirs)} tensors; the {len(stacks)} "
          f"expert stacks equal in value, {same_bytes} of them byte-identical)")
repacked = {t["name"] for t in report["repacked"] if t["inexact_blocks"] == 0}
if repacked != set(stacks):
    failures.append(f"{sample}: exact repacks {sorted(repacked)} are not every expert stack {sorted(stacks)}")
header, tensor = read_safetensors(src / "model.safetensors")
config = json.loads((src / "config.json").read_text())
FP4 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)


def release_experts(stem):
    """The release's MXFP4 `stem` ([E, rows, cols]) decoded exactly, as transformers' convert_moe_packed_tensors:
    the low nibble of each byte is the even element."""
    blocks, scales = tensor(stem + "_blocks"), tensor(stem + "_scales")
    codes = np.stack([blocks & 0x0F, blocks >> 4], axis=-1).reshape(*blocks.shape[:-2], -1)
    exponents = np.repeat(scales.astype(np.int32) - 127, 32, axis=-1)
    return np.ldexp(FP4[codes], exponents).astype(np.float32)


for layer in range(config["num_hidden_layers"]):
    stem = f"model.layers.{layer}.mlp.experts."
    gate_up, down = release_experts(stem + "gate_up_proj"), release_experts(stem + "down_proj")
    bias = tensor(stem + "gate_up_proj_bias")
    expected = {"ffn_gate_exps.weight": gate_up[:, 0::2], "ffn_up_exps.weight": gate_up[:, 1::2], "ffn_down_exps.weight": down,
                "ffn_gate_exps.bias": bias[:, 0::2], "ffn_up_exps.bias": bias[:, 1::2],
                "ffn_down_exps.bias": tensor(stem + "down_proj_bias")}
    for leaf, values in expected.items():
        t = ours[f"blk.{layer}.{leaf}"]
        got = gguf.quants.dequantize(t.data, t.tensor_type)
        if got.shape != values.shape or not np.array_equal(got, values):
            failures.append(f"{sample}: blk.{layer}.{leaf} ({t.tensor_type.name}{list(got.shape)}) is not the release's "
                            f"{list(values.shape)} exactly")
print(f"   {len(stacks)} expert stacks repacked into MXFP4 and their biases split: equal to the release's values bit for bit")
llama_runs_pair(f32, mx, src, sample, config["vocab_size"])
llama_agrees_with_forward(f32, f32, sample, [t % config["vocab_size"] for t in TOKENS])
report = json.loads(run(smelt, "validate", src, mx, "--level", "tensor", "--json", "--quiet"))
experts = [t for t in report["tensors"] if t["name"].endswith(("experts.gate_up_proj", "experts.down_proj"))]
if report.get("passed") is not True or len(experts) != 2 * config["num_hidden_layers"] or any(t["max_abs_error"] != 0 for t in experts):
    failures.append(f"{sample}: smelt validate of the release against its MXFP4_MOE GGUF: passed={report.get('passed')}, "
                    f"experts {[(t['name'], t['snr_db']) for t in experts]}")
else:
    print(f"   smelt validate {src.name} {mx.name}: passed, the {len(experts)} fused expert tensors read back lossless")

# Qwen3-MoE (grouped-query attention with QK-norm, softmax router, no shared expert) as llama.cpp's qwen3moe;
# GLM-4.5 (FP8 block release: q/k/v biases, QK-norm, partial rotary, a leading dense layer, sigmoid router
# with its bias, shared expert, the NextN layer as blk.2.nextn.*) as glm4moe; MiniMax-M2 (FP8 release: QK-norm
# over all heads, partial rotary, sigmoid router with its bias, Mixtral-named w1/w3/w2 experts) as minimax-m2;
# DeepSeek-V3.2 (FP8: deepseek2's MLA plus the lightning indexer, index_topk 4) as deepseek32 — on the first 10
# tokens: at position 10 of the batch, layer 1's indexer scores four keys exactly 0 (every head's ReLU is 0) for
# the last three of its 4 slots, and Smelt (the earlier keys) and llama.cpp break that tie differently (torch.topk
# documents no order for ties); every other position agrees:
#  (a) every preset byte-identical to llama-quantize of Smelt's F32 GGUF (as above; the FP8 sample's F32 file is
#      its exact dequantization);
#  (b) gguf-py reads and dequantizes every file;
#  (c) llama.cpp loads and runs the F32 and Q4_K_M files; the F32 file's logits equal `smelt forward` of the
#      safetensors (and, as Smelt reads these GGUFs back, `smelt forward` of the F32 GGUF itself).
def against_llama_cpp(sample):
    """Smelt's F32 GGUF of `sample` against llama.cpp's converter, and every preset against llama-quantize of it;
    gguf-py reads every file. Returns the sample's directory and the F32 GGUF."""
    src = repo / "samples" / sample
    print(f"== {sample}")
    f32 = work / f"{sample}-f32.gguf"
    run(smelt, "convert", src, f32, "--to", "gguf-f32", "--quiet")
    against_converter(sample, f32)
    for name in against_llama_quantize(sample, src, f32, PRESETS):
        check_gguf_py(work / name, name)
    return src, f32


for sample, token_count in [("tiny-qwen3-moe", 12), ("tiny-glm4-moe-fp8", 12), ("tiny-minimax-m2-fp8", 12),
                            ("tiny-deepseek-v3.2-fp8", 10)]:
    src, f32 = against_llama_cpp(sample)
    config = json.loads((src / "config.json").read_text())
    llama_runs_pair(f32, work / f"{sample}-q4_k_m.gguf", src, sample, config["vocab_size"], token_count)
    # These GGUFs read back as checkpoints: `smelt forward` of the F32 GGUF itself equals llama.cpp's.
    llama_agrees_with_forward(f32, f32, sample, [t % config["vocab_size"] for t in TOKENS[:token_count]])

# Qwen3.5-MoE (BF16 release: fused 3-D experts, per-expert MTP experts; FP8 release: per-expert with BF16 scales)
# as llama.cpp's qwen35moe — Gated DeltaNet layers with two key heads for four value heads, so the converter's
# value-head reordering moves rows and columns; gated full attention; shared expert with its gate; the MTP block:
#  (a) the F32 file equal to llama.cpp's own converter's (`against_converter`: its 1 + w norms, -exp(A_log),
#      squeezed conv1d, tiled value heads; the FP8 sample dequantized by each);
#  (b) every preset byte-identical to llama-quantize of Smelt's F32 GGUF; gguf-py reads and dequantizes every file;
#  (c) llama.cpp runs the F32 and Q4_K_M files; the BF16 sample's F32 logits equal transformers' own
#      Qwen3_5MoeForConditionalGeneration (Smelt has no forward pass of Gated DeltaNet).
for sample in ["tiny-qwen3.5-moe", "tiny-qwen3.5-moe-fp8"]:
    src, f32 = against_llama_cpp(sample)
    config = json.loads((src / "config.json").read_text())["text_config"]
    llama_runs_pair(f32, work / f"{sample}-q4_k_m.gguf", src, sample, config["vocab_size"],
                    reference="transformers" if sample == "tiny-qwen3.5-moe" else None)

# DeepSeek-V4 (FP8 trunk with E8M0 scales, FP4 experts, a hash-routed layer, compressors and the indexer,
# hyper-connections) as llama.cpp's deepseek4. Its converter writes one fixed mix whatever --outtype (FP8 weights
# Q8_0, BF16 and F32 sources kept, experts repacked MXFP4, the hash table I32), which is where llama-quantize starts:
#  (a) Smelt's F32 file holds the converter's values in every tensor (`same_values`), same names, order, shapes and
#      architecture keys;
#  (b) per preset, Smelt's types are llama-quantize's over the converter's file, and the bytes equal wherever the
#      converter's tensor is exact (F32, BF16, MXFP4, I32 sources); where the converter rounded an FP8 weight to
#      Q8_0 first, llama-quantize requantizes that rounding and Smelt the exact weight, so those bytes may differ
#      (counted, not failed); gguf-py reads and dequantizes every file;
#  (c) llama.cpp runs the F32 and Q4_K_M files on 160 tokens (past the 128-token compression of the heavily
#      compressed layer); the F32 logits equal transformers' own DeepseekV4ForCausalLM run on Smelt's BF16 conversion
#      (exact: FP8 and FP4 times E8M0 fit BF16) at every position when the indexer selects every compressed block,
#      and the next token agrees at 95 % of the positions with the sample's top-4 selection.
sample = "tiny-deepseek-v4"
src = repo / "samples" / sample
print(f"== {sample}")
f32 = work / f"{sample}-f32.gguf"
run(smelt, "convert", src, f32, "--to", "gguf-f32", "--quiet")
against_converter(sample, f32, converter_types=True)
check_gguf_py(f32, f32.name)
converter = work / f"{sample}.converter.gguf"
exact_types = {gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.BF16, gguf.GGMLQuantizationType.MXFP4,
               gguf.GGMLQuantizationType.I32}
_, _, converter_tensors = read(converter)
requantized = {name for name, t in converter_tensors.items() if t.tensor_type not in exact_types}
for preset in PRESETS:
    ours, ref = work / f"{sample}-{preset}.gguf", work / f"{sample}-{preset}.llama-quantize.gguf"
    run(smelt, "convert", src, ours, "--to", f"gguf-{preset}", "--quiet")
    run(quantize, "--allow-requantize", converter, ref, preset.upper(), "2")
    check_gguf_py(ours, ours.name)
    _, _, ot = read(ours)
    _, _, rt = read(ref)
    bad = [f"tensor names differ: {sorted(set(ot) ^ set(rt))[:4]}"] if set(ot) != set(rt) else []
    differing = [name for name in rt if name in ot and name in requantized and ot[name].data.tobytes() != rt[name].data.tobytes()]
    bad += tensor_differences(ot, rt, "llama-quantize", other_bytes=lambda name, a, b: None if name in requantized else
                              f"{name} ({a.tensor_type.name}): data bytes differ from an exact source")
    differing = len(differing)
    if bad:
        failures.append(f"{sample} {preset}: " + "; ".join(bad[:6]))
        print(f"   {sample} {preset}: DIFFERS from llama-quantize of the converter's file ({len(bad)} differences)")
    else:
        print(f"   {sample} {preset}: types = llama-quantize's over the converter's file ({len(rt)} tensors); bytes equal but "
              f"{differing} of the {len(requantized)} FP8 weights the converter rounded to Q8_0 first")
v4_tokens = [(7 * i + 3) % 256 for i in range(160)]


def v4_logits(directory, label, tokens):
    """llama.cpp's logits of Smelt's F32 GGUF of `directory` and transformers' of Smelt's BF16 conversion of it."""
    gguf_path, bf16 = work / f"{label}-f32.gguf", work / f"{label}-bf16"
    run(smelt, "convert", directory, gguf_path, "--to", "gguf-f32", "--quiet", "--force")
    run(smelt, "convert", directory, bf16, "--to", "bf16", "--quiet", "--force")
    out = work / f"{label}.transformers-logits.npy"
    run(reference_python, repo / "scripts/transformers-logits.py", bf16, ",".join(map(str, tokens)), out)
    return llama_logits(gguf_path, tokens), np.load(out)


# With index_topk raised to 64 (every compressed block selected, in a linked copy of the sample) the two must agree
# at every position, the 128-fold compression included.
selecting_all = work / f"{sample}-topk64"
selecting_all.mkdir()
for name in src.iterdir():
    if name.name != "config.json":
        (selecting_all / name.name).symlink_to(name)
config = json.loads((src / "config.json").read_text())
(selecting_all / "config.json").write_text(json.dumps(dict(config, index_topk=64)))
ours, theirs = v4_logits(selecting_all, f"{sample}-topk64", v4_tokens)
relative = np.abs(ours - theirs).max() / np.abs(theirs).max()
print(f"   llama.cpp vs transformers, index_topk 64, {len(v4_tokens)} tokens: max |diff| / max |logit| = {relative:.2e}")
if not relative <= 1e-3:
    failures.append(f"{sample} (index_topk 64): llama.cpp's logits differ from transformers' by {relative:.2e} relative")
# The sample's own top-4 selection: the two implementations pick differently at some positions (printed); the
# next-token choice must agree at 95 % of them.
ours, theirs = v4_logits(src, sample, v4_tokens)
per_position = np.abs(ours - theirs).max(axis=1) / np.abs(theirs).max()
top1 = float((ours.argmax(-1) == theirs.argmax(-1)).mean())
print(f"   llama.cpp vs transformers, index_topk 4, {len(v4_tokens)} tokens: {int((per_position <= 1e-3).sum())} positions "
      f"within 1e-3 (max {per_position.max():.2e} elsewhere), top-1 agreement {top1 * 100:.1f}%")
if top1 < 0.95:
    failures.append(f"{sample}: llama.cpp's next token differs from transformers' at {(1 - top1) * 100:.1f}% of positions")
p = log_softmax(ours)
logits = llama_logits(work / f"{sample}-q4_k_m.gguf", v4_tokens)
q = log_softmax(logits)
print(f"   llama.cpp runs {sample}-q4_k_m.gguf: KLD vs F32 {float((np.exp(p) * (p - q)).sum(axis=-1).mean()):.5f}, "
      f"top-1 {float((ours.argmax(-1) == logits.argmax(-1)).mean()) * 100:.0f}%")

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print("check-gguf-convert: OK")
