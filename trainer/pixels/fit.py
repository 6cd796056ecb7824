"""`fit` for the pixel family: an autoencoder of the frame's pixels, trained here on good images,
exported int8, calibrated and packed with its report."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lineside.daemon.core.preprocess import preprocess
from lineside.daemon.runtime import Model
from lineside.deploy import signing
from lineside.deploy.manifest import (
    SCHEMA_VERSION,
    Manifest,
    Postprocess,
    SelfTest,
)
from lineside.trainer import agreement, augment, calibrate, dataset, evaluate
from lineside.trainer.export import to_float_tflite, to_int8_tflite
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
from lineside.trainer.options import (
    ARCHITECTURES,
    AUTO,
    AUTO_SCORES,
    Architecture,
    FitOptions,
)
from lineside.trainer.pixels.model import build, count_macs
from lineside.trainer.pixels.train import train


def candidates(opts: FitOptions) -> calibrate.Candidates:
    """What the map and score are chosen from: the original model keeps the original method's
    (squared error, unsmoothed, share of flagged pixels) unless --map or --score says otherwise."""
    original = not ARCHITECTURES[opts.model].denoising
    if original and opts.anomaly_map == AUTO and opts.score == AUTO:
        return calibrate.Candidates(("squared_error",), ("anomalous_fraction",), (0.0,))
    kinds = calibrate.KINDS if opts.anomaly_map == AUTO else (opts.anomaly_map,)
    scores = AUTO_SCORES if opts.score == AUTO else (opts.score,)
    return calibrate.Candidates(kinds, scores)


def fit(
    data: Path | Sequence[Path], out: Path, opts: FitOptions, say: Callable[[str], None] = print
) -> FitResult:
    """Train the pixel autoencoder `opts.model` names on DATA's good images; write the bundle."""
    started = time.monotonic()
    key = signing.load_private(opts.sign_key) if opts.sign_key else None  # fail before training
    if opts.val_defects:
        dataset.load(opts.val_defects)  # likewise: a wrong folder is an error now, not in an hour
    p = prepare(data, opts)
    say(
        f"{p.ds.describe()}: {len(p.train_idx)} train, "
        f"{len(p.val_idx)} validation (seed {opts.seed})"
    )
    net, history = train_network(p, opts, say)
    train_seconds = time.monotonic() - started
    say("exporting int8 TFLite")
    tflite = export_int8(net, p, opts)
    model = Model(tflite, num_threads=opts.threads)
    float_model = Model(to_float_tflite(net), num_threads=opts.threads)
    cal = calibrated(p, opts, model, say, float_model)
    calibration = {
        **cal.calibration,
        "history": history,
        "train_seconds": round(train_seconds, 1),
    }
    metrics: dict = {}
    results: list[evaluate.Result] = []
    if p.ds.test:
        say(f"evaluating on {len(p.ds.test)} test images with the int8 model")
        results = evaluate.run(p.ds.test, cal.stages, model, say)
        metrics = evaluate.metrics(results, cal.stages.thresholds)
        metrics["int8_vs_float"] = agreement.on_test(results, float_model, cal.stages)
    st, st_files = selftest_images([p.frames[i] for i in cal.val_idx], results, cal.stages, model)
    manifest = _manifest(
        p, opts, model, count_macs(net), cal.stages, calibration, metrics, st, cal.good_scores
    )
    files = {"model.tflite": tflite, **st_files}
    return write_bundle(out, manifest, files, key, opts, metrics, results, say)


def train_network(p: Prepared, opts: FitOptions, say: Callable[[str], None]):
    """Build and train the Keras model; returns (model, loss history)."""
    net = build(opts.model, opts.image_size, opts.image_size, p.xs.shape[-1])
    say(
        f"model '{opts.model}': {net.count_params():,} parameters, "
        f"{count_macs(net) / 1e6:.0f} M MACs per frame, input {p.xs.shape[1:]}"
    )
    arch = training_recipe(opts)
    x_train, x_val = p.xs[p.train_idx], p.xs[p.val_idx]
    history = train(net, arch, x_train, x_val, opts.epochs, opts.batch_size, opts.seed, say)
    return net, history


def training_recipe(opts: FitOptions) -> Architecture:
    """The architecture as trained: on good images only unless `repair` is on."""
    arch = ARCHITECTURES[opts.model]
    if not arch.denoising:  # the original family has one recipe, in its description
        return arch
    data = "synthetic defects against the clean image" if opts.repair else "good images only"
    return dataclasses.replace(
        arch, description=f"{arch.description}; trained on {data}", denoising=opts.repair
    )


