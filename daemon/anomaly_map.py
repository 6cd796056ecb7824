"""Anomaly maps: how far each pixel's reconstruction is from the input."""

from __future__ import annotations

import numpy as np


def squared_error(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """(H, W, C) input and reconstruction -> (H, W) float32 squared error, averaged over C."""
    diff = x - reconstruction
    return np.mean(diff * diff, axis=2, dtype=np.float32)


ANOMALY_MAPS = {"squared_error": squared_error}
