"""`fit` for the feature family: the pretrained int8 backbone, cut, and a Gaussian head.

No network is trained, so nothing here needs TensorFlow's training loop: the good images'
features are read once, and the head is fitted in seconds. That makes the calibration honest:
thresholds come from cross-validated scores (each good image scored by a head that never saw
it), and the head shipped is then fitted on every good image.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lineside.daemon.core import anomaly_map
from lineside.daemon.core.preprocess import preprocess
from lineside.daemon.runtime import Backbone, FeatureModel
from lineside.deploy import bundle as bundles
from lineside.deploy import signing
from lineside.deploy.manifest import (
    FEATURE_MAP,
    SCHEMA_VERSION,
    Features,
    Head,
    Manifest,
    Postprocess,
)
from lineside.deploy.manifest import Backbone as BackboneSpec
from lineside.trainer import augment, backbone, calibrate, dataset, evaluate, gaussian, report
from lineside.trainer.fitting import (
    FitResult,
    Prepared,
    Stages,
    model_info,
    prepare,
    selftest_images,
)
from lineside.trainer.options import AUTO, FitOptions

FOLDS = 5
SMOOTHING = (0.0, 2.0, 4.0, 8.0)
SCORES = ("map_max", "top_k_mean")
ARCHITECTURE = (
    "features: MobileNetV2 int8 (ImageNet) cut after expanded_conv_12, feature maps of "
    "expanded_conv_5 and _12 on one grid, PCA to {dims} values, a Gaussian per grid cell "
    "(Mahalanobis distance)"
)


def fit(data: Path, out: Path, opts: FitOptions, say: Callable[[str], None] = print) -> FitResult:
    started = time.monotonic()
    key = signing.load_private(opts.sign_key) if opts.sign_key else None  # fail before work
    defects = dataset.load(opts.val_defects) if opts.val_defects else None
    p = prepare(data, opts)
    say(
        f"{len(p.frames)} good images from {data}: {len(p.train_idx)} to choose the map on, "
        f"{len(p.val_idx)} validation (seed {opts.seed}); thresholds from {FOLDS}-fold "
        "cross-validation over all of them"
    )
    cut = backbone.cut(backbone.original())
    net = Backbone(cut, p.pre.size, num_threads=opts.threads)
    say(
        f"backbone: MobileNetV2 int8 cut to {len(backbone.LAYERS)} feature maps "
        f"({len(cut) / 1024:.0f} KiB), grid {net.grid[0]}x{net.grid[1]}, "
        f"{net.channels} features per cell"
    )
    feats = features_of(net, p.xs, say)
    choice, table = choose_map(p, opts, net, feats, say)
    post = Postprocess(
        pixel_threshold=choice.pixel_threshold,
        min_cluster_px=opts.min_cluster_px,
        score=choice.score,
    )
    oof = cross_validated_maps(feats, p.xs, choice.spec, opts.seed)
    post = post.model_copy(
        update={"pixel_threshold": calibrate.pixel_threshold(oof, opts.pixel_quantile)}
    )
    good_scores = calibrate.image_scores(oof, post)
    proj = gaussian.projection(feats)
    model = FeatureModel(net, gaussian.fit(feats, proj))
    say(f"Gaussian head fitted on all {len(feats)} good images")
    defect_scores = _defect_scores(defects, p, model, choice.spec, post)
    thresholds, rule = calibrate.image_thresholds(good_scores, opts.targets, defect_scores)
    rates = rule["good_validation"]
    say(
        f"pixel threshold {post.pixel_threshold:.5g}; review_at {thresholds.review_at:.5g}, "
        f"fail_at {thresholds.fail_at:.5g}; predicted on good parts the head never saw: "
        f"{rates['review_or_fail_rate']:.1%} to review or worse, "
        f"{rates['false_reject_rate']:.1%} failed"
    )
    stages = Stages(dataset.frame_spec(p.frames), p.pre, choice.spec, post, thresholds)
    calibration = {
        "seed": opts.seed,
        "train_images": [p.ds.train[i].name for i in p.train_idx],
        "validation_images": [p.ds.train[i].name for i in p.val_idx],
        "pixel": {"threshold": post.pixel_threshold, "quantile": opts.pixel_quantile},
        "selection": {
            "chosen_merit": choice.merit,
            "validation": "head fitted on the training split; held-out good images against the "
            "same images with one faint synthetic defect each; merit = mean of image AUROC and "
            "pixel AUROC",
            "candidates": table,
        },
        "thresholds": {**rule, "scores": f"{FOLDS}-fold cross-validated, all good images"},
        "train_seconds": round(time.monotonic() - started, 1),
    }
    metrics: dict = {}
    results: list[evaluate.Result] = []
    if p.ds.test:
        say(f"evaluating on {len(p.ds.test)} test images with the box's pipeline")
        results = evaluate.run(p.ds.test, stages, model, say)
        metrics = evaluate.metrics(results, thresholds)
        say(_predicted_vs_counted(rates, results))
    st, st_files = selftest_images([p.frames[i] for i in p.val_idx], results, stages, model)
    manifest = _manifest(p, opts, net, cut, model, stages, calibration, metrics, st)
    files = {"model.tflite": cut, manifest.features.head.file: _npz(model), **st_files}
    packed = bundles.pack(manifest.model_dump(mode="json", exclude={"files"}), files, key=key)
    bundles.write_atomic(out, packed)
    say(f"bundle written: {out} ({len(packed) / 1024:.0f} KiB)")
    final = bundles.parse(packed).manifest
    report_dir = None
    if results or opts.report:
        report_dir = opts.report or report.default_dir(Path(out))
        report.write(report_dir, final, metrics, results, say)
    return FitResult(final, Path(out), metrics, report_dir)


def features_of(
    net: Backbone, xs: np.ndarray, say: Callable[[str], None] = lambda _: None
) -> np.ndarray:
    """(N, h, w, C) backbone features of preprocessed images."""
    out = np.empty((len(xs), *net.grid, net.channels), np.float32)
    for i, x in enumerate(xs):
        out[i] = net.features(x)
        if (i + 1) % 200 == 0:
            say(f"features of {i + 1}/{len(xs)} images")
    return out


def distances(head, feats: np.ndarray) -> np.ndarray:
    return np.stack([head.distance(f) for f in feats])


def choose_map(p: Prepared, opts: FitOptions, net: Backbone, feats: np.ndarray, say):
    """Smoothing and score chosen on held-out good images and faint synthetic defects."""
    train, val = p.train_idx, p.val_idx if len(p.val_idx) else p.train_idx
    head = gaussian.fit(feats[train], gaussian.projection(feats[train]))
    good_x = p.xs[val]
    bad_x, bad_masks = augment.defective_copies(good_x, opts.seed + 1, augment.SUBTLE)
    bad_feats = features_of(net, bad_x)
    scores = SCORES if opts.score == AUTO else (opts.score,)
    choice, table = calibrate.choose(
        (good_x, distances(head, feats[val])),
        (bad_x, distances(head, bad_feats)),
        bad_masks,
        calibrate.Candidates((FEATURE_MAP,), scores, SMOOTHING),
        opts.pixel_quantile,
        opts.min_cluster_px,
    )
    say(
        f"map smoothed sigma {choice.spec.smooth_sigma:g}, score '{choice.score}': validation "
        f"merit {choice.merit:.3f} (image and pixel AUROC, good vs faint synthetic defects)"
    )
    return choice, table


def cross_validated_maps(feats: np.ndarray, xs: np.ndarray, spec, seed: int) -> np.ndarray:
    """Every good image's anomaly map from a head fitted on the other folds."""
    maps = np.empty(xs.shape[:3], np.float32)
    for fold in gaussian.folds(len(feats), FOLDS, seed):
        rest = np.setdiff1d(np.arange(len(feats)), fold)
        head = gaussian.fit(feats[rest], gaussian.projection(feats[rest]))
        for i in fold:
            maps[i] = anomaly_map.compute(xs[i], head.distance(feats[i]), spec)
    return maps


