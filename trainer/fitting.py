"""What every model family's fit shares: good images read, preprocessed as the box will and
split; the pipeline stages chosen; the self-test images; the model's description."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np

from lineside.daemon.core import image_health
from lineside.daemon.core.pipeline import inspect_frame
from lineside.daemon.core.preprocess import preprocess
from lineside.daemon.intake import selftest
from lineside.deploy import bundle as bundles
from lineside.deploy.manifest import (
    AnomalyMap,
    FrameSpec,
    Manifest,
    ModelInfo,
    Postprocess,
    Preprocess,
    SelfTest,
    SelfTestImage,
    Thresholds,
)
from lineside.trainer import dataset, report
from lineside.trainer.options import AUTO, FEATURE_SIZES, FitOptions


@dataclass(frozen=True)
class FitResult:
    manifest: Manifest
    path: Path
    metrics: dict
    report: Path | None


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


def prepare(data: Path | Sequence[Path], opts: FitOptions) -> Prepared:
    ds = dataset.load_all(data)
    frames = dataset.read_frames(ds.train)
    size = opts.image_size or FEATURE_SIZES[0]
    pre = Preprocess(
        color=opts.color,
        size=(size, size),
        crop=opts.crop,
        equalize=opts.equalize,
        blur_ksize=opts.blur_ksize,
        geometry="squash" if opts.geometry == AUTO else opts.geometry,
        tile_scale=opts.tile_scale,
    )
    xs = _stack(frames, pre)
    train_idx, val_idx = split(len(frames), opts.val_fraction, opts.seed)
    return Prepared(ds, frames, pre, xs, train_idx, val_idx)


def with_input(
    p: Prepared, geometry: str, size: int | None = None, tile_scale: float | None = None
) -> Prepared:
    """The same images and split, fitted to the input another way or at another size."""
    size_wh = (size, size) if size else p.pre.size
    scale = tile_scale or p.pre.tile_scale
    if (geometry, size_wh, scale) == (p.pre.geometry, p.pre.size, p.pre.tile_scale):
        return p
    pre = p.pre.model_copy(update={"geometry": geometry, "size": size_wh, "tile_scale": scale})
    return dataclasses.replace(p, pre=pre, xs=_stack(p.frames, pre))


def _stack(frames: list[np.ndarray], pre: Preprocess) -> np.ndarray:
    """The preprocessed images as one array; tiles keep each frame's size, so they need one."""
    if pre.geometry == "tiles":
        sizes = {f.shape[:2] for f in frames}
        if len(sizes) > 1:
            (h0, w0), (h1, w1) = min(sizes), max(sizes)
            raise dataset.DatasetError(
                f"tiles need training frames of one size; these run from {w0}x{h0} to "
                f"{w1}x{h1} px (squash or letterbox them instead)"
            )
    return np.stack([preprocess(f, pre) for f in frames])


def squarish(frames: list[np.ndarray], tolerance: float = 0.1) -> bool:
    """Every frame within `tolerance` of square, so letterboxing would change nothing."""
    return all(abs(f.shape[1] / f.shape[0] - 1) <= tolerance for f in frames)


@dataclass(frozen=True)
class Stages:
    """The pipeline a fit has chosen, as `inspect_frame` reads it, before there is a manifest."""

    frame: FrameSpec
    preprocess: Preprocess
    anomaly_map: AnomalyMap
    postprocess: Postprocess
    thresholds: Thresholds


def selftest_images(
    good_frames, results, stages: Stages, model
) -> tuple[SelfTest, dict[str, bytes]]:
    """A few held-out good parts and the clearest detections, with the scores measured here:
    at least one of each, and the rest while they fit SELFTEST_BYTES."""
    caught = sorted(
        (r for r in results if r.sample.defective), key=lambda r: r.inspection.score, reverse=True
    )
    good = [(f, selftest.encode(f)) for f in good_frames[:3]]
    bad_frames = dataset.read_frames([r.sample.path for r in caught[:2]])
    images, files = [], {}
    for i, (frame, png) in enumerate(
        within_selftest_budget(good, [(f, selftest.encode(f)) for f in bad_frames])
    ):
        name = f"selftest/{i:02d}.png"
        files[name] = png
        insp = inspect_frame(frame, stages, model.infer)
        images.append(SelfTestImage(file=name, score=insp.score, verdict=insp.verdict))
    return SelfTest(tolerance=selftest.tolerance(stages), images=tuple(images)), files


