"""`fit` for the feature family: the pretrained int8 backbone, cut, and a Gaussian head.

No network is trained, so nothing here needs TensorFlow's training loop: the good images'
features are read once, and the head is fitted in seconds. That makes the calibration honest:
thresholds come from cross-validated scores (each good image scored by a head that never saw
it), and the head shipped is then fitted on every good image.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lineside.daemon.core import anomaly_map
from lineside.daemon.core.heads import GaussianHead
from lineside.daemon.core.preprocess import preprocess, shown
from lineside.daemon.runtime import Backbone, FeatureModel
from lineside.deploy import bundle as bundles
from lineside.deploy import signing
from lineside.deploy.manifest import (
    SCHEMA_VERSION,
    Features,
    Head,
    Manifest,
    Postprocess,
    Thresholds,
)
from lineside.deploy.manifest import Backbone as BackboneSpec
from lineside.trainer import (
    backbone,
    calibrate,
    dataset,
    escapes,
    evaluate,
    feature_ae,
    gaussian,
)
from lineside.trainer.feature_choice import (
    HeadChoice,
    Validation,
    choose_geometry,
    choose_head,
    distances,
)
from lineside.trainer.fitting import (
    FitResult,
    Prepared,
    Stages,
    manifest_fields,
    model_info,
    prepare,
    selftest_images,
    split_record,
    write_bundle,
)
from lineside.trainer.options import FitOptions

_BACKBONE = (
    "features: MobileNetV2 int8 (ImageNet) cut after expanded_conv_12, feature maps of "
    "expanded_conv_5 and _12 on one grid{hood}"
)
GAUSSIAN = _BACKBONE + ", PCA to {dims} values, a Gaussian per grid cell (Mahalanobis distance)"
AUTOENCODER = (
    _BACKBONE + ", standardized, reconstructed by an int8 convolutional autoencoder "
    "({dims}-channel bottleneck at half the grid); map = squared error per cell"
)


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
        say(line)
    say(_camera_line(p, opts))
    cut = backbone.cut(backbone.original())
    net = Backbone(cut, p.pre.size, num_threads=opts.threads, neighbourhood=opts.neighbourhood)
    say(
        f"backbone: MobileNetV2 int8 cut to {len(backbone.LAYERS)} feature maps "
        f"({len(cut) / 1024:.0f} KiB), grid {net.grid[0]}x{net.grid[1]}, "
        f"{net.channels} features per cell"
        + (
            f", each averaged over its {opts.neighbourhood}x{opts.neighbourhood} neighbourhood"
            if opts.neighbourhood > 1
            else ""
        )
    )
    p, val, choice, table, geometries = choose_geometry(p, opts, net, say)
    picked = choose_head(opts, val, choice, table, say)
    choice, table = picked.choice, picked.table
    cal = calibrated(p, opts, net, val, picked, defects, say)
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
    stages = Stages(dataset.frame_spec(p.frames), p.pre, choice.spec, post, thresholds)
    calibration = {
        **split_record(p, opts, post.pixel_threshold),
        "selection": {
            "chosen_merit": choice.merit,
            "validation": "head fitted on the training split; held-out good images against the "
            "same images with one synthetic defect each (scratches, cracks, pits, missing "
            "features, stains at three sizes); merit = mean of image AUROC and pixel AUROC",
            "candidates": table,
            "geometries": geometries,
            "heads": picked.merits,
        },
        "thresholds": {**rule, "scores": cal.scores_from},
        "camera": opts.camera,
        "warnings": [w for w in warnings if not w.startswith("!")],
        "neighbourhood": opts.neighbourhood,
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
    model: FeatureModel
    network: bytes | None  # the autoencoder head's int8 network
    post: Postprocess
    thresholds: Thresholds
    rule: dict
    scores_from: str
    good_scores: np.ndarray  # left-out (Gaussian) or validation (autoencoder) scores


def calibrated(p, opts, net, val: Validation, picked: HeadChoice, defects, say) -> Calibrated:
    """The head shipped and the thresholds, from scores of good images the head never saw.

    Gaussian: every good image (with its camera copy, when the camera compresses) scored by the
    head fitted on all the others, exactly (leave one out, by the Woodbury identity), then the
    head fitted on all of them. Autoencoder: trained on the training split, thresholds from the
    validation split (training it once per image would cost hours).
    """
    choice = picked.choice
    if picked.kind == "gaussian":
        groups = _groups(val)
        proj = gaussian.projection(groups.reshape(-1, *groups.shape[2:]))
        own, probe = gaussian.left_out_distances(
            groups, proj, val.probe_feats, val.probe_idx
        )
        maps = _maps(own, val, p.xs, choice.spec)
        head = gaussian.fit(groups.reshape(-1, *groups.shape[2:]), proj)
        say(
            f"Gaussian head fitted on all {len(val.all_feats)} good images"
            + (" and their camera copies" if groups.shape[1] > 1 else "")
        )
        network = None
        scores_from = "leave-one-out: each good image scored by the head fitted on all others" + (
            " (an image and its camera copy left out together)" if groups.shape[1] > 1 else ""
        )
    else:
        head, network = picked.autoencoder
        maps = calibrate.maps_of(val.good_x, distances(head, val.good_feats), choice.spec)
        maps *= val.shown[val.val_idx]
        probe = np.stack([distances(head, f) for f in val.probe_feats])
        scores_from = "the validation split, held out from the autoencoder's training"
    post = Postprocess(
        pixel_threshold=calibrate.pixel_threshold(maps, opts.pixel_quantile),
        min_cluster_px=opts.min_cluster_px,
        score=choice.score,
    )
    model = FeatureModel(net, head)
    good_scores = calibrate.image_scores(maps, post)
    defect_scores = _defect_scores(defects, p, model, choice.spec, post)
    thresholds, rule = calibrate.image_thresholds(good_scores, opts.targets, defect_scores)
    probe_scores = _probe_scores(probe, val, p.xs, choice.spec, post)
    rule["synthetic_defects"] = escapes.tally(probe_scores, thresholds)
    return Calibrated(model, network, post, thresholds, rule, scores_from, good_scores)


def _groups(val: Validation) -> np.ndarray:
    """(N, k, h, w, C): every good image's features, with its camera copy's when there is one."""
    if val.copy_feats is None:
        return val.all_feats[:, None]
    return np.stack([val.all_feats, val.copy_feats], axis=1)


def _maps(own: np.ndarray, val: Validation, xs: np.ndarray, spec) -> np.ndarray:
    """The anomaly maps of left-out distances (N, k, h, w), each masked to the part: (N*k, H, W)."""
    sources = [xs] if own.shape[1] == 1 else [xs, val.copy_xs]
    maps = np.empty((len(sources), *xs.shape[:3]), np.float32)
    for k, images in enumerate(sources):
        for i in range(len(xs)):
            maps[k, i] = anomaly_map.compute(images[i], own[i, k], spec) * val.shown[i]
    return maps.reshape(len(sources) * len(xs), *xs.shape[1:3])


def _probe_scores(probe: np.ndarray, val: Validation, xs, spec, post) -> np.ndarray:
    """Image scores (images, variants) of the synthetic defect variants."""
    out = np.empty(probe.shape[:2])
    for m, i in enumerate(val.probe_idx):
        maps = np.stack([anomaly_map.compute(xs[i], d, spec) * val.shown[i] for d in probe[m]])
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
        dims = head.projection.shape[1]
        return Head(kind="gaussian", grid=net.grid, channels=net.channels, dims=dims), (
            GAUSSIAN.format(dims=dims, hood=_hood(net))
        )
    spec = Head(
        kind="autoencoder",
        network="head.tflite",
        grid=net.grid,
        channels=net.channels,
        dims=feature_ae.BOTTLENECK,
    )
    return spec, AUTOENCODER.format(dims=feature_ae.BOTTLENECK, hood=_hood(net))


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