def _defect_scores(defects, p: Prepared, model: FeatureModel, spec, post) -> np.ndarray | None:
    if defects is None:
        return None
    xs = [preprocess(f, p.pre) for f in dataset.read_frames(defects.train)]
    maps = np.stack([calibrate.maps_of(x[None], model.infer(x)[None], spec)[0] for x in xs])
    return calibrate.image_scores(maps, post)


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
    buf = io.BytesIO()
    np.savez_compressed(buf, **model.head.to_arrays())
    return buf.getvalue()


def _manifest(p, opts, net, cut, model, stages, calibration, metrics, st) -> Manifest:
    dims = model.head.projection.shape[1]
    return Manifest(
        schema_version=SCHEMA_VERSION,
        model=model_info(p, opts, ARCHITECTURE.format(dims=dims), None),
        input=net.input,
        features=Features(
            backbone=BackboneSpec(
                source=backbone.SOURCE,
                source_sha256=backbone.SHA256,
                sha256=bundles.sha256_hex(cut),
                layers=backbone.LAYERS,
                outputs=net.outputs,
            ),
            head=Head(kind="gaussian", grid=net.grid, channels=net.channels, dims=dims),
        ),
        frame=stages.frame,
        preprocess=stages.preprocess,
        anomaly_map=stages.anomaly_map,
        postprocess=stages.postprocess,
        thresholds=stages.thresholds,
        calibration=calibration,
        dataset=p.ds.summary(),
        metrics=metrics,
        selftest=st,
        files={},
    )
