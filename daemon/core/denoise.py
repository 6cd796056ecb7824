"""Binarize an anomaly map and remove clusters too small to be a defect.

Vectorized: OpenCV labels the 4-connected clusters, NumPy counts each label's pixels and a
lookup table indexed by label keeps or drops each cluster. No Python loop over pixels or
clusters. Only the box around the flagged pixels is labelled: on most parts that is a small
corner of the map, and labelling cost follows the area. (Labelling without OpenCV's statistics and
counting only flagged pixels is about twice as fast as connectedComponentsWithStats.)
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
    x, y, w, h = flagged_box(mask)
    if w == 0:
        return mask
    box = mask[y : y + h, x : x + w]
    n, labels = cv2.connectedComponents(box, connectivity=4, ltype=cv2.CV_32S)
    # Count only the flagged pixels: a few percent of the map, so the count is cheap.
    areas = np.bincount(labels[box != 0], minlength=n)
    keep = (areas >= min_px).astype(np.uint8)
    keep[0] = 0  # label 0 is the background
    out = np.zeros_like(mask)
    out[y : y + h, x : x + w] = np.take(keep, labels)
    return out


def flagged_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the smallest box holding every flagged pixel; w = 0 when there are none."""
    return cv2.boundingRect(mask)
