"""`lineside-train fit`: good images in, a calibrated int8 bundle out."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np

from lineside.daemon import selftest
from lineside.daemon.pipeline import inspect_frame
from lineside.daemon.preprocess import preprocess
from lineside.daemon.runtime import Model
from lineside.deploy import bundle as bundles
from lineside.deploy import signing
from lineside.deploy.manifest import (
    SCHEMA_VERSION,
    Manifest,
    Postprocess,
    Preprocess,
    SelfTest,
    SelfTestImage,
    Thresholds,
)
from lineside.trainer import calibrate, dataset, evaluate
from lineside.trainer.export import to_int8_tflite
from lineside.trainer.model import ARCHITECTURES, build, count_macs
from lineside.trainer.train import train


@dataclass(frozen=True)
class FitOptions:
    model: str = "original"
    image_size: int = 128
    color: str = "gray"
    equalize: bool = True
    blur_ksize: int = 0
    crop: tuple[int, int, int, int] | None = None
    epochs: int = 30
    batch_size: int = 16
    val_fraction: float = 0.2
    seed: int = 0
    pixel_quantile: float = 0.999
    min_cluster_px: int = 5
    threads: int = 2
    name: str | None = None
    version: str | None = None
    sign_key: Path | None = None


@dataclass(frozen=True)
class FitResult:
    manifest: Manifest
    path: Path
    metrics: dict


def split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of image indices into (train, validation); at least one of each when n >= 2."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(n * val_fraction)), n - 1) if n >= 2 and val_fraction > 0 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass(frozen=True)
class Prepared:
    """Good images read, preprocessed exactly as the box will, and split."""

    ds: dataset.Dataset
    frames: list[np.ndarray]
    pre: Preprocess
    xs: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray


def prepare(data: Path, opts: FitOptions) -> Prepared:
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
    return Prepared(ds, frames, pre, xs, train_idx, val_idx)


def fit(data: Path, out: Path, opts: FitOptions, say: Callable[[str], None] = print) -> FitResult:
    started = time.monotonic()
    key = signing.load_private(opts.sign_key) if opts.sign_key else None  # fail before training
    p = prepare(data, opts)
    ds, frames, pre, xs, train_idx, val_idx = p.ds, p.frames, p.pre, p.xs, p.train_idx, p.val_idx
    frame_spec = dataset.frame_spec(frames)
    say(f"{len(frames)} good images from {data}: {len(train_idx)} train, {len(val_idx)} validation")

    net = build(opts.model, opts.image_size, opts.image_size, xs.shape[-1])
    macs = count_macs(net)
    say(
        f"model '{opts.model}': {net.count_params():,} parameters, {macs / 1e6:.0f} M MACs per "
        f"frame, input {xs.shape[1:]}"
    )
    history = train(net, xs[train_idx], xs[val_idx], opts.epochs, opts.batch_size, opts.seed, say)

    say("exporting int8 TFLite")
    tflite = to_int8_tflite(net, xs[train_idx])
    model = Model(tflite, num_threads=opts.threads)

    val_frames = [frames[i] for i in val_idx] or frames
    pix = calibrate.pixel_threshold(val_frames, pre, model, "squared_error", opts.pixel_quantile)
    post = Postprocess(pixel_threshold=pix.threshold, min_cluster_px=opts.min_cluster_px)
    provisional = Thresholds(review_at=0, fail_at=0)
    manifest = make_manifest(ds, opts, pre, post, provisional, model, frame_spec, {}, {})
    val_scores = calibrate.scores(val_frames, manifest, model)
    thresholds = calibrate.image_thresholds(
        val_scores, opts.image_size * opts.image_size, opts.min_cluster_px
    )
    say(
        f"pixel threshold {pix.threshold:.5f} (q{opts.pixel_quantile}); "
        f"review_at {thresholds.review_at:.5f}, fail_at {thresholds.fail_at:.5f}"
    )
    calibration = {
        "seed": opts.seed,
        "train_images": [ds.train[i].name for i in train_idx],
        "validation_images": [ds.train[i].name for i in val_idx],
        "pixel": asdict(pix),
        "validation_scores": {
            "count": len(val_scores),
            "mean": float(val_scores.mean()),
            "max": float(val_scores.max()),
        },
        "rule": "review_at = max validation score; fail_at = max(2 x review_at, review_at + one "
        "minimal cluster)",
        "history": history,
        "train_seconds": round(time.monotonic() - started, 1),
    }
    manifest = make_manifest(ds, opts, pre, post, thresholds, model, frame_spec, calibration, {})
    metrics: dict = {}
    results: list[evaluate.Result] = []
    if ds.test:
        say(f"evaluating on {len(ds.test)} test images with the int8 model")
        results = evaluate.run(ds.test, manifest, model, say)
        metrics = evaluate.metrics(results)
        manifest = make_manifest(
            ds, opts, pre, post, thresholds, model, frame_spec, calibration, metrics
        )
    selftest, selftest_files = _selftest(val_frames, ds, results, manifest, model)
    info = manifest.model.model_copy(update={"macs": macs})
    manifest = manifest.model_copy(update={"selftest": selftest, "model": info})
    packed = bundles.pack(
        manifest.model_dump(mode="json", exclude={"files"}),
        {"model.tflite": tflite, **selftest_files},
        key=key,
    )
    bundles.write_atomic(out, packed)
    say(f"bundle written: {out} ({len(packed) / 1024:.0f} KiB)")
    return FitResult(bundles.parse(packed).manifest, Path(out), metrics)


def _selftest(good_frames, ds, results, manifest, model) -> tuple[SelfTest, dict[str, bytes]]:
    """A few held-out good parts and the clearest detections, with the scores measured here."""
    frames = list(good_frames[:3])
    caught = sorted(
        (r for r in results if r.sample.defective), key=lambda r: r.inspection.score, reverse=True
    )
    frames += dataset.read_frames([r.sample.path for r in caught[:2]])
    images, files = [], {}
    for i, frame in enumerate(frames):
        name = f"selftest/{i:02d}.png"
        files[name] = selftest.encode(frame)
        insp = inspect_frame(frame, manifest, model.reconstruct)
        images.append(SelfTestImage(file=name, score=insp.score, verdict=insp.verdict))
    return SelfTest(tolerance=selftest.tolerance(manifest), images=tuple(images)), files


def make_manifest(
    ds, opts, pre, post, thresholds, model, frame_spec, calibration, metrics
) -> Manifest:
    """The manifest for a model as loaded by the daemon (its tensors give input and output)."""
    now = dt.datetime.now(dt.UTC)
    return Manifest(
        schema_version=SCHEMA_VERSION,
        model={
            "name": opts.name or ds.root.name,
            "version": opts.version or now.strftime("%Y%m%d-%H%M%S"),
            "architecture": f"{opts.model}: {ARCHITECTURES[opts.model].description}",
            "created_at": now.isoformat(timespec="seconds"),
            "trainer_version": package_version("lineside"),
        },
        input=model.input,
        output=model.output,
        frame=frame_spec,
        preprocess=pre,
        postprocess=post,
        thresholds=thresholds,
        calibration=calibration,
        dataset=ds.summary(),
        metrics=metrics,
        files={},
    )
