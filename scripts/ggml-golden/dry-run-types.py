#!/usr/bin/env python3
"""Reads `llama-quantize --dry-run` output on stdin and prints golden lines (see make-golden-llama-quantize).

    dry-run-types.py GEOMETRY PRESET MODE < log
"""
import hashlib
import re
import sys

LINE = re.compile(r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[[^\]]*\], type =\s*(\S+), size =.*?(?:\((\S+)\))?\s*$")


def main():
    geometry, preset, mode = sys.argv[1:4]
    rows = []
    for line in sys.stdin:
        m = LINE.match(line.rstrip("\n"))
        if m:
            rows.append((m.group(1), m.group(3) or m.group(2)))
    if not rows:
        sys.exit(f"no tensor lines in llama-quantize output for {geometry} {preset} {mode}")
    if geometry == "tiny":
        by_type = {}
        for name, kind in rows:
            by_type.setdefault(kind, []).append(name)
        for kind in sorted(by_type):
            print(f"{geometry} {preset} {mode} {kind} {','.join(by_type[kind])}")
    else:
        counts = {}
        for _, kind in rows:
            counts[kind] = counts.get(kind, 0) + 1
        digest = hashlib.sha256("".join(f"{n} {k}\n" for n, k in rows).encode()).hexdigest()
        print(f"{geometry} {preset} {mode} counts {','.join(f'{k}={counts[k]}' for k in sorted(counts))} sha256={digest}")


if __name__ == "__main__":
    main()