# Self-test images in a bundle: five frames of 2048x1536 would be 25 MB of PNG.
SELFTEST_BYTES = 4 * 1024 * 1024


def within_selftest_budget(good: list[tuple], bad: list[tuple]) -> list[tuple]:
    """(frame, PNG) pairs: the first good and the first defective, then the others in order
    while their PNGs stay within SELFTEST_BYTES; good images first."""
    pairs = good + bad
    first = {0, len(good)} & set(range(len(pairs)))
    total = sum(len(pairs[i][1]) for i in first)
    kept = []
    for i, pair in enumerate(pairs):
        if i in first:
            kept.append(pair)
        elif total + len(pair[1]) <= SELFTEST_BYTES:
            kept.append(pair)
            total += len(pair[1])
    return kept


def model_info(p: Prepared, opts: FitOptions, architecture: str, macs: int | None) -> ModelInfo:
    """Name, version and provenance of the model being fitted."""
    now = dt.datetime.now(dt.UTC)
    return ModelInfo(
        name=opts.name or p.ds.root.name,
        version=opts.version or now.strftime("%Y%m%d-%H%M%S"),
        architecture=architecture,
        created_at=now.isoformat(timespec="seconds"),
        trainer_version=package_version("lineside"),
        macs=macs,
    )


def reference(frames: list[np.ndarray], good_scores: np.ndarray) -> dict:
    """The manifest's `reference`: scores of good parts the model did not train on, and the image
    health of every good frame, for the box's drift monitor."""
    health = [image_health.measure(f) for f in frames]
    spread = {
        name: {"mean": float(np.mean(v)), "std": float(np.std(v))}
        for name, v in ((m, [h[m] for h in health]) for m in image_health.MEASURES)
    }
    scores = np.asarray(good_scores, np.float64)
    return {"scores": {"mean": float(scores.mean()), "std": float(scores.std())}, **spread}


def manifest_fields(
    p: Prepared,
    stages: Stages,
    calibration: dict,
    metrics: dict,
    self_test: SelfTest,
    good_scores: np.ndarray,
) -> dict:
    """The manifest's sections every fit fills the same way: the chosen stages, calibration,
    dataset, metrics, self-test and drift reference (files are listed when the bundle is
    packed)."""
    return {
        "reference": reference(p.frames, good_scores),
        "frame": stages.frame,
        "preprocess": stages.preprocess,
        "anomaly_map": stages.anomaly_map,
        "postprocess": stages.postprocess,
        "thresholds": stages.thresholds,
        "calibration": calibration,
        "dataset": p.ds.summary(),
        "metrics": metrics,
        "selftest": self_test,
        "files": {},
    }


def split_record(p: Prepared, opts: FitOptions, pixel_threshold: float) -> dict:
    """The calibration entries every fit writes: seed, split and pixel threshold."""
    return {
        "seed": opts.seed,
        "train_images": [p.ds.train[i].name for i in p.train_idx],
        "validation_images": [p.ds.train[i].name for i in p.val_idx],
        "pixel": {"threshold": pixel_threshold, "quantile": opts.pixel_quantile},
    }


def write_bundle(
    out: Path,
    manifest: Manifest,
    files: dict[str, bytes],
    key,
    opts: FitOptions,
    metrics: dict,
    results: list,
    say: Callable[[str], None],
) -> FitResult:
    """Pack (signed when given a key), write atomically, and write the report when there is one."""
    packed = bundles.pack(manifest.model_dump(mode="json", exclude={"files"}), files, key=key)
    bundles.write_atomic(out, packed)
    say(f"bundle written: {out} ({len(packed) / 1024:.0f} KiB)")
    final = bundles.parse(packed).manifest
    report_dir = None
    if results or opts.report:
        report_dir = opts.report or report.default_dir(Path(out))
        report.write(report_dir, final, metrics, results, say)
    return FitResult(final, Path(out), metrics, report_dir)
