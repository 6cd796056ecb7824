"""Shared by the benchmarks: train once, then run the same weights through different paths."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


from lineside.daemon.runtime import Model
from lineside.deploy.manifest import Postprocess, Thresholds
from lineside.trainer import calibrate, dataset, evaluate
from lineside.trainer.fit import FitOptions, Prepared, make_manifest, prepare
from lineside.trainer.model import build
from lineside.trainer.train import train

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


@dataclass(frozen=True, kw_only=True)
class Trained(Prepared):
    """The prepared images with the Keras model trained on them."""

    net: object
    opts: FitOptions


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}"
    )


def fit_keras(data: Path, opts: FitOptions, say=print) -> Trained:
    p = prepare(data, opts)
    net = build(opts.model, opts.image_size, opts.image_size, p.xs.shape[-1])
    t0 = time.monotonic()
    train(
        net,
        p.xs[p.train_idx],
        p.xs[p.val_idx],
        opts.epochs,
        opts.batch_size,
        opts.seed,
        say=lambda line: None,
    )
    say(f"trained '{opts.model}' on {len(p.train_idx)} images in {time.monotonic() - t0:.0f} s")
    return Trained(**{f.name: getattr(p, f.name) for f in fields(p)}, net=net, opts=opts)


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
