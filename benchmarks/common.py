"""Shared by the benchmarks: train once, then run the same weights through different paths."""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from lineside.daemon.preprocess import preprocess
from lineside.daemon.runtime import Model
from lineside.deploy.manifest import Postprocess, Preprocess, Thresholds
from lineside.trainer import calibrate, dataset, evaluate
from lineside.trainer.fit import FitOptions, make_manifest, split
from lineside.trainer.model import build
from lineside.trainer.train import train

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


@dataclass
class Trained:
    net: object
    ds: dataset.Dataset
    opts: FitOptions
    pre: Preprocess
    frames: list
    xs: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}"
    )


def fit_keras(data: Path, opts: FitOptions, say=print) -> Trained:
    ds = dataset.load(data)
    frames = dataset.read_frames(ds.train)
    pre = Preprocess(
        color=opts.color,
        size=(opts.image_size, opts.image_size),
        crop=opts.crop,
        equalize=opts.equalize,
        blur_ksize=opts.blur_ksize,
    )
    xs = np.stack([preprocess(f, pre) for f in frames])
    train_idx, val_idx = split(len(frames), opts.val_fraction, opts.seed)
    net = build(opts.model, opts.image_size, opts.image_size, xs.shape[-1])
    t0 = time.monotonic()
    train(
        net,
        xs[train_idx],
        xs[val_idx],
        opts.epochs,
        opts.batch_size,
        opts.seed,
        say=lambda line: None,
    )
    say(f"trained '{opts.model}' on {len(train_idx)} images in {time.monotonic() - t0:.0f} s")
    return Trained(net, ds, opts, pre, frames, xs, train_idx, val_idx)


def evaluate_tflite(t: Trained, tflite: bytes, threads: int = 2) -> tuple[dict, Model]:
    """Calibrate and evaluate exactly as `fit` does, for any TFLite export of the weights."""
    model = Model(tflite, num_threads=threads)
    frame_spec = dataset.frame_spec(t.frames)
    val_frames = [t.frames[i] for i in t.val_idx]
    pix = calibrate.pixel_threshold(
        val_frames, t.pre, model, "squared_error", t.opts.pixel_quantile
    )
    post = Postprocess(pixel_threshold=pix.threshold, min_cluster_px=t.opts.min_cluster_px)
    provisional = make_manifest(
        t.ds, t.opts, t.pre, post, Thresholds(review_at=0, fail_at=0), model, frame_spec, {}, {}
    )
    val_scores = calibrate.scores(val_frames, provisional, model)
    thresholds = calibrate.image_thresholds(val_scores, t.opts.image_size**2, t.opts.min_cluster_px)
    manifest = make_manifest(t.ds, t.opts, t.pre, post, thresholds, model, frame_spec, {}, {})
    return evaluate.metrics(evaluate.run(t.ds.test, manifest, model)), model


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)
