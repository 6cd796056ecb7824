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
from lineside.deploy import signing
from lineside.trainer import evaluate
from lineside.trainer.fit import FitOptions, Prepared, prepare
from lineside.trainer.pixels.fit import calibrated, train_network

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


@dataclass(frozen=True, kw_only=True)
class Trained(Prepared):
    """The prepared images with the Keras model trained on them."""

    net: object
    opts: FitOptions
    train_seconds: float


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}"
    )


def fit_keras(data: Path, opts: FitOptions, say=print) -> Trained:
    p = prepare(data, opts)
    t0 = time.monotonic()
    net, _ = train_network(p, opts, say=lambda line: None)
    seconds = time.monotonic() - t0
    say(f"trained '{opts.model}' on {len(p.train_idx)} images in {seconds:.0f} s")
    fields_ = {f.name: getattr(p, f.name) for f in fields(p)}
    return Trained(**fields_, net=net, opts=opts, train_seconds=seconds)


def evaluate_tflite(t: Trained, tflite: bytes, threads: int = 2) -> tuple[dict, Model, object]:
    """Calibrate and evaluate exactly as `fit` does, for any TFLite export of the weights.

    Returns (metrics, model, the calibrated stages).
    """
    model = Model(tflite, num_threads=threads)
    cal = calibrated(t, t.opts, model, say=lambda line: None)
    results = evaluate.run(t.ds.test, cal.stages, model)
    return evaluate.metrics(results, cal.stages.thresholds), model, cal.stages


def parts_video(folder: Path) -> Path:
    """A synthetic video of 40 parts passing the camera, every 4th defective."""
    from lineside.trainer.synth import write_video

    video = folder / "parts.avi"
    write_video(video, seed=11, frames=40, fps=10, defect_every=4)
    return video


def maintenance_keys(work: Path):
    """A fresh maintenance key pair under `work`: (private key, folder of trusted public keys)
    for a station started with `model.trusted_keys`."""
    private, public = signing.generate(work / "keys", "maintenance")
    trusted = work / "trusted"
    trusted.mkdir()
    (trusted / public.name).write_bytes(public.read_bytes())
    return signing.load_private(private), trusted
