"""llama.cpp's own convert_hf_to_gguf.py (the vendored llama.cpp's), run on a bundled sample with one change: the
vocabulary step writes `tokenizer.ggml.model = none` instead of converting a tokenizer (the samples have none, or a
tiny one whose pre-tokenizer llama.cpp's hash table does not know). Everything else — hyperparameters, tensor
names, order, shapes, dequantization of FP8 sources and the converter's arithmetic on the weights — is the
converter's own code, so its output is the reference Smelt's `--to gguf-f32` is compared with.

    $PY scripts/llama-convert-reference.py LLAMA_CPP_SOURCE SAMPLE_DIR OUT.gguf

Run in the venv of scripts/requirements-samples.txt + requirements-golden.txt (torch, transformers), with the
vendored gguf-py on the path (done here).
"""
import os
import runpy
import sys

source, sample, out = sys.argv[1:4]
sys.path[:0] = [source, os.path.join(source, "gguf-py")]

import conversion  # noqa: E402  (after the path change)


def no_vocabulary(self):
    self.gguf_writer.add_tokenizer_model("none")


find_class = conversion.get_model_class


def get_model_class(name, mmproj=False):
    cls = find_class(name, mmproj=mmproj)
    if not mmproj:
        cls.set_vocab = no_vocabulary
    return cls


conversion.get_model_class = get_model_class
sys.argv = ["convert_hf_to_gguf.py", sample, "--outtype", "f32", "--outfile", out]
runpy.run_path(os.path.join(source, "convert_hf_to_gguf.py"), run_name="__main__")
