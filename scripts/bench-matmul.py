"""Times numpy's X @ W.T on the shapes of MatmulBenchmark.defaultShapes (best of 5 after a warm-up).

Prints one line per shape: "rows inputs outputs gflops". Used by scripts/bench-matmul.
"""
import sys
import time

import numpy as np

SHAPES = [(1, 7168, 2048), (16, 7168, 2048), (128, 7168, 2048), (128, 2048, 7168), (512, 1024, 1024)]


def main() -> None:
    rng = np.random.default_rng(42)
    for rows, inputs, outputs in SHAPES:
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
