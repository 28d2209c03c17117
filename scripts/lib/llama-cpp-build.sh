#!/usr/bin/env bash
# Build (once) the CPU llama.cpp that llama-cpp-python 0.3.36 vendors and print its build directory.
#
#   BUILD=$(scripts/lib/llama-cpp-build.sh)   # $BUILD/bin/llama-quantize, $BUILD/bin/libllama.so, ...
#
# Only what Smelt's checks run: the shared libraries (libllama, libggml*: llama-cpp-python loads them through
# LLAMA_CPP_LIB_PATH, so its own C++ build is skipped), llama-quantize, llama-imatrix and llama-gguf-split.
# Release, CPU only, no curl/openssl, no server/examples/tests. cmake and ninja come from pinned wheels in a
# cached venv; ccache is used when present. The build lives under ${SMELT_LLAMA_CACHE:-~/.cache/smelt-llama-cpp}
# and is reused while the source and these flags are unchanged. Prints the build time the first time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$("$here/llama-cpp-source.sh")"
root="${SMELT_LLAMA_CACHE:-$HOME/.cache/smelt-llama-cpp}"
targets=(llama llama-quantize llama-imatrix llama-gguf-split)
flags=(
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON -DGGML_OPENMP=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF
  -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_LLGUIDANCE=OFF -DLLAMA_BUILD_MTMD=OFF
)
key=$(printf '%s\n' "${flags[@]}" "${targets[@]}" | sha256sum | cut -c1-12)
build="$root/build-0.3.36-$key"
stamp="$build/.smelt-built"
if [ ! -f "$stamp" ]; then
  PY="$("$here/venv.sh" "$here/../requirements-llama-build.txt")"
  bin="$(dirname "$PY")"
  launcher=()
  if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  jobs="${SMELT_BUILD_JOBS:-$(nproc)}"
  echo "building llama.cpp (${targets[*]}) in $build with $jobs jobs (first run only)..." >&2
  start=$(date +%s)
  "$bin/cmake" -S "$src" -B "$build" -G Ninja -DCMAKE_MAKE_PROGRAM="$bin/ninja" "${flags[@]}" "${launcher[@]}" >&2
  "$bin/cmake" --build "$build" --target "${targets[@]}" -j "$jobs" >&2
  echo "llama.cpp build took $(( $(date +%s) - start )) s" >&2
  touch "$stamp"
fi
echo "$build"
