"""Evaluation on a labelled test split, through the box's own pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from lineside.daemon.pipeline import Inspection, inspect_frame
from lineside.daemon.runtime import Model
from lineside.deploy.manifest import Manifest
from lineside.trainer.dataset import Sample, read_frames, read_mask


@dataclass(frozen=True)
class Result:
    sample: Sample
    inspection: Inspection
    overlaps_truth: bool


def frame_mask(insp: Inspection, frame_shape: tuple[int, ...]) -> np.ndarray:
    """The flagged model-resolution mask drawn back onto the frame's pixel grid (bool)."""
    out = np.zeros(frame_shape[:2], np.uint8)
    for region in insp.regions:
        cv2.fillPoly(out, [np.array(region.contour, np.int32)], 1)
    return out.astype(bool)


def run(
    samples: tuple[Sample, ...],
    manifest: Manifest,
    model: Model,
    say: Callable[[str], None] = lambda _: None,
) -> list[Result]:
    results = []
    for i, sample in enumerate(samples):
        frame = read_frames([sample.path])[0]
        insp = inspect_frame(frame, manifest, model.reconstruct)
        truth = read_mask(sample, frame.shape[:2])
        overlaps = bool(np.any(truth & frame_mask(insp, frame.shape)))
        results.append(Result(sample, insp, overlaps))
        if (i + 1) % 25 == 0 or i + 1 == len(samples):
            say(f"evaluated {i + 1}/{len(samples)} test images")
    return results


def metrics(results: list[Result]) -> dict:
    """Image AUROC, verdict counts per label, false-reject and escape rates at the thresholds."""
    labels = np.array([r.sample.defective for r in results])
    scores = np.array([r.inspection.score for r in results])
    per_label: dict[str, dict[str, int]] = {}
    for r in results:
        counts = per_label.setdefault(r.sample.label, {"pass": 0, "review": 0, "fail": 0})
        counts[r.inspection.verdict] += 1
    good = [r for r in results if not r.sample.defective]
    bad = [r for r in results if r.sample.defective]
    out: dict = {
        "images": len(results),
        "verdicts": per_label,
        "false_reject_rate": _share(good, lambda r: r.inspection.verdict == "fail"),
        "good_to_review_rate": _share(good, lambda r: r.inspection.verdict == "review"),
        "escape_rate": _share(bad, lambda r: r.inspection.verdict == "pass"),
        "defects_localized": _share(
            [r for r in bad if r.sample.mask_path], lambda r: r.overlaps_truth
        ),
    }
    if labels.any() and not labels.all():
        out["image_auroc"] = float(roc_auc_score(labels, scores))
    return out


def _share(results: list[Result], pred: Callable[[Result], bool]) -> float | None:
    return sum(map(pred, results)) / len(results) if results else None


def summary_lines(m: dict) -> list[str]:
    lines = ["verdicts per test folder (pass / review / fail):"]
    for label, c in m["verdicts"].items():
        lines.append(f"  {label:<14} {c['pass']:>4} {c['review']:>6} {c['fail']:>6}")
    if "image_auroc" in m:
        lines.append(f"image AUROC: {m['image_auroc']:.3f}")
    for key in ("false_reject_rate", "good_to_review_rate", "escape_rate", "defects_localized"):
        if m.get(key) is not None:
            lines.append(f"{key.replace('_', ' ')}: {m[key]:.1%}")
    return lines
