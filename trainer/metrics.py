"""Quality metrics over a labelled test split: image-level, pixel-level, and process capability.

Pure NumPy and scikit-learn over arrays, so each can be checked against a hand-made case.
"""

from __future__ import annotations

import cv2
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

PRO_MAX_FPR = 0.3  # PRO is integrated up to this false-positive rate, as in MVTec AD
PRO_LEVELS = 2000  # thresholds at which the PRO curve is measured


def image_auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve of defective (1) vs good (0); None when one class is missing."""
    labels = np.asarray(labels, bool)
    if labels.all() or not labels.any():
        return None
    return float(roc_auc_score(labels, scores))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    labels = np.asarray(labels, bool)
    if labels.all() or not labels.any():
        return None
    return float(average_precision_score(labels, scores))


EXACT_PIXELS = 4_000_000  # beyond this, pixel AUROC is counted in AUROC_LEVELS bins
AUROC_LEVELS = 1 << 16


def pixel_auroc(
    maps: np.ndarray, masks: np.ndarray, valid: np.ndarray | None = None
) -> float | None:
    """ROC AUC over every pixel of every image: defect pixels vs all others. Pixels outside
    `valid` (letterbox bars, which show no part) are left out.

    Up to EXACT_PIXELS pixels it is scikit-learn's; a test split of a thousand maps (50 million
    pixels) would need gigabytes to sort, so there it is counted image by image in 65,536 bins
    at the pixels' quantiles, pixels in one bin counted as ties (within 1e-4 of the exact value
    on the shared sets)."""
    keep = np.ones(np.shape(masks), bool) if valid is None else np.asarray(valid, bool)
    masks = np.asarray(masks, bool)
    positives = int(np.count_nonzero(masks & keep))
    if positives == 0 or positives == int(np.count_nonzero(keep)):
        return None
    if keep.size <= EXACT_PIXELS:
        return float(roc_auc_score(masks[keep], np.asarray(maps, np.float32)[keep]))
    return _binned_auroc(maps, masks, keep)


def _binned_auroc(maps, masks, keep) -> float:
    pick = np.random.default_rng(0).integers(len(maps), size=64)  # bin edges from 64 maps
    sample = np.asarray(maps[pick], np.float32)[keep[pick]]
    edges = np.unique(np.quantile(sample, np.linspace(0, 1, AUROC_LEVELS)))
    pos = np.zeros(len(edges) + 1, np.int64)
    neg = np.zeros(len(edges) + 1, np.int64)
    for amap, mask, k in zip(maps, masks, keep, strict=True):
        bins = np.searchsorted(edges, np.asarray(amap, np.float32)[k], side="right")
        truth = mask[k]
        pos += np.bincount(bins[truth], minlength=len(pos))
        neg += np.bincount(bins[~truth], minlength=len(neg))
    below = np.cumsum(neg) - neg  # negatives in lower bins
    wins = float(np.sum(pos * below) + 0.5 * np.sum(pos * neg))
    return wins / (float(pos.sum()) * float(neg.sum()))


def pro_curve(
    maps: np.ndarray, masks: np.ndarray, levels: int = PRO_LEVELS, valid: np.ndarray | None = None
):
    """(fpr, pro) arrays over thresholds, fpr ascending.

    PRO is the mean over ground-truth regions (connected components) of the share of each region
    above the threshold, so a small defect counts as much as a large one; fpr is the share of
    defect-free pixels above the threshold. Pixels are counted per threshold bin, image by
    image, so a large split never holds more than one map's bins at a time.
    """
    masks = np.asarray(masks, bool)
    if masks.all() or not masks.any():
        raise ValueError("PRO needs ground-truth regions and defect-free pixels")
    edges = _edges(maps, levels)
    n_bins = len(edges) + 1
    neg = np.zeros(n_bins, np.int64)
    per_region = []
    for i in range(len(maps)):
        bins = np.searchsorted(edges, np.asarray(maps[i], np.float32), side="right")
        negative = ~masks[i] if valid is None else ~masks[i] & np.asarray(valid[i], bool)
        neg += np.bincount(bins[negative], minlength=n_bins)
        n, labels = cv2.connectedComponents(masks[i].astype(np.uint8), connectivity=8)
        if n > 1:
            inside = labels > 0
            counts = np.bincount(
                (labels[inside] - 1) * n_bins + bins[inside], minlength=(n - 1) * n_bins
            )
            per_region.append(counts.reshape(n - 1, n_bins))
    fpr = _above(neg) / neg.sum()
    regions = np.concatenate(per_region)
    sizes = regions.sum(axis=1, keepdims=True)
    overlap = (sizes - np.cumsum(regions, axis=1))[:, :-1] / sizes
    pro = overlap.mean(axis=0)
    order = np.argsort(fpr, kind="stable")
    return fpr[order], pro[order]


def _edges(maps, levels: int) -> np.ndarray:
    """Threshold levels at the quantiles of the map values (of 64 maps, for a large split)."""
    pick = np.arange(len(maps))
    if len(maps) > 64:
        pick = np.sort(np.random.default_rng(0).choice(len(maps), 64, replace=False))
    values = np.asarray(maps[pick], np.float32)
    return np.unique(np.quantile(values, np.linspace(0, 1, levels)))


def _above(counts: np.ndarray) -> np.ndarray:
    """For each threshold index j: how many pixels fall in bins above j."""
    return (counts.sum() - np.cumsum(counts))[:-1].astype(np.float64)


def pro_auc(
    maps: np.ndarray,
    masks: np.ndarray,
    max_fpr: float = PRO_MAX_FPR,
    valid: np.ndarray | None = None,
) -> float | None:
    """Area under the PRO curve up to `max_fpr`, divided by `max_fpr` (1.0 is perfect)."""
    masks = np.asarray(masks, bool)
    if not masks.any() or masks.all():
        return None
    fpr, pro = pro_curve(maps, masks, valid=valid)
    fpr = np.r_[0.0, fpr, 1.0]
    pro = np.r_[0.0, pro, 1.0]
    end = float(np.interp(max_fpr, fpr, pro))
    keep = fpr < max_fpr
    x = np.r_[fpr[keep], max_fpr]
    y = np.r_[pro[keep], end]
    return float(np.trapezoid(y, x) / max_fpr)


HELD_BACK = (0.01, 0.05, 0.10)


def caught_at_held_back(labels: np.ndarray, scores: np.ndarray) -> dict[str, float] | None:
    """The share of defective parts caught when only 1%, 5% or 10% of good parts are held
    back: what a line lives with, where AUROC averages over every operating point."""
    labels = np.asarray(labels, bool)
    scores = np.asarray(scores, np.float64)
    if labels.all() or not labels.any():
        return None
    good, bad = scores[~labels], scores[labels]
    out = {}
    for share in HELD_BACK:
        t = float(np.quantile(good, 1 - share, method="inverted_cdf"))
        out[f"{share:.0%}"] = float(np.mean(bad > t))
    return out


def cpk_upper(good_scores: np.ndarray, upper_limit: float) -> dict | None:
    """One-sided Cpk of good parts' scores against the fail threshold: (USL - mean) / (3 sigma).

    Anomaly scores are skewed (bounded below, long tail up), so a normal-theory Cpk overstates
    the margin; it is reported for the process engineer's habit, with the counted rates beside it.
    """
    s = np.asarray(good_scores, np.float64)
    if len(s) < 2 or s.std(ddof=1) == 0:
        return None
    sigma = float(s.std(ddof=1))
    return {
        "cpk": (upper_limit - float(s.mean())) / (3 * sigma),
        "mean": float(s.mean()),
        "sigma": sigma,
        "usl": upper_limit,
        "skewness": float(((s - s.mean()) ** 3).mean() / s.std() ** 3),
    }


def reject_escape_curve(labels: np.ndarray, scores: np.ndarray):
    """(thresholds t, false-reject rate, escape rate) at every distinct t; pass when score <= t."""
    labels = np.asarray(labels, bool)
    scores = np.asarray(scores, np.float64)
    ts = np.unique(np.r_[scores, scores.min() - 1])
    good, bad = np.sort(scores[~labels]), np.sort(scores[labels])
    frr = 1 - np.searchsorted(good, ts, side="right") / max(len(good), 1)
    escape = np.searchsorted(bad, ts, side="right") / max(len(bad), 1)
    return ts, frr, escape


def text(v: float | None, pct: bool = False, digits: int = 3) -> str:
    """A metric for people: '-' when it could not be measured (one class missing)."""
    if v is None:
        return "-"
    if isinstance(v, int | np.integer):
        return str(v)
    return f"{v:.1%}" if pct else f"{v:.{digits}f}"
