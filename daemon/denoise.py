"""Binarize an anomaly map and remove clusters too small to be a defect.

Vectorized: OpenCV labels the 4-connected clusters, NumPy counts each label's pixels and a
lookup table indexed by label keeps or drops each cluster. No Python loop over pixels or
clusters. (Labelling without OpenCV's statistics and counting only flagged pixels is about twice as
fast as connectedComponentsWithStats on anomaly-map sizes.)
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
    if not mask.any():
        return mask
    n, labels = cv2.connectedComponents(mask, connectivity=4, ltype=cv2.CV_32S)
    # Count only the flagged pixels: a few percent of the map, so the count is cheap.
    areas = np.bincount(labels.ravel()[mask.ravel() != 0], minlength=n)
    keep = (areas >= min_px).astype(np.uint8)
    keep[0] = 0  # label 0 is the background
    return np.take(keep, labels)
