"""Evaluation on a labelled test split, through the box's own pipeline and the int8 model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from lineside.daemon.core.pipeline import Inspection, Stages, inspect_frame
from lineside.daemon.core.preprocess import fit_to_input, shown
from lineside.daemon.runtime import Model
from lineside.deploy.manifest import Thresholds
from lineside.trainer import metrics as m
from lineside.trainer.dataset import Sample, read_frames, read_mask


@dataclass(frozen=True)
class Result:
    sample: Sample
    inspection: Inspection
    truth: np.ndarray = field(repr=False)  # ground truth on the anomaly map's grid (bool)
    valid: np.ndarray = field(repr=False)  # map pixels that show the frame (not letterbox bars)

    @property
    def localized(self) -> bool:
        """Some flagged pixel lies on the defect."""
        return bool(np.any(self.truth & self.inspection.mask))


def truth_on_map(sample: Sample, frame_shape: tuple[int, ...], stages: Stages) -> np.ndarray:
    """The ground-truth mask cropped and resized as the frame was: pixel metrics on map pixels."""
    mask = read_mask(sample, frame_shape[:2]).astype(np.uint8)
    crop = stages.preprocess.crop
    if crop:
        x, y, w, h = crop
        mask = mask[y : y + h, x : x + w]
    return fit_to_input(mask, stages.preprocess, cv2.INTER_NEAREST) > 0


def run(
    samples: tuple[Sample, ...],
    stages: Stages,
    model: Model,
    say: Callable[[str], None] = lambda _: None,
) -> list[Result]:
    results = []
    for i, sample in enumerate(samples):
        frame = read_frames([sample.path])[0]
        insp = inspect_frame(frame, stages, model.infer)
        truth = truth_on_map(sample, frame.shape, stages)
        results.append(Result(sample, insp, truth, shown(frame.shape, stages.preprocess)))
        if (i + 1) % 50 == 0 or i + 1 == len(samples):
            say(f"evaluated {i + 1}/{len(samples)} test images")
    return results


def metrics(results: list[Result], thresholds: Thresholds) -> dict:
    """Every number of the report, overall and per defect type (each type against the good)."""
    out = _block(results, thresholds)
    verdicts: dict[str, dict[str, int]] = {}
    for r in results:
        counts = verdicts.setdefault(r.sample.label, {"pass": 0, "review": 0, "fail": 0})
        counts[r.inspection.verdict] += 1
    out["verdicts"] = verdicts
    good = [r for r in results if not r.sample.defective]
    good_scores = np.array([r.inspection.score for r in good])
    out["cpk"] = m.cpk_upper(good_scores, thresholds.fail_at)
    out["thresholds"] = thresholds.model_dump()
    kinds = sorted({r.sample.label for r in results if r.sample.defective})
    out["per_defect"] = {
        k: _block(good + [r for r in results if r.sample.label == k], thresholds) for k in kinds
    }
    return out


def _block(results: list[Result], t: Thresholds) -> dict:
    labels = np.array([r.sample.defective for r in results])
    scores = np.array([r.inspection.score for r in results])
    good = [r for r in results if not r.sample.defective]
    bad = [r for r in results if r.sample.defective]
    has_masks = any(r.sample.mask_path for r in bad)
    maps = np.stack([r.inspection.amap for r in results]) if results else None
    truths = np.stack([r.truth for r in results]) if results else None
    valid = np.stack([r.valid for r in results]) if results else None
    return {
        "images": len(results),
        "good": len(good),
        "defective": len(bad),
        "image_auroc": m.image_auroc(labels, scores),
        "average_precision": m.average_precision(labels, scores),
        "caught_at_good_held_back": m.caught_at_held_back(labels, scores),
        "pixel_auroc": m.pixel_auroc(maps, truths, valid) if has_masks else None,
        "pro_auc_0.3": m.pro_auc(maps, truths, valid=valid) if has_masks else None,
        "false_reject_rate": _share(good, lambda r: r.inspection.verdict == "fail"),
        "good_to_review_rate": _share(good, lambda r: r.inspection.verdict == "review"),
        "escape_rate": _share(bad, lambda r: r.inspection.verdict == "pass"),
        "defective_to_review_rate": _share(bad, lambda r: r.inspection.verdict == "review"),
        "review_rate": _share(results, lambda r: r.inspection.verdict == "review"),
        "defects_localized": _share([r for r in bad if r.sample.mask_path], lambda r: r.localized),
    }


def _share(results: list[Result], pred: Callable[[Result], bool]) -> float | None:
    return sum(map(pred, results)) / len(results) if results else None


def summary_lines(mx: dict) -> list[str]:
    lines = ["verdicts per test folder (pass / review / fail):"]
    for label, c in mx["verdicts"].items():
        lines.append(f"  {label:<14} {c['pass']:>4} {c['review']:>6} {c['fail']:>6}")
    lines.append(
        f"image AUROC {m.text(mx['image_auroc'])}  AP {m.text(mx['average_precision'])}  "
        f"pixel AUROC {m.text(mx['pixel_auroc'])}  AUPRO(0.3) {m.text(mx['pro_auc_0.3'])}"
    )
    lines.append(
        f"false rejects {m.text(mx['false_reject_rate'], True)}  escapes "
        f"{m.text(mx['escape_rate'], True)}  sent to review {m.text(mx['review_rate'], True)}  "
        f"defects localized {m.text(mx['defects_localized'], True)}"
    )
    caught = mx.get("caught_at_good_held_back")
    if caught:
        lines.append(
            "defective parts caught with "
            + ", ".join(f"{k} of good parts held back: {v:.1%}" for k, v in caught.items())
        )
    if mx.get("cpk"):
        lines.append(
            f"Cpk of good scores against fail_at: {mx['cpk']['cpk']:.2f} "
            "(scores are skewed: read the counted rates first)"
        )
    return lines
