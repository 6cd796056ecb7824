"""Anomaly maps: how far each pixel's reconstruction is from the input.

Three kinds, chosen by the trainer on validation images and named in the manifest:
`squared_error` (the original method), `ssim` (structural dissimilarity, which sees texture and
edges that a mean-level error misses) and `blend` (a weighted sum of both). A feature model's
map is `feature_distance`: its head's distance per feature cell, upsampled to the input. Each may
be smoothed with a Gaussian before thresholding, so that single noisy pixels do not outvote a
real blob.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from lineside.deploy.manifest import FEATURE_MAP, AnomalyMap

# SSIM's stabilising constants for data in [0, 1] (Wang et al. 2004: K1 = 0.01, K2 = 0.03).
_C1 = np.float32(0.01**2)
_C2 = np.float32(0.03**2)
_SSIM_WINDOW = (7, 7)
_SSIM_SIGMA = 1.5


def squared_error(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """(H, W, C) input and reconstruction -> (H, W) float32 squared error, averaged over C."""
    diff = np.subtract(x, reconstruction, dtype=np.float32)
    np.square(diff, out=diff)
    if diff.shape[2] == 1:  # gray models: no mean to take, just drop the channel axis
        return diff[:, :, 0]
    return diff.mean(axis=2, dtype=np.float32)


def _luma(img: np.ndarray) -> np.ndarray:
    if img.shape[2] == 1:
        return np.ascontiguousarray(img[:, :, 0], dtype=np.float32)
    return img.mean(axis=2, dtype=np.float32)


def dssim(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """(1 - SSIM) / 2 per pixel, in [0, 1], over a 7x7 Gaussian window on the channel mean."""
    a, b = _luma(x), _luma(reconstruction)

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, _SSIM_WINDOW, _SSIM_SIGMA)

    # In place, in this order, to keep per-frame temporaries to a handful of 128x128 arrays.
    mu_a, mu_b = blur(a), blur(b)
    mu_ab = mu_a * mu_b
    mu_sq = np.square(mu_a)
    mu_sq += np.square(mu_b)  # mu_a^2 + mu_b^2
    var = blur(a * a)
    var += blur(b * b)
    var -= mu_sq  # var_a + var_b
    cov = blur(a * b)
    cov -= mu_ab
    ssim = mu_ab
    ssim *= 2
    ssim += _C1
    cov *= 2
    cov += _C2
    ssim *= cov  # (2 mu_ab + C1)(2 cov + C2)
    mu_sq += _C1
    var += _C2
    mu_sq *= var  # (mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2)
    ssim /= mu_sq
    dissimilarity = np.subtract(np.float32(1), ssim, out=ssim)
    dissimilarity *= np.float32(0.5)
    return np.clip(dissimilarity, 0, 1, out=dissimilarity)


def blend(x: np.ndarray, reconstruction: np.ndarray, l2_weight: float) -> np.ndarray:
    """l2_weight x squared error + SSIM dissimilarity; the weight puts both on one scale."""
    out = squared_error(x, reconstruction)
    out *= np.float32(l2_weight)
    out += dssim(x, reconstruction)
    return out


# The pixel maps a manifest may name (MAP_KINDS), from the input and its reconstruction.
RAW_MAPS: dict[str, Callable[[np.ndarray, np.ndarray, AnomalyMap], np.ndarray]] = {
    "squared_error": lambda x, r, _: squared_error(x, r),
    "ssim": lambda x, r, _: dssim(x, r),
    "blend": lambda x, r, spec: blend(x, r, spec.l2_weight),
}


def feature_distance(x: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """A head's (h, w) distances per feature cell, bilinearly upsampled to the input's size."""
    h, w = x.shape[:2]
    return cv2.resize(distances.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def only_inside(amap: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The map with everything outside the model-pixel box (x0, y0, x1, y1) set to 0."""
    x0, y0, x1, y1 = box
    out = np.zeros_like(amap)
    out[y0:y1, x0:x1] = amap[y0:y1, x0:x1]
    return out


def compute(x: np.ndarray, model_output: np.ndarray, spec: AnomalyMap) -> np.ndarray:
    """The manifest's map from the input and the model's output (a reconstruction, or a
    feature head's distances): the kind it names, smoothed when it says so. (H, W) float32."""
    if spec.kind == FEATURE_MAP:
        amap = feature_distance(x, model_output)
    else:
        amap = RAW_MAPS[spec.kind](x, model_output, spec)
    if spec.smooth_sigma > 0:
        amap = cv2.GaussianBlur(amap, (0, 0), spec.smooth_sigma)
    return amap
