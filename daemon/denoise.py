"""Binarize an anomaly map and remove clusters too small to be a defect.

Vectorized: OpenCV labels the 4-connected clusters, a NumPy lookup table indexed by label keeps
or drops each one. No Python loop over pixels or clusters.
"""

from __future__ import annotations

import cv2
import numpy as np


def binarize(amap: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels strictly above the threshold, as a uint8 0/1 mask."""
    return (amap > threshold).view(np.uint8)


def remove_small_clusters(mask: np.ndarray, min_px: int) -> np.ndarray:
    """Drop 4-connected clusters of fewer than `min_px` pixels; returns a uint8 0/1 mask."""
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    _n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    keep = (stats[:, cv2.CC_STAT_AREA] >= min_px).astype(np.uint8)
    keep[0] = 0  # label 0 is the background
    return keep[labels]
