# Shared helpers for scripts/bench-*: sourced, not run.

# Builds the release binary (incremental).
bench_build_release() {
  echo "== swift build -c release --product smelt" >&2
  swift build -c release --product smelt 2>&1 | grep -E 'error|warning: .*unreachable|Compiling|Build' | tail -3 >&2
}

# A fresh temp dir on the disk of ${BENCH_TMPDIR:-${TMPDIR:-/tmp}}; prints its path.
bench_tempdir() {
  mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/smelt-bench-$1.XXXXXX"
}

# bench_time OUTFILE CMD...: runs CMD (stdout to OUTFILE), sets BENCH_WALL (s), BENCH_CPU (user+sys s)
# and BENCH_RSS_KB (peak resident set, from GNU time; 0 when /usr/bin/time is missing). Fails if CMD does.
bench_time() {
  local out="$1"
  shift
  local stats
  stats="$(mktemp)"
  local start end
  start=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%U %S %M' -o "$stats" "$@" >"$out"
  else
    "$@" >"$out"
    echo "0 0 0" >"$stats"
  fi
  end=$(date +%s.%N)
  BENCH_WALL=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
  read -r user sys rss < <(tail -1 "$stats")
  BENCH_CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
  BENCH_RSS_KB="$rss"
  rm -f "$stats"
}

# bench_median X...: the median of the numbers.
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_max X...: the largest number.
bench_max() {
  printf '%s\n' "$@" | sort -g | tail -1
}

# bench_swift_tool OUT MAIN.swift MODULE...: compiles the listed library targets (in dependency order,
# each from Sources/MODULE) as static libraries with the release flags (-O, WMO, Haswell) into OUT, then
# MAIN.swift against them into OUT/<main name without -main.swift>. Prints the executable's path. For the
# benchmark helpers that time library code directly (they are not part of the package).
bench_swift_tool() {
  local out="$1" main="$2"
  shift 2
  mkdir -p "$out"
  local flags=(-O -wmo -parse-as-library -target-cpu haswell -I "$out")
  local libs=()
  for module in "$@"; do
    swiftc "${flags[@]}" -module-name "$module" -emit-module -emit-module-path "$out/$module.swiftmodule" \
      -emit-library -static -o "$out/lib$module.a" $(find "Sources/$module" -name '*.swift') >&2
    libs=("-l$module" "${libs[@]}")
  done
  local exe="$out/$(basename "$main" -main.swift)"
  swiftc -O -target-cpu haswell -I "$out" -L "$out" "${libs[@]}" -lm -o "$exe" "$main" >&2
  echo "$exe"
}
