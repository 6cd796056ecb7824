"""`fit` for the feature family: the pretrained int8 backbone, cut, and a head.

The default heads (a Gaussian per cell, a memory bank of good patches) are fitted, not trained:
the good images' features are read once and each head is fitted in seconds (the memory bank's
search is converted to an int8 network, no training loop). That makes the calibration honest:
thresholds come from scores of every good image under a head that never saw it, and the head
shipped is then fitted on every good image. With `--head auto` each head is calibrated that
way and the one that would pass fewest synthetic defects at its own thresholds is kept.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lineside.daemon.core import anomaly_map
from lineside.daemon.core.heads import GaussianHead, MemoryBankHead
from lineside.daemon.core.preprocess import preprocess, shown
from lineside.daemon.runtime import Backbone, FeatureModel
from lineside.deploy import bundle as bundles
from lineside.deploy import signing
from lineside.deploy.manifest import (
    AUTOENCODER,
    GAUSSIAN,
    MEMORY_BANK,
    SCHEMA_VERSION,
    Features,
    Head,
    Manifest,
    Postprocess,
    Thresholds,
)
from lineside.deploy.manifest import Backbone as BackboneSpec
from lineside.trainer import calibrate, dataset, escapes, evaluate
from lineside.trainer.calibrate import Choice
from lineside.trainer.features import autoencoder, backbone, choice, gaussian, heads
from lineside.trainer.features.choice import Validation, choose_map
from lineside.trainer.fitting import (
    FitResult,
    Prepared,
    Stages,
    manifest_fields,
    model_info,
    prepare,
    selftest_images,
    split_record,
    with_input,
    write_bundle,
)
from lineside.trainer.options import FitOptions

_BACKBONE = (
    "features: MobileNetV2 int8 (ImageNet) cut after expanded_conv_12, feature maps of "
    "expanded_conv_5 and _12 on one grid{hood}"
)
DESCRIPTIONS = {
    GAUSSIAN: _BACKBONE + ", PCA to {dims} values, a Gaussian per grid cell (Mahalanobis distance)",
    MEMORY_BANK: _BACKBONE + ", a memory bank of {dims} good patches (greedy coreset); map = "
    "distance to the nearest",
    AUTOENCODER: _BACKBONE + ", standardized, reconstructed by an int8 convolutional autoencoder "
    "({dims}-channel bottleneck at half the grid); map = squared error per cell",
}


def fit(
    data: Path | Sequence[Path], out: Path, opts: FitOptions, say: Callable[[str], None] = print
) -> FitResult:
    started = time.monotonic()
    key = signing.load_private(opts.sign_key) if opts.sign_key else None  # fail before work
    defects = dataset.load(opts.val_defects) if opts.val_defects else None
    p = prepare(data, opts)
    say(
        f"{p.ds.describe()}: {len(p.train_idx)} to choose the map on, "
        f"{len(p.val_idx)} validation (seed {opts.seed}); thresholds from every one of them "
        "left out in turn"
    )
    warnings = calibrate.too_few(len(p.frames), opts.targets)
    for line in warnings:
        loud = line.startswith("WARNING")
        say("\n".join(["!" * 72, line, "!" * 72]) if loud else line)
    say(_camera_line(p, opts))
    cut = backbone.cut(backbone.original())
    p, net, val, gauss, inputs = _choose_input(p, opts, cut, defects, say)
    cal, compared = _choose_head(p, opts, net, val, gauss, defects, say)
    del val, gauss  # the validation features: hundreds of MB that evaluation does not need
    chosen, table = cal.choice, cal.table
    model, post, thresholds, rule = cal.model, cal.post, cal.thresholds, cal.rule
    rates = rule["good_validation"]
    say(
        f"pixel threshold {post.pixel_threshold:.5g}; review_at {thresholds.review_at:.5g}, "
        f"fail_at {thresholds.fail_at:.5g}; predicted on good parts the head never saw: "
        f"{rates['review_or_fail_rate']:.1%} to review or worse, "
        f"{rates['false_reject_rate']:.1%} failed"
    )
    for line in escapes.lines(rule["synthetic_defects"]):
        say(line)
    stages = Stages(dataset.frame_spec(p.frames), p.pre, chosen.spec, post, thresholds)
    calibration = {
        **split_record(p, opts, post.pixel_threshold),
        "selection": {
            "chosen_merit": chosen.merit,
            "validation": "head fitted on the training split; held-out good images against the "
            "same images with one synthetic defect each (scratches, cracks, pits, missing "
            "features, stains at three sizes); merit = mean of image AUROC and pixel AUROC",
            "candidates": table,
            "inputs": inputs,
            "heads": compared,
        },
        "thresholds": {**rule, "scores": cal.scores_from},
        "camera": opts.camera,
        "warnings": warnings,
        "train_seconds": round(time.monotonic() - started, 1),
    }
    metrics: dict = {}
    results: list[evaluate.Result] = []
    if p.ds.test:
        say(f"evaluating on {len(p.ds.test)} test images with the box's pipeline")
        results = evaluate.run(p.ds.test, stages, model, say)
        metrics = evaluate.metrics(results, thresholds)
        say(_predicted_vs_counted(rates, results))
        for line in escapes.counted_lines(rule["synthetic_defects"], metrics):
            say(line)
    st, st_files = selftest_images([p.frames[i] for i in p.val_idx], results, stages, model)
    manifest = _manifest(
        p, opts, net, cut, model, stages, calibration, metrics, st, cal.good_scores
    )
    head_files = {manifest.features.head.file: _npz(model)}
    if cal.network is not None:
        head_files[manifest.features.head.network] = cal.network
    files = {"model.tflite": cut, **head_files, **st_files}
    return write_bundle(out, manifest, files, key, opts, metrics, results, say)


@dataclass(frozen=True)
class Calibrated:
    kind: str
    choice: Choice
    table: list[dict]
    model: FeatureModel
    network: bytes | None  # the head's int8 network (autoencoder, memory bank's search)
    post: Postprocess
    thresholds: Thresholds
    rule: dict
    scores_from: str
    good_scores: np.ndarray  # left-out (Gaussian, bank) or validation (autoencoder) scores

    @property
    def caught(self) -> float:
        """Share of the synthetic defect variants sent to review or worse."""
        return 1 - self.rule["synthetic_defects"]["passed"]


def _choose_input(p: Prepared, opts: FitOptions, cut: bytes, defects, say):
    """Every (geometry, size) candidate judged with one head (the Gaussian, or the memory bank
    where the grid is too fine for a Gaussian), fitted and calibrated as it would ship; kept:
    the one that catches most synthetic defects at its thresholds."""
    best, table = None, {}
    for geometry, size, scale in choice.inputs(p, opts):
        q = with_input(p, geometry, size, scale)
        net = _backbone(cut, q, opts)
        say(
            f"input {size}x{size} {geometry}: backbone grid {net.grid[0]}x{net.grid[1]}, "
            f"{net.channels} features per cell" + _hood(net) + _tiles(net)
        )
        kind = _judge(opts, net)
        val = choice.validation(q, opts, net, say)
        tried = heads.trial(kind, val, opts, say)
        chosen = choose_map(opts, val, tried, f"{size} px {geometry}, {kind} head", say)
        cal = calibrated(q, opts, net, val, kind, tried, chosen, defects, say)
        table[choice.label(geometry, size, scale)] = {
            "caught": cal.caught,
            "merit": cal.choice.merit,
        }
        say(f"{size} px {geometry}: the {kind} head catches {cal.caught:.1%} of synthetic defects")
        if best is None or _rank(cal) > _rank(best[3]):
            best = (q, net, val, cal)  # the others' features are let go here
    assert best is not None
    if len(table) > 1:
        say(f"input: {best[0].pre.size[0]} px {best[0].pre.geometry}")
    return (*best, table)


def _judge(opts: FitOptions, net: Backbone) -> str:
    """The head that judges the inputs: the one asked for, else the Gaussian where it fits."""
    fits = gaussian.fits(net.grid)
    if opts.head == GAUSSIAN and not fits:
        rows, cols = net.grid
        raise dataset.DatasetError(
            f"a {rows}x{cols} grid is over the {gaussian.MAX_CELLS} cells a Gaussian head "
            "holds in a bundle: use --head memory_bank, or a smaller --tile-scale"
        )
    if opts.head == MEMORY_BANK or not fits:
        return MEMORY_BANK
    return GAUSSIAN


def _rank(cal: Calibrated) -> tuple[float, float]:
    """What every choice of the fit compares: synthetic defects caught, then merit."""
    return round(cal.caught, 3), cal.choice.merit


def _choose_head(p, opts, net, val: Validation, gauss: Calibrated, defects, say):
    """Every candidate head fitted, its map chosen and its thresholds calibrated the same way;
    kept: the one that catches most synthetic defects at its own thresholds (then merit)."""
    done = []
    for kind in heads.kinds(opts):
        if kind == gauss.kind:
            done.append(gauss)
            continue
        if kind == GAUSSIAN and not gaussian.fits(net.grid):
            say(
                f"gaussian head: not tried, a {net.grid[0]}x{net.grid[1]} grid is over the "
                f"{gaussian.MAX_CELLS} cells a bundle holds"
            )
            continue
        tried = heads.trial(kind, val, opts, say)
        head = tried[0] if isinstance(tried, tuple) else tried
        chosen = choose_map(opts, val, head, f"{kind} head", say)
        cal = calibrated(p, opts, net, val, kind, tried, chosen, defects, say)
        say(
            f"{kind} head at its calibrated thresholds: catches {cal.caught:.1%} of the "
            f"synthetic defects, validation merit {cal.choice.merit:.3f}"
        )
        done.append(cal)
    best = max(done, key=_rank)
    if len(done) > 1:
        say(f"head: {best.kind}")
    return best, {c.kind: {"caught": c.caught, "merit": c.choice.merit} for c in done}


def calibrated(p, opts, net, val: Validation, kind, tried, chosen, defects, say) -> Calibrated:
    """The head shipped and the thresholds, from scores of good images the head never saw."""
    picked, table = chosen
    out = heads.left_out(kind, val, opts, tried, say)
    maps = np.stack(
        [
            _map(p.xs[i], d, picked.spec, val.shown[i])
            for i, d in zip(out.image_of, out.good, strict=True)
        ]
    )
    post = Postprocess(
        pixel_threshold=calibrate.pixel_threshold(maps, opts.pixel_quantile),
        min_cluster_px=opts.min_cluster_px,
        score=picked.score,
    )
    model = FeatureModel(net, out.head)
    good_scores = calibrate.image_scores(maps, post)
    defect_scores = _defect_scores(defects, p, model, picked.spec, post)
    thresholds, rule = calibrate.image_thresholds(good_scores, opts.targets, defect_scores)
    probe_scores = _probe_scores(out.probe, val, p.xs, picked.spec, post)
    rule["synthetic_defects"] = escapes.tally(probe_scores, thresholds)
    return Calibrated(
        kind,
        picked,
        table,
        model,
        out.network,
        post,
        thresholds,
        rule,
        out.scores_from,
        good_scores,
    )


def _map(x: np.ndarray, distances: np.ndarray, spec, on_part: np.ndarray) -> np.ndarray:
    """The box's anomaly map of a head's distances, zero off the part."""
    return anomaly_map.compute(x, distances, spec) * on_part


def _probe_scores(probe: np.ndarray, val: Validation, xs, spec, post) -> np.ndarray:
    """Image scores (images, variants) of the synthetic defect variants."""
    out = np.empty(probe.shape[:2])
    for m, i in enumerate(val.probe_idx):
        maps = np.stack([_map(xs[i], d, spec, val.shown[i]) for d in probe[m]])
        out[m] = calibrate.image_scores(maps, post)
    return out


def _defect_scores(defects, p: Prepared, model: FeatureModel, spec, post) -> np.ndarray | None:
    if defects is None:
        return None
    maps = []
    for frame in dataset.read_frames(defects.train):
        x = preprocess(frame, p.pre)
        maps.append(anomaly_map.compute(x, model.infer(x), spec) * shown(frame.shape, p.pre))
    return calibrate.image_scores(np.stack(maps), post)


def _camera_line(p: Prepared, opts: FitOptions) -> str:
    kinds = sorted({path.suffix.lower().lstrip(".") for path in p.ds.train})
    if opts.camera == "jpeg":
        return (
            "camera: jpeg (a compressing stream): the head learns a JPEG copy of every good "
            "image and the thresholds allow for them"
        )
    return (
        f"camera: as the training images ({', '.join(kinds)} files); if the line's camera "
        "compresses frames the training images did not go through (MJPEG, RTSP), fit with "
        "--camera jpeg"
    )


def _predicted_vs_counted(rates: dict, results: list[evaluate.Result]) -> str:
    good = [r.inspection.verdict for r in results if not r.sample.defective]
    counted = "no good test parts"
    if good:
        review = np.mean([v != "pass" for v in good])
        counted = f"{review:.1%} / {np.mean([v == 'fail' for v in good]):.1%}"
    return (
        f"good parts to review or worse / failed: predicted {rates['review_or_fail_rate']:.1%} / "
        f"{rates['false_reject_rate']:.1%}, counted on the test split {counted}"
    )


def _npz(model: FeatureModel) -> bytes:
    """The head's arrays, float16."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **model.head.to_arrays())
    return buf.getvalue()


