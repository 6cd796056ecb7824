"""What the calibrated thresholds would pass: synthetic defects per kind and size, predicted
against what the test split counted.

Every synthetic defect variant (trainer/defects.py) is painted on a few held-out good images
and scored by the head that never saw that image; the share at or below `review_at` is the
escape rate the thresholds predict for defects of that kind and size.
"""

from __future__ import annotations

import numpy as np

from lineside.deploy.manifest import Thresholds
from lineside.trainer.defects import KINDS, SIZES, VARIANTS


def tally(scores: np.ndarray, t: Thresholds) -> dict:
    """(images, len(VARIANTS)) scores -> per kind and size: how many, passed and failed shares."""
    out: dict = {"images": int(scores.shape[0]), "kinds": {}}
    for j, (kind, size) in enumerate(VARIANTS):
        s = scores[:, j]
        out["kinds"].setdefault(kind, {})[size] = {
            "passed": float(np.mean(s <= t.review_at)),
            "failed": float(np.mean(s > t.fail_at)),
        }
    out["passed"] = float(np.mean(scores <= t.review_at))
    return out


def lines(tallied: dict) -> list[str]:
    """A table for the end of `fit`: share of synthetic defects the thresholds would pass."""
    n = tallied["images"]
    head = f"synthetic defects the thresholds would pass ({n} held-out images each):"
    rows = [head, "  " + f"{'':<9}" + "".join(f"{s:>8}" for s in SIZES)]
    for kind in KINDS:
        cells = tallied["kinds"][kind]
        rows.append("  " + f"{kind:<9}" + "".join(f"{cells[s]['passed']:>8.0%}" for s in SIZES))
    rows.append(f"  all kinds and sizes: {tallied['passed']:.0%} would pass")
    return rows


def counted_lines(tallied: dict, metrics: dict) -> list[str]:
    """Predicted escapes beside the test split's counted ones."""
    counted = metrics.get("escape_rate")
    if counted is None:
        return []
    return [
        f"defective parts passed: predicted {tallied['passed']:.1%} on synthetic defects, "
        f"counted {counted:.1%} on the test split's real ones"
    ]
