"""Where a frame's time goes around the model, and the least the stages could cost.

    .venv/bin/python benchmarks/overhead.py out/quality/bottle-lineside.lsb [--repeats 500]

On the bundle's self-test frames, hot (each call repeated, no capture thread competing), prints
median microseconds of:
- the model call alone (LiteRT invoke) and the whole `reconstruct` (with int8 conversion);
- each pipeline stage as the daemon runs it;
- each stage's floor: only the library calls that stage cannot do without for this bundle's
  settings (the OpenCV colour conversion, resize and equalize; the map's Gaussian blurs; the
  threshold and bounding box that find nothing on a good part; the top-1% partition; the JSON of
  a message with no regions), with no Python around them.
Each as a share of the model call. The floor is the best case, a good part with nothing to
outline: if the floor alone is above the target, no rewrite of the stages' Python can meet it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine
from benchmarks.timing import median_ms
from lineside.daemon.core import anomaly_map
from lineside.daemon.core.denoise import binarize, remove_small_clusters
from lineside.daemon.core.pipeline import Frame, inspect_frame
from lineside.daemon.core.preprocess import preprocess
from lineside.daemon.core.regions import find_regions
from lineside.daemon.core.score import SCORES, TOP_K_SHARE
from lineside.daemon.intake import selftest
from lineside.daemon.runtime import load_bundle
from lineside.daemon.sinks import mqtt_topics
from lineside.deploy.manifest import Manifest


class Cycle:
    """Calls fn on the next item of a list each time, so every frame takes its turn."""

    def __init__(self, items: list, fn) -> None:
        self.items, self.fn, self.i = items, fn, 0

    def __call__(self):
        self.i += 1
        return self.fn(self.items[self.i % len(self.items)])


def preprocess_floor(frame: np.ndarray, m: Manifest) -> np.ndarray:
    """The OpenCV calls the manifest's preprocessing needs, nothing else."""
    spec = m.preprocess
    img = frame
    if spec.color == "gray" and frame.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif spec.color != "gray":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB if frame.ndim == 3 else cv2.COLOR_GRAY2RGB)
    img = cv2.resize(img, spec.size, interpolation=cv2.INTER_AREA)
    if spec.equalize and img.ndim == 2:
        img = cv2.equalizeHist(img)
    return img


def map_floor(x: np.ndarray, m: Manifest) -> np.ndarray:
    """The map's filters alone: five Gaussian blurs for SSIM, one subtraction for the error."""
    a = np.ascontiguousarray(x[:, :, 0])
    out = a
    if m.anomaly_map.kind in ("ssim", "blend"):
        for _ in range(5):
            out = cv2.GaussianBlur(a, (7, 7), 1.5)
    if m.anomaly_map.kind in ("squared_error", "blend"):
        out = cv2.subtract(a, a)
    if m.anomaly_map.smooth_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), m.anomaly_map.smooth_sigma)
    return out


def decide_floor(amap: np.ndarray, m: Manifest) -> float:
    """Threshold, bounding box (empty on a good part), and the score's one reduction."""
    cv2.boundingRect(binarize(amap, m.postprocess.pixel_threshold))
    if m.postprocess.score != "top_k_mean":
        return float(amap.max())
    k = max(1, int(amap.size * TOP_K_SHARE))
    return float(np.partition(amap.ravel(), amap.size - k)[-k:].mean())


def stage_rows(bundle, model, frames: list[np.ndarray], xs: list[np.ndarray]) -> list[tuple]:
    """(name, the stage as the daemon runs it, its floor or None), each called on every frame."""
    m, post = bundle.manifest, bundle.manifest.postprocess
    recons = [(x, model.reconstruct(x)) for x in xs]
    maps = [anomaly_map.compute(x, r, m.anomaly_map) for x, r in recons]
    insps = [inspect_frame(f, m, model.reconstruct) for f in frames]
    geo = insps[0].geometry
    meta = Frame(image=frames[0], seq=0, ts=0.0)
    empty = {"v": 1, "station": "bench", "seq": 0, "score": 0.1, "verdict": "pass"}
    empty |= {"regions": [], "rois": [], "latency_ms": insps[0].latency_ms}

    def denoise_and_score(amap: np.ndarray) -> float:
        mask = remove_small_clusters(binarize(amap, post.pixel_threshold), post.min_cluster_px)
        return SCORES[post.score](mask, amap)

    def regions(insp) -> list:
        return find_regions(insp.mask, insp.amap, geo)

    def payload(insp) -> bytes:
        return mqtt_topics.inspection_payload(insp, 0, meta, None, bundle, "bench")

    return [
        (
            "preprocess",
            Cycle(frames, lambda f: preprocess(f, m.preprocess)),
            Cycle(frames, lambda f: preprocess_floor(f, m)),
        ),
        (
            "anomaly map",
            Cycle(recons, lambda p: anomaly_map.compute(*p, m.anomaly_map)),
            Cycle(xs, lambda x: map_floor(x, m)),
        ),
        (
            "denoise + score",
            Cycle(maps, denoise_and_score),
            Cycle(maps, lambda a: decide_floor(a, m)),
        ),
        ("regions", Cycle(insps, regions), None),
        (
            "publish (JSON)",
            Cycle(insps, payload),
            lambda: json.dumps(empty, separators=(",", ":")).encode(),
        ),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("--repeats", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    bundle, model = load_bundle(args.bundle, num_threads=args.threads)
    m = bundle.manifest
    if not m.selftest:
        print("this bundle has no self-test images", file=sys.stderr)
        return 2
    frames = [selftest.frame(bundle, image.file) for image in m.selftest.images]
    xs = [preprocess(f, m.preprocess) for f in frames]
    rows = stage_rows(bundle, model, frames, xs)
    model.reconstruct(xs[0])
    invoke = median_ms(model._interp.invoke, args.repeats)
    recon = median_ms(Cycle(xs, model.reconstruct), args.repeats)
    print(machine())
    print(
        f"{args.bundle.name}: {len(frames)} self-test frames {frames[0].shape}, model input "
        f"{m.preprocess.size}, map {m.anomaly_map.kind}, score {m.postprocess.score}\n"
    )
    print(f"{'':<18}{'stage us':>10}{'of model':>10}{'floor us':>10}{'of model':>10}")
    print(f"{'model (invoke)':<18}{invoke * 1000:>10.1f}")
    print(f"{'reconstruct':<18}{recon * 1000:>10.1f}{recon / invoke:>10.0%}")
    total = floor_total = 0.0
    for name, stage, floor in rows:
        s = median_ms(stage, args.repeats)
        f = median_ms(floor, args.repeats) if floor else 0.0
        total, floor_total = total + s, floor_total + f
        print(f"{name:<18}{s * 1000:>10.1f}{s / invoke:>10.0%}{f * 1000:>10.1f}{f / invoke:>10.0%}")
    print(
        f"{'all but the model':<18}{total * 1000:>10.1f}{total / invoke:>10.0%}"
        f"{floor_total * 1000:>10.1f}{floor_total / invoke:>10.0%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
