"""Image-level anomaly scores: one number per frame, higher is more anomalous."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# top_k_mean averages this share of the map's pixels: a blob of about 1% of the part.
TOP_K_SHARE = 0.01


def anomalous_fraction(mask: np.ndarray, amap: np.ndarray) -> float:
    """The original method's score: the share of pixels still flagged after denoising."""
    return float(np.count_nonzero(mask)) / mask.size


def map_max(mask: np.ndarray, amap: np.ndarray) -> float:
    """The map's highest value: meant for smoothed maps, where it is a blob's peak, not a pixel."""
    return float(amap.max())


def top_k_mean(mask: np.ndarray, amap: np.ndarray) -> float:
    """The mean of the highest 1% of map values: steadier than the maximum, still local."""
    flat = amap.ravel()
    k = max(1, int(flat.size * TOP_K_SHARE))
    return float(np.partition(flat, flat.size - k)[-k:].mean())


SCORES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "anomalous_fraction": anomalous_fraction,
    "map_max": map_max,
    "top_k_mean": top_k_mean,
}
