"""Does the int8 model score like the float model it was quantized from?"""

from __future__ import annotations

import numpy as np

from lineside.daemon.core.pipeline import Stages, inspect_frame
from lineside.daemon.runtime import Model
from lineside.trainer import calibrate, metrics
from lineside.trainer.dataset import read_frames


def _scores(xs: np.ndarray, recons: np.ndarray, stages: Stages) -> np.ndarray:
    maps = calibrate.maps_of(xs, recons, stages.anomaly_map)
    return calibrate.image_scores(maps, stages.postprocess)


def _summary(labels: np.ndarray, s8: np.ndarray, sf: np.ndarray) -> dict:
    a8, af = metrics.image_auroc(labels, s8), metrics.image_auroc(labels, sf)
    if np.ptp(s8) > 0 and np.ptp(sf) > 0:
        correlation = float(np.corrcoef(s8, sf)[0, 1])
    else:  # undefined for a constant score: say only whether the two agree exactly
        correlation = 1.0 if np.array_equal(s8, sf) else None
    return {
        "images": len(labels),
        "score_correlation": correlation,
        "int8_auroc": a8,
        "float_auroc": af,
        "auroc_difference": None if a8 is None or af is None else a8 - af,
    }


def summary_line(agree: dict) -> str:
    return (
        f"score correlation {metrics.text(agree['score_correlation'], digits=4)}, image AUROC "
        f"{metrics.text(agree['int8_auroc'])} (int8) vs {metrics.text(agree['float_auroc'])} "
        "(float)"
    )


def compare(
    flt: Model,
    stages: Stages,
    good: tuple[np.ndarray, np.ndarray],
    defective: tuple[np.ndarray, np.ndarray],
) -> dict:
    """The float model against the int8 one on the good validation inputs and their
    synthetic-defect copies; `good` and `defective` are (inputs, int8 reconstructions)."""
    xs = np.concatenate([good[0], defective[0]])
    labels = np.r_[np.zeros(len(good[0]), bool), np.ones(len(defective[0]), bool)]
    s8 = _scores(xs, np.concatenate([good[1], defective[1]]), stages)
    sf = _scores(xs, calibrate.reconstructions(flt, xs), stages)
    return _summary(labels, s8, sf)


def on_test(results: list, flt: Model, stages: Stages) -> dict:
    """The float model on the test split already scored with int8 (evaluate.Result list)."""
    labels = np.array([r.sample.defective for r in results])
    s8 = np.array([r.inspection.score for r in results])
    frames = read_frames([r.sample.path for r in results])
    sf = np.array([inspect_frame(f, stages, flt.reconstruct).score for f in frames])
    return _summary(labels, s8, sf)
