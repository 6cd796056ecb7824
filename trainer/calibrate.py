"""Thresholds from held-out good images, measured with the exported model on the box pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lineside.daemon.anomaly_map import ANOMALY_MAPS
from lineside.daemon.pipeline import inspect_frame
from lineside.daemon.preprocess import preprocess
from lineside.daemon.runtime import Model
from lineside.deploy.manifest import Manifest, Preprocess, Thresholds


@dataclass(frozen=True)
class PixelCalibration:
    threshold: float
    quantile: float
    error_mean: float
    error_max: float


def pixel_threshold(
    frames: list[np.ndarray], pre: Preprocess, model: Model, map_kind: str, quantile: float
) -> PixelCalibration:
    """The `quantile` of all validation pixels' anomaly-map values."""
    maps = np.stack(
        [
            ANOMALY_MAPS[map_kind](x, model.reconstruct(x))
            for x in (preprocess(f, pre) for f in frames)
        ]
    )
    threshold = float(np.quantile(maps, quantile))
    # A perfect reconstruction would give 0; keep the threshold strictly positive.
    threshold = max(threshold, float(np.finfo(np.float32).eps))
    return PixelCalibration(threshold, quantile, float(maps.mean()), float(maps.max()))


def scores(frames: list[np.ndarray], manifest: Manifest, model: Model) -> np.ndarray:
    """Image scores exactly as the box computes them."""
    return np.array([inspect_frame(f, manifest, model.reconstruct).score for f in frames])


def image_thresholds(val_scores: np.ndarray, map_pixels: int, min_cluster_px: int) -> Thresholds:
    """review_at: the highest validation score, so every validation part passes.

    fail_at: twice that, and at least one more smallest-possible cluster above it, so that
    a single borderline blob goes to review rather than straight to fail.
    """
    review_at = float(val_scores.max()) if len(val_scores) else 0.0
    one_cluster = min_cluster_px / map_pixels
    return Thresholds(review_at=review_at, fail_at=max(2 * review_at, review_at + one_cluster))
