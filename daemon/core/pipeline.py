"""The pipeline composed: frame in, Inspection out. Pure apart from the model call passed in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from lineside.daemon.core import anomaly_map
from lineside.daemon.core.denoise import binarize, remove_small_clusters
from lineside.daemon.core.preprocess import Geometry, check_frame, content, geometry, preprocess
from lineside.daemon.core.regions import Region, find_regions
from lineside.daemon.core.roi import RoiResult, RoiRule, check_rois, without_expected_changes
from lineside.daemon.core.score import SCORES
from lineside.daemon.core.verdict import Verdict, verdict
from lineside.deploy.manifest import AnomalyMap, FrameSpec, Postprocess, Preprocess, Thresholds

Reconstruct = Callable[[np.ndarray], np.ndarray]


class Stages(Protocol):
    """What the pipeline reads of a manifest (the trainer scores with it before one exists)."""

    @property
    def frame(self) -> FrameSpec: ...
    @property
    def preprocess(self) -> Preprocess: ...
    @property
    def anomaly_map(self) -> AnomalyMap: ...
    @property
    def postprocess(self) -> Postprocess: ...
    @property
    def thresholds(self) -> Thresholds: ...


@dataclass(frozen=True)
class Frame:
    """A captured camera frame."""

    image: np.ndarray
    ts: float  # wall-clock seconds when captured
    seq: int  # capture counter, for telling a fresh frame from one already seen
    camera_frame_id: int | None = None  # a machine-vision camera's own counter and clock
    camera_ts_ns: int | None = None


@dataclass(frozen=True)
class Inspection:
    score: float
    verdict: Verdict
    regions: list[Region]
    rois: list[RoiResult]
    latency_ms: dict[str, float]
    amap: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    geometry: Geometry = field(repr=False)

    def to_dict(self) -> dict:
        """The JSON-ready result (maps left out)."""
        return {
            "score": self.score,
            "verdict": self.verdict,
            "regions": [r.to_dict() for r in self.regions],
            "rois": [r.to_dict() for r in self.rois],
            "latency_ms": self.latency_ms,
        }


class _Stopwatch:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = round((now - self._t) * 1000, 3)
        self._t = now


def postprocess(
    amap: np.ndarray,
    post: Postprocess,
    rules: tuple[RoiRule, ...] = (),
    geo: Geometry | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Threshold, drop small clusters and score one anomaly map, as everywhere that scores:
    (mask, mask without expected changes, image score). Changes an ROI rule expects are neither
    regions nor part of the score."""
    mask = remove_small_clusters(binarize(amap, post.pixel_threshold), post.min_cluster_px)
    scored = without_expected_changes(mask, rules, geo)
    score = SCORES[post.score](scored, without_expected_changes(amap, rules, geo))
    return mask, scored, score


def inspect_frame(
    frame: np.ndarray,
    stages: Stages,
    reconstruct: Reconstruct,
    rules: tuple[RoiRule, ...] = (),
) -> Inspection:
    """Run every stage on one uint8 frame. Raises FrameError for a frame unlike the training set."""
    watch = _Stopwatch()
    check_frame(frame, stages.frame)
    x = preprocess(frame, stages.preprocess)
    geo = geometry(frame.shape, stages.preprocess)
    watch.lap("preprocess")
    recon = reconstruct(x)
    watch.lap("inference")
    amap = anomaly_map.compute(x, recon, stages.anomaly_map)
    box = content(frame.shape, stages.preprocess, geo)
    if box is not None:  # letterbox bars are not the part: nothing there can be a defect
        amap = anomaly_map.only_inside(amap, box)
    watch.lap("anomaly_map")
    mask, scored, score = postprocess(amap, stages.postprocess, rules, geo)
    watch.lap("denoise")
    regions = find_regions(scored, amap, geo)
    watch.lap("regions")
    roi_results = check_rois(mask, rules, geo)
    decision = verdict(score, stages.thresholds, (r.ok for r in roi_results))
    watch.lap("verdict")
    return Inspection(score, decision, regions, roi_results, watch.laps, amap, mask, geo)
