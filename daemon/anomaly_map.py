"""Anomaly maps: how far each pixel's reconstruction is from the input."""

from __future__ import annotations

import numpy as np


def squared_error(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """(H, W, C) input and reconstruction -> (H, W) float32 squared error, averaged over C."""
    diff = np.subtract(x, reconstruction, dtype=np.float32)
    np.square(diff, out=diff)
    if diff.shape[2] == 1:  # gray models: no mean to take, just drop the channel axis
        return diff[:, :, 0]
    return diff.mean(axis=2, dtype=np.float32)


ANOMALY_MAPS = {"squared_error": squared_error}
