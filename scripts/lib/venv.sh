#!/usr/bin/env bash
# Create (or reuse) a throwaway Python venv with pinned requirements and print its python path.
#
#   PY=$(scripts/lib/venv.sh scripts/requirements-samples.txt [more-requirements.txt ...])
#
# The venv lives at ${SMELT_VENV:-$HOME/.cache/smelt-venv}/<hash of the requirement files>, so different
# requirement sets never fight and a rerun with unchanged requirements costs nothing. Nothing is written into
# the repository. Progress goes to stderr; only the python path goes to stdout.
set -euo pipefail

if [ "$#" -lt 1 ]; then
  echo "usage: $0 REQUIREMENTS.txt [REQUIREMENTS.txt ...]" >&2
  exit 64
fi

PYTHON_BIN="${PYTHON:-python3}"
if ! command -v "$PYTHON_BIN" >/dev/null 2>&1; then
  echo "error: $PYTHON_BIN not found; install Python 3.10+ to run this script" >&2
  exit 1
fi

key=$(cat "$@" | sha256sum | cut -c1-16)
root="${SMELT_VENV:-$HOME/.cache/smelt-venv}"
venv="$root/$key"
stamp="$venv/.smelt-installed"

if [ ! -f "$stamp" ]; then
  echo "setting up python venv in $venv (first run only)..." >&2
  mkdir -p "$root"
  rm -rf "$venv"
  "$PYTHON_BIN" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2 || true
  reqs=()
  for r in "$@"; do reqs+=(-r "$r"); done
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${reqs[@]}" >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
