#!/usr/bin/env bash
# Fetch (once) the llama.cpp source that llama-cpp-python 0.3.36 vendors and print its path.
#
#   SRC=$(scripts/lib/llama-cpp-source.sh)     # .../llama_cpp_python-0.3.36/vendor/llama.cpp
#
# The sdist is the reference for everything GGUF in Smelt (ggml-quants.c, gguf.cpp, llama-quant.cpp,
# convert_hf_to_gguf.py). It is cached under ${SMELT_LLAMA_CACHE:-$HOME/.cache/smelt-llama-cpp}; nothing is
# written into the repository. `--no-binary llama-cpp-python` (not `:all:`) keeps pip from building cmake and
# ninja from source just to read the sdist's metadata. Progress goes to stderr, the path to stdout.
set -euo pipefail

VERSION=0.3.36
root="${SMELT_LLAMA_CACHE:-$HOME/.cache/smelt-llama-cpp}"
source_dir="$root/llama_cpp_python-$VERSION/vendor/llama.cpp"

if [ ! -f "$source_dir/ggml/src/ggml-quants.c" ]; then
  mkdir -p "$root"
  tarball="$root/llama_cpp_python-$VERSION.tar.gz"
  if [ ! -f "$tarball" ]; then
    echo "downloading the llama-cpp-python $VERSION sdist (vendored llama.cpp) into $root ..." >&2
    "${PYTHON:-python3}" -m pip download --quiet --disable-pip-version-check --no-deps \
      --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -d "$root" >&2
  fi
  tar -xzf "$tarball" -C "$root"
fi
echo "$source_dir"