def export_int8(net, p: Prepared, opts: FitOptions) -> bytes:
    representative = p.xs[p.train_idx]
    if ARCHITECTURES[opts.model].denoising:  # defects too, so their activations fit the ranges
        representative = np.concatenate(
            [representative[:70], augment.defective_copies(representative[:30], opts.seed)[0]]
        )
    return to_int8_tflite(net, representative)


@dataclass(frozen=True)
class Calibrated:
    stages: Stages
    calibration: dict
    val_idx: np.ndarray
    good_scores: np.ndarray  # of the validation images, for the drift reference


def calibrated(
    p: Prepared,
    opts: FitOptions,
    model: Model,
    say: Callable[[str], None] = print,
    float_model: Model | None = None,
) -> Calibrated:
    """Choose map and score, pixel threshold and image thresholds for an exported model."""
    # Validation: the held-out good images, and the same images with a synthetic defect each.
    val_idx = p.val_idx if len(p.val_idx) else p.train_idx
    good_x = p.xs[val_idx]
    bad_x, bad_masks = augment.defective_copies(good_x, opts.seed + 1, augment.SUBTLE)
    good = (good_x, calibrate.reconstructions(model, good_x))
    bad = (bad_x, calibrate.reconstructions(model, bad_x))
    choice, table = calibrate.choose(
        good, bad, bad_masks, candidates(opts), opts.pixel_quantile, opts.min_cluster_px
    )
    say(
        f"anomaly map '{choice.spec.kind}' smoothed sigma {choice.spec.smooth_sigma:g}, score "
        f"'{choice.score}': validation merit {choice.merit:.3f} (image and pixel AUROC, good vs "
        "faint synthetic defects)"
    )
    post = Postprocess(
        pixel_threshold=choice.pixel_threshold,
        min_cluster_px=opts.min_cluster_px,
        score=choice.score,
    )
    # The validation inputs are the frames preprocessed as the box does: score them directly.
    val_scores = calibrate.image_scores(calibrate.maps_of(*good, choice.spec), post)
    defect_scores = None
    if opts.val_defects:
        defect_frames = dataset.read_frames(dataset.load(opts.val_defects).train)
        xs = np.stack([preprocess(f, p.pre) for f in defect_frames])
        maps = calibrate.maps_of(xs, calibrate.reconstructions(model, xs), choice.spec)
        defect_scores = calibrate.image_scores(maps, post)
    floor = opts.min_cluster_px / opts.image_size**2 if choice.score == "anomalous_fraction" else 0
    thresholds, rule = calibrate.image_thresholds(val_scores, opts.targets, defect_scores, floor)
    say(
        f"pixel threshold {post.pixel_threshold:.5g} (q{opts.pixel_quantile}); "
        f"review_at {thresholds.review_at:.5g}, fail_at {thresholds.fail_at:.5g}"
    )
    stages = Stages(dataset.frame_spec(p.frames), p.pre, choice.spec, post, thresholds)
    calibration = {
        **split_record(p, opts, post.pixel_threshold),
        "selection": {
            "chosen_merit": choice.merit,
            "validation": "held-out good images against the same images with one faint "
            "synthetic defect each; merit = mean of image AUROC and pixel AUROC",
            "candidates": table,
        },
        "thresholds": rule,
    }
    if float_model is not None:
        agree = agreement.compare(float_model, stages, good, bad)
        say(f"int8 vs float on validation: {agreement.summary_line(agree)}")
        calibration["int8_vs_float"] = agree
    return Calibrated(stages, calibration, val_idx, val_scores)


def _manifest(
    p: Prepared,
    opts: FitOptions,
    model: Model,
    macs: int,
    stages: Stages,
    calibration: dict,
    metrics: dict,
    selftest: SelfTest,
    good_scores: np.ndarray,
) -> Manifest:
    """The bundle's manifest, made once, when everything in it is known."""
    return Manifest(
        schema_version=SCHEMA_VERSION,
        model=model_info(p, opts, f"{opts.model}: {training_recipe(opts).description}", macs),
        input=model.input,
        output=model.output,
        **manifest_fields(p, stages, calibration, metrics, selftest, good_scores),
    )
