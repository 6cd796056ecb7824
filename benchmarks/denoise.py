"""The vectorized denoiser against the original flood fill, on 256x256 maps at 1, 5, 20% noise.

    .venv/bin/python benchmarks/denoise.py

Prints median milliseconds of each, the speed ratio, and whether the outputs are identical.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.flood_fill import remove_small_clusters_flood_fill
from benchmarks.timing import median_ms
from lineside.daemon.core.denoise import remove_small_clusters


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'noise':>6} {'flood fill ms':>14} {'vectorized ms':>14} {'ratio':>8}  identical")
    for noise in (0.01, 0.05, 0.20):
        mask = (rng.random((256, 256)) < noise).astype(np.uint8)
        # A few real blobs too, as a defect would leave.
        mask[40:60, 40:70] = 1
        mask[150:155, 100:200] = 1
        same = np.array_equal(
            remove_small_clusters(mask, 5), remove_small_clusters_flood_fill(mask, 5)
        )
        slow = median_ms(lambda m=mask: remove_small_clusters_flood_fill(m, 5), 5)
        fast = median_ms(lambda m=mask: remove_small_clusters(m, 5), 200)
        print(f"{noise:>6.0%} {slow:>14.3f} {fast:>14.3f} {slow / fast:>7.0f}x  {same}")


if __name__ == "__main__":
    main()
