"""Does the int8 model score like the float model it was quantized from?"""

from __future__ import annotations

import numpy as np

from lineside.daemon import anomaly_map
from lineside.daemon.denoise import binarize, remove_small_clusters
from lineside.daemon.pipeline import inspect_frame
from lineside.daemon.runtime import Model
from lineside.daemon.score import SCORES
from lineside.deploy.manifest import Manifest
from lineside.trainer import metrics
from lineside.trainer.dataset import read_frames


def _score(model: Model, x: np.ndarray, manifest: Manifest) -> float:
    post = manifest.postprocess
    amap = anomaly_map.compute(x, model.reconstruct(x), manifest.anomaly_map)
    mask = remove_small_clusters(binarize(amap, post.pixel_threshold), post.min_cluster_px)
    return SCORES[post.score](mask, amap)


def _summary(labels: np.ndarray, s8: np.ndarray, sf: np.ndarray) -> dict:
    a8, af = metrics.image_auroc(labels, s8), metrics.image_auroc(labels, sf)
    constant = np.ptp(s8) == 0 or np.ptp(sf) == 0
    return {
        "images": len(labels),
        "score_correlation": 1.0 if constant else float(np.corrcoef(s8, sf)[0, 1]),
        "int8_auroc": a8,
        "float_auroc": af,
        "auroc_difference": None if a8 is None or af is None else a8 - af,
    }


def compare(
    int8: Model,
    flt: Model,
    manifest: Manifest,
    good: tuple[np.ndarray, np.ndarray],
    defective: tuple[np.ndarray, np.ndarray],
) -> dict:
    """Both models on the good validation inputs and their synthetic-defect copies."""
    xs = np.concatenate([good[0], defective[0]])
    labels = np.r_[np.zeros(len(good[0]), bool), np.ones(len(defective[0]), bool)]
    s8 = np.array([_score(int8, x, manifest) for x in xs])
    sf = np.array([_score(flt, x, manifest) for x in xs])
    return _summary(labels, s8, sf)


def on_test(results: list, flt: Model, manifest: Manifest) -> dict:
    """The float model on the test split already scored with int8 (evaluate.Result list)."""
    labels = np.array([r.sample.defective for r in results])
    s8 = np.array([r.inspection.score for r in results])
    frames = read_frames([r.sample.path for r in results])
    sf = np.array([inspect_frame(f, manifest, flt.reconstruct).score for f in frames])
    return _summary(labels, s8, sf)
