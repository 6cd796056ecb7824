"""Policy: automate the clear cases, hand the unclear ones to a person."""

from __future__ import annotations

from collections.abc import Iterable

from lineside.deploy.manifest import Thresholds, Verdict


def verdict(score: float, thresholds: Thresholds, rois_ok: Iterable[bool] = ()) -> Verdict:
    """A score equal to a threshold counts as the milder side; any failed ROI check fails."""
    if not all(rois_ok) or score > thresholds.fail_at:
        return "fail"
    if score > thresholds.review_at:
        return "review"
    return "pass"
