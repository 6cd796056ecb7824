"""Calibration on held-out images, measured with the exported model on the box's own pipeline.

Three choices are made from validation data and written into the manifest:
1. the anomaly map and image score (kind, smoothing, score function), by how well they find
   faint synthetic defects pasted into the good validation images (detect and localize);
2. the pixel threshold, a high quantile of the good validation pixels;
3. `review_at` and `fail_at`, from the good validation scores and stated targets (and from
   defective validation scores when the user supplies some).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from lineside.daemon.core import anomaly_map
from lineside.daemon.core.pipeline import postprocess
from lineside.daemon.runtime import Model
from lineside.deploy.manifest import MAP_KINDS, AnomalyMap, Postprocess, Thresholds
from lineside.trainer import metrics
from lineside.trainer.options import Targets

SMOOTHING = (0.0, 2.0, 4.0)
KINDS = MAP_KINDS
# A pixel threshold of exactly 0 would flag every pixel that differs from its reconstruction.
_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Candidates:
    """What `choose` may pick from."""

    kinds: tuple[str, ...]
    scores: tuple[str, ...]
    smoothing: tuple[float, ...] = SMOOTHING


@dataclass(frozen=True)
class Choice:
    spec: AnomalyMap
    score: str
    pixel_threshold: float
    merit: float  # mean of image AUROC and pixel AUROC on validation


def reconstructions(model: Model, xs: np.ndarray) -> np.ndarray:
    return np.stack([model.reconstruct(x) for x in xs])


def pixel_threshold(maps: np.ndarray, quantile: float) -> float:
    """The `quantile` of all good validation pixels' map values."""
    return max(float(np.quantile(maps, quantile)), _EPS)


def maps_of(xs: np.ndarray, recons: np.ndarray, spec: AnomalyMap) -> np.ndarray:
    """The box's anomaly maps of model inputs and their reconstructions, stacked."""
    return np.stack([anomaly_map.compute(x, r, spec) for x, r in zip(xs, recons, strict=True)])


def image_scores(maps: np.ndarray, post: Postprocess) -> np.ndarray:
    """The box's image scores of stacked maps: its own post-processing, map by map."""
    return np.array([postprocess(m, post)[2] for m in maps])


def blend_weight(xs: np.ndarray, recons: np.ndarray) -> float:
    """Squared error scaled to the SSIM dissimilarity's mean on good images, so both count."""
    se = maps_of(xs, recons, AnomalyMap(kind="squared_error")).mean()
    ds = maps_of(xs, recons, AnomalyMap(kind="ssim")).mean()
    return float(ds / se) if se > 0 else 1.0


def choose(
    good: tuple[np.ndarray, np.ndarray],
    defective: tuple[np.ndarray, np.ndarray],
    defect_masks: np.ndarray,
    candidates: Candidates,
    quantile: float,
    min_cluster: int,
    shown: np.ndarray | None = None,
) -> tuple[Choice, list[dict]]:
    """The (map, smoothing, score) that best finds the defects in the validation images.

    `good` and `defective` are (inputs, reconstructions); `defect_masks` marks the defects.
    Merit is the mean of image AUROC (are defective images scored higher?) and pixel AUROC
    (is the map high on the defect?), so a map must both detect and localize. Ties go to the
    simpler candidate (earlier in `kinds`, less smoothing). `shown` marks, per image, the map
    pixels that show the part (letterbox bars do not; the box zeroes the map there). Returns the
    choice and every candidate's numbers.
    """
    weight = blend_weight(*good) if "blend" in candidates.kinds else 1.0
    labels = np.r_[np.zeros(len(good[0])), np.ones(len(defective[0]))]
    truth = np.concatenate([np.zeros(defect_masks.shape, bool), defect_masks])
    table, best = [], None
    for kind, sigma in product(candidates.kinds, candidates.smoothing):
        spec = AnomalyMap(kind=kind, smooth_sigma=sigma, l2_weight=weight)
        good_maps, bad_maps = maps_of(*good, spec), maps_of(*defective, spec)
        if shown is not None:
            good_maps, bad_maps = good_maps * shown, bad_maps * shown
        threshold = pixel_threshold(good_maps, quantile)
        pixel = metrics.pixel_auroc(np.concatenate([good_maps, bad_maps]), truth) or 0.5
        for score in candidates.scores:
            post = Postprocess(pixel_threshold=threshold, min_cluster_px=min_cluster, score=score)
            s = np.r_[image_scores(good_maps, post), image_scores(bad_maps, post)]
            image = metrics.image_auroc(labels, s) if np.ptp(s) > 0 else 0.5
            merit = (image + pixel) / 2
            table.append(
                {
                    "map": kind,
                    "smooth_sigma": sigma,
                    "score": score,
                    "image_auroc": image,
                    "pixel_auroc": pixel,
                    "merit": merit,
                }
            )
            if best is None or merit > best.merit + 1e-9:
                best = Choice(spec, score, threshold, merit)
    assert best is not None
    return best, table


