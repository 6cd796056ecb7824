"""The original method's cluster removal, as its notebook wrote it: visit every pixel in Python,
grow each cluster from a seed with a set of visited pixels, erase the small ones.

Kept as the baseline the benchmarks, and the denoiser's property test, compare with.
"""

from __future__ import annotations

import numpy as np


def remove_small_clusters_flood_fill(mask: np.ndarray, min_px: int) -> np.ndarray:
    h, w = mask.shape
    out = np.zeros((h, w), np.uint8)
    seen: set[tuple[int, int]] = set()
    for y in range(h):
        for x in range(w):
            if not mask[y, x] or (y, x) in seen:
                continue
            cluster, todo = [], [(y, x)]
            seen.add((y, x))
            while todo:
                cy, cx = todo.pop()
                cluster.append((cy, cx))
                for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and (ny, nx) not in seen:
                        seen.add((ny, nx))
                        todo.append((ny, nx))
            if len(cluster) >= min_px:
                for cy, cx in cluster:
                    out[cy, cx] = 1
    return out
