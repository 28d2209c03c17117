#!/usr/bin/env python3
"""Writes the FP8 / BF16 / F16 codec golden vectors for Tests/QuantizationTests/Golden/codecs/.

Every expected value comes from ml_dtypes (FP8, BF16) or numpy (F16) `astype`, i.e. the non-saturating,
round-to-nearest-even casts. Smelt's saturating encoder is checked against the same files (the tests map
overflow and infinity results to +-max themselves).

Run in a throwaway venv outside the repo (or under .venv*/, which git ignores):

    python3 -m venv /tmp/golden-venv && /tmp/golden-venv/bin/pip install ml_dtypes numpy
    /tmp/golden-venv/bin/python scripts/make-golden-codecs.py

The output is deterministic for a given ml_dtypes / numpy version (fixed RNG seed). All files are raw
little-endian arrays without headers; see the README.md the script writes next to them.
"""
import sys
from pathlib import Path

import ml_dtypes
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "Tests" / "QuantizationTests" / "Golden" / "codecs"
E4M3 = ml_dtypes.float8_e4m3fn
E5M2 = ml_dtypes.float8_e5m2
BF16 = ml_dtypes.bfloat16
SEED = 20240917
RANDOM_COUNT = 102_400

files = []


def write(name, array, dtype):
    data = np.ascontiguousarray(array).astype(dtype, copy=False)
    le = data.astype(data.dtype.newbyteorder("<"), copy=False)
    (OUT / name).write_bytes(le.tobytes())
    files.append((name, len(data), str(np.dtype(dtype))))


def bits8(values, fmt):
    with np.errstate(all="ignore"):
        return np.asarray(values).astype(fmt).view(np.uint8)


def bits16(values, fmt):
    with np.errstate(all="ignore"):
        return np.asarray(values).astype(fmt).view(np.uint16)


def f32(values):
    return np.asarray(values, dtype=np.float32)


def f32_bits(words):
    return np.asarray(words, dtype=np.uint32).view(np.float32)


def finite_magnitudes(fmt):
    decoded = np.arange(256, dtype=np.uint8).view(fmt).astype(np.float64)
    decoded = decoded[np.isfinite(decoded) & (decoded >= 0)]
    return np.unique(decoded)


def special_inputs():
    values = []
    for fmt in (E4M3, E5M2):
        mags = finite_magnitudes(fmt)
        values.extend(mags.tolist())
        for lo, hi in zip(mags[:-1], mags[1:]):
            mid = np.float32((lo + hi) / 2)  # exact: one more significant bit than the format has
            assert float(mid) == (lo + hi) / 2
            values.extend([mid, np.nextafter(mid, np.float32(-np.inf)), np.nextafter(mid, np.float32(np.inf))])
        top = mags[-1]
        values.extend([np.nextafter(np.float32(top), np.float32(np.inf)), np.nextafter(np.float32(top), np.float32(0))])
    # Just above max: e4m3fn 448..480 (464 is the tie), e5m2 57344..61440 (61440 is the tie).
    values.extend(np.arange(448, 481, 0.5, dtype=np.float32).tolist())
    for t in (np.float32(464), np.float32(480), np.float32(61440), np.float32(57344)):
        values.extend([np.nextafter(t, np.float32(-np.inf)), t, np.nextafter(t, np.float32(np.inf))])
    values.extend(np.arange(57344, 61441, 64, dtype=np.float32).tolist())
    values.extend([1e5, 1e6, 3.0e38])
    # Ties with zero and the smallest subnormals: e4m3 min subnormal 2^-9, e5m2 2^-16.
    for e in range(-30, -5):
        t = np.float32(2.0**e)
        values.extend([t, np.nextafter(t, np.float32(0)), np.nextafter(t, np.float32(np.inf)), t * np.float32(1.5)])
    # F32 subnormals, zero, extremes.
    values.extend(f32_bits([0x00000001, 0x00000002, 0x007FFFFF, 0x00400000, 0x00800000, 0x7F7FFFFF]).tolist())
    values.extend([0.0])
    # BF16 / F16 rounding corner cases: ties on the 16-bit boundary and F16 overflow.
    values.extend(f32_bits([0x3F808000, 0x3F818000, 0x3F808001, 0x3F817FFF, 0x7F7F8000, 0x7F7F7FFF]).tolist())
    values.extend([65504.0, 65519.0, 65520.0, 65536.0, 2.0**-24, 2.0**-25, 2.0**-25 * 1.5, 2.0**-14])
    positive = f32(values)
    negative = -positive
    # Infinities and NaNs with assorted payloads (signalling and quiet, both signs).
    nonfinite = f32_bits([
        0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FA00000, 0x7FFFFFFF,
        0xFFFFFFFF, 0x7FC00001, 0xFFC12345, 0x7F812345, 0x7F80FFFF, 0x7FBFFFFF,
    ])
    return np.concatenate([positive, negative, nonfinite])