def image_thresholds(
    good: np.ndarray,
    targets: Targets,
    defective: np.ndarray | None = None,
    floor: float = 0.0,
) -> tuple[Thresholds, dict]:
    """`review_at` and `fail_at` from validation scores; also the rule and the rates they give.

    fail_at: the (1 - false_reject) quantile of the good scores, raised by a margin because a
    few dozen validation images cannot pin down a 0.5% tail (below 200 images that quantile is
    simply the highest score). review_at: the (1 - review) quantile of the good scores, lowered
    to the escape target's quantile of the defective scores when those are given. `floor` keeps
    fail_at at least that far above review_at (a pixel-count score needs one more cluster).
    """
    q_fail = float(np.quantile(good, 1 - targets.false_reject, method="higher"))
    fail_at = q_fail + targets.fail_margin * (q_fail - float(np.median(good)))
    review_at = float(np.quantile(good, 1 - targets.review, method="higher"))
    if defective is not None and len(defective):
        # Parts at or below review_at pass: sit just under the quantile so it does not escape.
        q_escape = float(np.quantile(defective, targets.escape, method="lower"))
        review_at = max(0.0, min(review_at, float(np.nextafter(q_escape, -np.inf))))
    fail_at = max(fail_at, review_at + floor)
    t = Thresholds(review_at=review_at, fail_at=fail_at)
    report = {
        "targets": targets.model_dump(),
        "good_validation": _rates(good, t),
        "rule": "fail_at = q(1 - false_reject) + fail_margin x (q - median) of good validation "
        "scores; review_at = q(1 - review) of good validation scores"
        + (
            ", lowered to q(escape) of defective validation scores" if defective is not None else ""
        ),
    }
    if defective is not None and len(defective):
        report["defective_validation"] = {
            "count": len(defective),
            "escape_rate": float(np.mean(defective <= t.review_at)),
        }
    return t, report


def images_needed(targets: Targets) -> tuple[int, int]:
    """Good images needed to place review_at and fail_at at their targets: the tail each
    promises must hold at least one image (at least 20 for a 5% review target)."""
    review = int(np.ceil(1 / max(targets.review, 1e-6)))
    fail = int(np.ceil(1 / max(targets.false_reject, 1e-6)))
    return review, fail


def too_few(n: int, targets: Targets) -> list[str]:
    """Warnings for a fit on too few good images to calibrate; empty when there are enough."""
    review, fail = images_needed(targets)
    if n >= fail:
        return []
    if n >= review:
        return [
            f"note: {n} good images place review_at ({targets.review:.0%} of good parts) but not "
            f"fail_at ({targets.false_reject:.1%}): that needs {fail}; fail_at is the highest "
            "good score raised by the margin"
        ]
    return [
        f"WARNING: {n} good images are too few to calibrate the thresholds: review_at "
        f"({targets.review:.0%} of good parts to review) needs at least {review}, fail_at "
        f"({targets.false_reject:.1%} failed) needs {fail}. The rates predicted below cannot "
        "be trusted; photograph more good parts and fit again."
    ]


def _rates(good: np.ndarray, t: Thresholds) -> dict:
    return {
        "count": len(good),
        "false_reject_rate": float(np.mean(good > t.fail_at)),
        "review_or_fail_rate": float(np.mean(good > t.review_at)),
        "max": float(good.max()),
        "median": float(np.median(good)),
    }
