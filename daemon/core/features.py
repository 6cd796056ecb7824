"""Backbone outputs to one feature grid: every map brought to the finest grid and concatenated,
then each cell's features averaged over its neighbourhood."""

from __future__ import annotations

import cv2
import numpy as np


def assemble(maps: list[np.ndarray]) -> np.ndarray:
    """(h_i, w_i, c_i) float32 maps -> (H, W, sum c_i) at the first (finest) map's grid.

    Coarser maps are bilinearly upsampled, so every cell sees both its own detail and the wider
    context of the deeper layer.
    """
    h, w = maps[0].shape[:2]
    parts = [maps[0]]
    for m in maps[1:]:
        parts.append(m if m.shape[:2] == (h, w) else _resize(m, w, h))
    return np.concatenate(parts, axis=-1)


def _resize(m: np.ndarray, w: int, h: int) -> np.ndarray:
    # OpenCV resizes at most 512 channels at once; backbone maps have fewer.
    out = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    return out if out.ndim == 3 else out[:, :, None]


def aggregate(features: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) features -> each cell the mean over the `size` x `size` cells around it.

    PatchCore's "locally aware" patch features: a defect a little off a cell's centre still
    moves that cell, and single-cell texture noise is averaged down. Borders are mirrored, so
    the grid keeps its shape. `size` 1 returns the features unchanged.
    """
    if size <= 1:
        return features
    out = cv2.blur(features, (size, size), borderType=cv2.BORDER_REFLECT_101)
    return out if out.ndim == 3 else out[:, :, None]
