"""Image-level anomaly scores: one number per frame, higher is more anomalous."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def anomalous_fraction(mask: np.ndarray, amap: np.ndarray) -> float:
    """The original method's score: the share of pixels still flagged after denoising."""
    return float(np.count_nonzero(mask)) / mask.size


SCORES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "anomalous_fraction": anomalous_fraction,
}
