"""Outline each anomaly: contour, box, area, centroid and peak, in original frame coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lineside.daemon.core.denoise import flagged_box
from lineside.daemon.core.preprocess import Geometry


@dataclass(frozen=True)
class Region:
    box: tuple[int, int, int, int]  # x, y, width, height
    area_px: float
    centroid: tuple[float, float]
    peak: tuple[int, int]
    peak_value: float
    contour: list[list[int]]  # [[x, y], ...]

    def to_dict(self) -> dict:
        # By hand: dataclasses.asdict deep-copies every contour point, which cost more than
        # finding the region.
        return {
            "box": self.box,
            "area_px": self.area_px,
            "centroid": self.centroid,
            "peak": self.peak,
            "peak_value": self.peak_value,
            "contour": self.contour,
        }


def find_regions(
    mask: np.ndarray, amap: np.ndarray, geo: Geometry, limit: int = 50
) -> list[Region]:
    """One Region per 4-connected cluster in `mask`, largest first, at most `limit`."""
    bx, by, bw, bh = flagged_box(mask)
    if bw == 0:  # most parts are good: nothing to label
        return []
    # Label only the box around the flagged pixels; its origin moves into the geometry.
    box = mask[by : by + bh, bx : bx + bw]
    _n, labels, stats, centroids = cv2.connectedComponentsWithStats(box, connectivity=4)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:limit] + 1
    local_map = amap[by : by + bh, bx : bx + bw]
    local_geo = geo.shifted(bx, by)
    return [_region(labels, local_map, stats[i], centroids[i], i, local_geo) for i in order]


def _region(labels, amap, stat, centroid, label: int, geo: Geometry) -> Region:
    x, y, w, h, area = (int(v) for v in stat)
    own = (labels[y : y + h, x : x + w] == label).view(np.uint8)
    _lo, peak_value, _, (px, py) = cv2.minMaxLoc(amap[y : y + h, x : x + w], mask=own)
    contours, _ = cv2.findContours(own, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=len).reshape(-1, 2) + np.array([x, y])
    # A contour runs through pixel centres; pixel (i, j) covers [i, i+1) in model units.
    fx0, fy0 = geo.point(x, y)
    fx1, fy1 = geo.point(x + w, y + h)
    fx0, fy0, fx1, fy1 = math.floor(fx0), math.floor(fy0), math.ceil(fx1), math.ceil(fy1)
    peak = geo.point(px + x + 0.5, py + y + 0.5)
    cx, cy = geo.point(centroid[0] + 0.5, centroid[1] + 0.5)
    return Region(
        box=(fx0, fy0, fx1 - fx0, fy1 - fy0),
        area_px=round(area * geo.sx * geo.sy, 1),
        centroid=(round(cx, 1), round(cy, 1)),
        peak=(int(peak[0]), int(peak[1])),
        peak_value=float(peak_value),
        contour=np.rint(geo.to_frame(outline + 0.5)).astype(int).tolist(),
    )
