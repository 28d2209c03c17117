"""Times numpy's X @ W.T on the shapes of MatmulBenchmark.defaultShapes (best of 5 after a warm-up), or on
the one shape `ROWS INPUTS OUTPUTS` given as arguments.

Prints one line per shape: "rows inputs outputs gflops". Used by scripts/bench-matmul.
"""
import sys
import time

import numpy as np

PROJECTIONS = [(7168, 1536), (7168, 576), (7168, 2048), (7168, 18432), (2048, 7168), (16384, 7168)]
SHAPES = [(rows, i, o) for i, o in PROJECTIONS for rows in (1, 16, 128, 512)] + [(512, 1024, 1024)]


def main() -> None:
    if sys.argv[1:] == ["--list"]:
        for shape in SHAPES:
            print(*shape)
        return
    rng = np.random.default_rng(42)
    shapes = [tuple(int(a) for a in sys.argv[1:4])] if len(sys.argv) >= 4 else SHAPES
    for rows, inputs, outputs in shapes:
        x = (rng.random((rows, inputs), dtype=np.float32) - 0.5).astype(np.float32)
        w = (rng.random((outputs, inputs), dtype=np.float32) - 0.5).astype(np.float32)
        best = float("inf")
        for repetition in range(6):
            start = time.perf_counter()
            y = x @ w.T
            elapsed = time.perf_counter() - start
            if repetition > 0:
                best = min(best, elapsed)
        assert y.shape == (rows, outputs)
        print(rows, inputs, outputs, 2.0 * rows * inputs * outputs / best / 1e9)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