def _head_spec(model: FeatureModel, net: Backbone) -> tuple[Head, str]:
    """The manifest's head section and the architecture's description."""
    head = model.head
    if isinstance(head, GaussianHead):
        kind, dims, network = GAUSSIAN, head.projection.shape[1], None
    elif isinstance(head, MemoryBankHead):
        kind, dims, network = MEMORY_BANK, len(head.bank), "head.tflite"
    else:
        kind, dims, network = AUTOENCODER, autoencoder.BOTTLENECK, "head.tflite"
    spec = Head(kind=kind, network=network, grid=net.grid, channels=net.channels, dims=dims)
    return spec, DESCRIPTIONS[kind].format(dims=dims, hood=_hood(net))


def _backbone(cut: bytes, p: Prepared, opts: FitOptions) -> Backbone:
    """The backbone for these inputs: on tiles of the input size where the images are larger."""
    return Backbone(
        cut,
        p.pre.size,
        num_threads=opts.threads,
        neighbourhood=opts.neighbourhood,
        image_size=p.xs.shape[2:0:-1] if p.pre.geometry == "tiles" else None,
        tile_overlap=p.pre.tile_overlap,
    )


def _tiles(net: Backbone) -> str:
    t = net.tiling
    return f", {t.count} tiles of {t.tile_w}x{t.tile_h} over {t.width}x{t.height}" if t else ""


def _hood(net: Backbone) -> str:
    k = net.neighbourhood
    return f", each cell averaged over its {k}x{k} neighbourhood" if k > 1 else ""


def _manifest(p, opts, net, cut, model, stages, calibration, metrics, st, good_scores) -> Manifest:
    head, architecture = _head_spec(model, net)
    return Manifest(
        schema_version=SCHEMA_VERSION,
        model=model_info(p, opts, architecture, None),
        input=net.input,
        features=Features(
            backbone=BackboneSpec(
                source=backbone.SOURCE,
                source_sha256=backbone.SHA256,
                sha256=bundles.sha256_hex(cut),
                layers=backbone.LAYERS,
                outputs=net.outputs,
            ),
            neighbourhood=net.neighbourhood,
            head=head,
        ),
        **manifest_fields(p, stages, calibration, metrics, st, good_scores),
    )
