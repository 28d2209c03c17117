"""llama.cpp's own convert_hf_to_gguf.py (the vendored llama.cpp's), run on a bundled sample with one change: the
vocabulary step writes `tokenizer.ggml.model = none` instead of converting a tokenizer (the samples have none, or a
tiny one whose pre-tokenizer llama.cpp's hash table does not know). Everything else — hyperparameters, tensor
names, order, shapes, dequantization of FP8 sources and the converter's arithmetic on the weights — is the
converter's own code, so its output is the reference Smelt's `--to gguf-f32` is compared with.

A sample with a tiktoken vocabulary (Kimi's `tiktoken.model`, no tokenizer.json) keeps the converter's own
vocabulary step (`DeepseekV2Model.set_vocab`'s kimi-k2 branch and gguf-py's SpecialVocab): only what it loads with
`AutoTokenizer.from_pretrained(trust_remote_code=True)` — Moonshot's TikTokenTokenizer, whose code the sample does
not ship — is stood in for by the two attributes the converter reads, built as that class builds them
(`load_tiktoken_bpe`'s base64 lines; special tokens `added_tokens_decoder` content or `<|reserved_token_i|>` for
the 258 ids after the base vocabulary), and its pre-tokenizer hash check (the tiny vocabulary is not in llama.cpp's
table) answers `kimi-k2`.

    $PY scripts/llama-convert-reference.py LLAMA_CPP_SOURCE SAMPLE_DIR OUT.gguf [OUTTYPE]   # f32 (default), bf16, q8_0, ...

Run in the venv of scripts/requirements-samples.txt + requirements-golden.txt (torch, transformers), with the
vendored gguf-py on the path (done here).

DeepseekV4Model reads DeepSeek's release keys `compress_ratios` (one per layer, then a 0 per MTP module) and
`num_hash_layers` from config.json; a sample in transformers' schema (`layer_types` + `compress_rates`,
`mlp_layer_types`) gets them added, derived as transformers' DeepseekV4Config maps the two schemas, in a temporary
copy whose tensor files are links to the sample's.
"""
import atexit
import json
import os
import runpy
import shutil
import sys
import tempfile

source, sample, out = sys.argv[1:4]
outtype = sys.argv[4] if len(sys.argv) > 4 else "f32"
sys.path[:0] = [source, os.path.join(source, "gguf-py")]


def with_release_keys(sample):
    """`sample`, or a linked copy whose config.json also has DeepSeek-V4's release-schema keys."""
    config = json.load(open(os.path.join(sample, "config.json")))
    if config.get("model_type") != "deepseek_v4" or "compress_ratios" in config:
        return sample
    ratio = {"sliding_attention": 0, **config["compress_rates"]}
    config["compress_ratios"] = [ratio[kind] for kind in config["layer_types"]] + [0] * config.get("num_nextn_predict_layers", 0)
    kinds = config["mlp_layer_types"]
    config["num_hash_layers"] = next((i for i, kind in enumerate(kinds) if kind != "hash_moe"), len(kinds))
    copy = tempfile.mkdtemp(prefix="smelt-convert-reference-")
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    for name in os.listdir(sample):
        if name != "config.json":
            os.symlink(os.path.abspath(os.path.join(sample, name)), os.path.join(copy, name))
    json.dump(config, open(os.path.join(copy, "config.json"), "w"), indent=2)
    return copy


sample = with_release_keys(sample)

import conversion  # noqa: E402  (after the path change)


def no_vocabulary(self):
    self.gguf_writer.add_tokenizer_model("none")


class KimiTikToken:
    """The attributes of Moonshot's TikTokenTokenizer that DeepseekV2Model.set_vocab reads."""

    def __init__(self, directory):
        import base64
        lines = open(os.path.join(directory, "tiktoken.model"), "rb").read().splitlines()
        ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in lines if line)}
        decoder = json.load(open(os.path.join(directory, "tokenizer_config.json"))).get("added_tokens_decoder", {})
        added = {int(i): entry["content"] for i, entry in decoder.items()}
        base = len(ranks)
        self.model = type("Encoding", (), {"_mergeable_ranks": ranks})()
        self.special_tokens = {added.get(i, f"<|reserved_token_{i}|>"): i for i in range(base, base + 256 + 2)}


tiktoken_sample = os.path.exists(os.path.join(sample, "tiktoken.model")) and not os.path.exists(os.path.join(sample, "tokenizer.json"))
if tiktoken_sample:
    import transformers
    transformers.AutoTokenizer.from_pretrained = lambda directory, **_: KimiTikToken(directory)

find_class = conversion.get_model_class


def get_model_class(name, mmproj=False):
    cls = find_class(name, mmproj=mmproj)
    if not mmproj:
        if tiktoken_sample:
            cls.get_vocab_base_pre = lambda self, tokenizer: "kimi-k2"
        else:
            cls.set_vocab = no_vocabulary
    return cls


conversion.get_model_class = get_model_class
sys.argv = ["convert_hf_to_gguf.py", sample, "--outtype", outtype, "--outfile", out]
runpy.run_path(os.path.join(source, "convert_hf_to_gguf.py"), run_name="__main__")