def random_inputs(rng):
    half = RANDOM_COUNT // 2
    # Log-uniform magnitudes 2^-20 .. 2^20 with random signs (every binade, subnormal to overflow).
    mags = np.exp2(rng.uniform(-20.0, 20.0, half))
    signs = np.where(rng.integers(0, 2, half) == 1, -1.0, 1.0)
    logu = (mags * signs).astype(np.float32)
    # Gaussian-like weights at several scales.
    scales = np.exp2(np.array([-20, -12, -8, -4, -1, 0, 3, 6, 9, 12, 16, 20], dtype=np.float64))
    which = rng.integers(0, len(scales), RANDOM_COUNT - half)
    gauss = (rng.standard_normal(RANDOM_COUNT - half) * scales[which]).astype(np.float32)
    return np.concatenate([logu, gauss])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    every16 = np.arange(65536, dtype=np.uint16)
    write("bf16_to_e4m3fn.u8", bits8(every16.view(BF16), E4M3), np.uint8)
    write("bf16_to_e5m2.u8", bits8(every16.view(BF16), E5M2), np.uint8)
    write("f16_to_e4m3fn.u8", bits8(every16.view(np.float16), E4M3), np.uint8)
    write("f16_to_e5m2.u8", bits8(every16.view(np.float16), E5M2), np.uint8)

    every8 = np.arange(256, dtype=np.uint8)
    write("e4m3fn_decode.f32", every8.view(E4M3).astype(np.float32), np.float32)
    write("e5m2_decode.f32", every8.view(E5M2).astype(np.float32), np.float32)

    for stem, inputs in (("special", special_inputs()), ("random", random_inputs(np.random.default_rng(SEED)))):
        inputs = f32(inputs)
        write(f"{stem}_input.f32", inputs, np.float32)
        write(f"{stem}_e4m3fn.u8", bits8(inputs, E4M3), np.uint8)
        write(f"{stem}_e5m2.u8", bits8(inputs, E5M2), np.uint8)
        write(f"{stem}_bf16.u16", bits16(inputs, BF16), np.uint16)
        write(f"{stem}_f16.u16", bits16(inputs, np.float16), np.uint16)

    total = sum((OUT / name).stat().st_size for name, _, _ in files)
    rows = "\n".join(f"| `{name}` | {count} | {dtype} |" for name, count, dtype in files)
    (OUT / "README.md").write_text(f"""# Codec golden vectors

Made by `scripts/make-golden-codecs.py` with ml_dtypes {ml_dtypes.__version__} and numpy {np.__version__}
(Python {sys.version.split()[0]}), RNG seed {SEED}. Do not edit by hand; rerun the script.

All files are raw little-endian arrays with no header; the element count is the file size divided by the
element size. Expected outputs are the *non-saturating* `astype` casts: ml_dtypes for `float8_e4m3fn`,
`float8_e5m2` and `bfloat16`, numpy for `float16`.

| file | elements | dtype |
|---|---|---|
{rows}

- `bf16_to_*.u8`, `f16_to_*.u8`: index = the 16-bit input pattern (all 65536), value = the FP8 byte.
- `*_decode.f32`: index = the FP8 byte, value = its F32 value (NaN patterns included).
- `special_*`: `special_input.f32` lists every FP8 value, every halfway point between adjacent E4M3FN / E5M2
  values and its F32 neighbours, values just above each max, subnormal ties, F32 subnormals, BF16/F16 rounding
  corners, infinities and NaNs with several payloads; the other files hold the cast of each input.
- `random_*`: {RANDOM_COUNT} F32 inputs: half log-uniform magnitudes 2^-20..2^20 with random signs, half Gaussian at
  scales 2^-20..2^20; the other files hold the cast of each input.
- numpy's F32->F16 cast keeps NaN payload bits without quieting; Smelt (hardware F16C and compiler-rt) sets the
  quiet bit, so the tests compare F16 NaN results by NaN-ness and sign only.

Total: {total} bytes.
""")
    print(f"wrote {len(files)} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
