"""Region checks: an ROI where an anomaly must be absent, or where an expected change must appear.

`expect: present` is the weld check: the model learned the part before welding, so a weld shows up
as a change; no change inside the ROI means the weld is missing. Pixels inside such an ROI are
expected to change, so they are left out of the whole-image score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lineside.daemon.core.preprocess import Geometry


class RoiRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    box: tuple[int, int, int, int] = Field(description="x, y, width, height in frame pixels")
    expect: Literal["absent", "present"]
    min_fraction: float = Field(
        default=0.05, ge=0, le=1, description="present: share of the ROI that must change"
    )
    max_px: int = Field(default=0, ge=0, description="absent: flagged model pixels tolerated")


@dataclass(frozen=True)
class RoiResult:
    name: str
    expect: str
    flagged_fraction: float
    ok: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _window(rule: RoiRule, geo: Geometry, shape: tuple[int, int]) -> tuple[slice, slice]:
    x0, y0, x1, y1 = geo.box_to_model(rule.box)
    h, w = shape
    return slice(max(y0, 0), min(y1, h)), slice(max(x0, 0), min(x1, w))


def check_rois(mask: np.ndarray, rules: tuple[RoiRule, ...], geo: Geometry) -> list[RoiResult]:
    results = []
    for rule in rules:
        ys, xs = _window(rule, geo, mask.shape)
        window = mask[ys, xs]
        flagged = int(np.count_nonzero(window))
        fraction = flagged / window.size if window.size else 0.0
        ok = fraction >= rule.min_fraction if rule.expect == "present" else flagged <= rule.max_px
        results.append(RoiResult(rule.name, rule.expect, round(fraction, 6), ok))
    return results


def without_expected_changes(
    mask: np.ndarray, rules: tuple[RoiRule, ...], geo: Geometry
) -> np.ndarray:
    """The mask or map with every `expect: present` ROI cleared (copied only when there is one)."""
    present = [r for r in rules if r.expect == "present"]
    if not present:
        return mask
    mask = mask.copy()
    for rule in present:
        mask[_window(rule, geo, mask.shape)] = 0
    return mask
