"""`lineside-train`: make synthetic data, fit a bundle, evaluate a bundle."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from lineside.deploy.manifest import GEOMETRIES, HEAD_KINDS, MAP_KINDS, SCORE_NAMES
from lineside.trainer.options import (
    AUTO,
    CAMERAS,
    DEFAULT,
    FAMILY_DEFAULTS,
    FEATURE_SIZES,
    MODELS,
    FitOptions,
    Targets,
    default,
    describe,
)

EXIT_USAGE = 2
# Fit options whose command-line flag is not `--` + the option's name.
FLAGS = {
    "min_cluster_px": "--min-cluster",
    "blur_ksize": "--blur",
    "anomaly_map": "--map",
    "targets.false_reject": "--false-reject-target",
    "targets.review": "--review-target",
    "targets.escape": "--escape-target",
}


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (CPU features, no CUDA) hides the progress lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Progress lines must reach a log file or a pipe as they happen, not when a buffer fills.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    args = _parser().parse_args(argv)
    return args.func(args)


def _crop(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H in pixels, got {text!r}") from None
    return x, y, w, h


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lineside-train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic part dataset (MVTec AD layout)")
    s.add_argument("out", type=Path)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--train", type=int, default=150, help="good training images (default 150)")
    s.add_argument("--test-good", type=int, default=20)
    s.add_argument("--test-per-defect", type=int, default=8)
    s.add_argument("--size", type=int, default=256, help="image width and height in pixels")
    s.set_defaults(func=cmd_synth)

    v = sub.add_parser("synth-video", help="write an MJPEG video of parts passing the camera")
    v.add_argument("out", type=Path, help="video file (.avi)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--frames", type=int, default=60)
    v.add_argument("--fps", type=float, default=10.0)
    v.add_argument("--defect-every", type=int, default=4, help="every Nth part is defective")
    v.add_argument("--kinds", type=Path, help="also write what each frame shows, as JSON")
    v.set_defaults(func=cmd_synth_video)

    f = sub.add_parser(
        "fit",
        help="train, export int8, calibrate and write a bundle",
        description="Fit the model on the good images of one or more DATA folders (MVTec AD "
        "layout or plain folders), export int8 TFLite, calibrate thresholds on held-out good "
        "images with the int8 model, evaluate on each DATA/test present, and write the bundle.",
    )
    f.add_argument(
        "data",
        type=Path,
        nargs="+",
        help="one or more dataset folders (MVTec AD layout or plain folders of good images), "
        "e.g. the original set and the parts pulled from the line (lineside-deploy pull)",
    )
    f.add_argument("--out", type=Path, required=True, help="bundle file to write (.lsb)")
    f.add_argument(
        "--model",
        choices=list(MODELS),
        default=DEFAULT,
        help="features (default): the pretrained int8 MobileNetV2 backbone with a Gaussian per "
        "feature-grid cell; lineside: a pixel autoencoder (plain convs, bilinear upsampling, SSIM "
        "+ squared-error loss); original: the original method's model",
    )
    f.add_argument(
        "--repair",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="lineside models: train on good images with synthetic defects pasted in, against "
        "the clean image (default: off; see docs/quality.md for when it helps)",
    )
    pixel = FAMILY_DEFAULTS["pixel"]
    f.add_argument(
        "--image-size",
        type=int,
        help="model input width and height (default: features "
        f"{' or '.join(map(str, FEATURE_SIZES))} px, the larger tried when the frames are at "
        f"least that large and kept when validation says so, rgb; pixel autoencoders "
        f"{pixel['image_size']} px, {pixel['color']})",
    )
    f.add_argument("--color", choices=["gray", "rgb"], help="default: by model, see above")
    f.add_argument(
        "--equalize",
        action=argparse.BooleanOptionalAction,
        help="histogram equalization (default: on for pixel autoencoders, off for features)",
    )
    f.add_argument("--blur", dest="blur_ksize", type=int, default=0, help="Gaussian kernel, odd")
    f.add_argument("--crop", type=_crop, help="X,Y,W,H in frame pixels")
    f.add_argument(
        "--head",
        choices=[AUTO, *HEAD_KINDS],
        default=AUTO,
        help="features model: gaussian (a Gaussian per feature-grid cell), memory_bank (distance "
        "to the nearest of a coreset of good patches) or autoencoder (an int8 autoencoder "
        "reconstructing the features); auto: gaussian and memory_bank are both fitted and "
        "calibrated, and the one that passes fewer synthetic defects at its own thresholds is "
        "kept",
    )
    f.add_argument(
        "--neighbourhood",
        type=int,
        default=default("neighbourhood"),
        help="features model: average each feature cell over this many cells square before the "
        "head, odd (default 3; 1 = off)",
    )
    f.add_argument(
        "--camera",
        choices=list(CAMERAS),
        default=default("camera"),
        help="features model: how the line's camera delivers frames. as_trained (default): "
        "through the same image path as the training images; jpeg: a compressing stream "
        "(MJPEG, RTSP) the training images did not go through, so JPEG copies of every good "
        "image are learnt and allowed for in the thresholds",
    )
    f.add_argument(
        "--geometry",
        choices=[AUTO, *GEOMETRIES],
        default=AUTO,
        help="fit frames to the square input: squash, letterbox (keep the aspect ratio, pad), or "
        "tiles (features model: keep the frame's resolution, times --tile-scale, and inspect "
        "overlapping tiles of --image-size px, default 224; for large frames with small "
        "defects; frames of one size); auto: the features model squashes, and for frames with a "
        "short side of 640 px or more also tries tiles over the frame brought to at most 1024 px "
        "long; autoencoders squash",
    )
    f.add_argument(
        "--tile-scale",
        type=float,
        default=default("tile_scale"),
        help="with tiles: scale the frame by this before tiling (default 1: native resolution)",
    )
    f.add_argument(
        "--epochs", type=int, default=default("epochs"), help="at most; stops early (default 60)"
    )
    f.add_argument("--batch-size", type=int, default=default("batch_size"))
    f.add_argument("--val-fraction", type=float, default=default("val_fraction"))
    f.add_argument(
        "--seed", type=int, default=default("seed"), help="split, weights and augmentation"
    )
    f.add_argument("--pixel-quantile", type=float, default=default("pixel_quantile"))
    f.add_argument(
        "--min-cluster", dest="min_cluster_px", type=int, default=default("min_cluster_px")
    )
    f.add_argument(
        "--map",
        dest="anomaly_map",
        choices=[AUTO, *MAP_KINDS],
        default=AUTO,
        help="anomaly map; auto: chosen on validation (the original model keeps squared_error)",
    )
    f.add_argument(
        "--score",
        choices=[AUTO, *SCORE_NAMES],
        default=AUTO,
        help="image score; auto: chosen on validation (original: anomalous_fraction)",
    )
    f.add_argument(
        "--false-reject-target",
        type=_rate,
        default=Targets.model_fields["false_reject"].default,
        help="good validation parts failed at fail_at, at most (default 0.005)",
    )
    f.add_argument(
        "--review-target",
        type=_rate,
        default=Targets.model_fields["review"].default,
        help="good validation parts sent to review or worse, at most (default 0.05)",
    )
    f.add_argument(
        "--escape-target",
        type=_rate,
        default=Targets.model_fields["escape"].default,
        help="defective validation parts passed, at most (needs --val-defects; default 0.05)",
    )
    f.add_argument(
        "--fail-margin",
        type=float,
        default=Targets.model_fields["fail_margin"].default,
        help="fail_at sits this share of (quantile - median) above the good validation "
        "quantile (default 0.5); raise it when validation images are few",
    )
    f.add_argument(
        "--val-defects",
        type=Path,
        help="folder of defective images not in DATA: review_at is lowered to meet the escape "
        "target on them",
    )
    f.add_argument("--threads", type=int, default=default("threads"))
    f.add_argument("--name", help="model name (default: the dataset folder's name)")
    f.add_argument("--version", help="model version (default: a UTC timestamp)")
    f.add_argument(
        "--report",
        type=Path,
        help="folder for report.html and metrics.json (default: next to the bundle, "
        "BUNDLE-report/; written when DATA has a test split)",
    )
    f.add_argument("--metrics", type=Path, help="also write the evaluation metrics here as JSON")
    f.add_argument("--sign-key", type=Path, help="sign the bundle with this Ed25519 key")
    f.set_defaults(func=cmd_fit)

    e = sub.add_parser("evaluate", help="evaluate a bundle on a labelled test split")
    e.add_argument("bundle", type=Path)
    e.add_argument("data", type=Path, help="dataset in the MVTec AD layout with a test/ folder")
    e.add_argument("--threads", type=int, default=2)
    e.add_argument(
        "--report",
        type=Path,
        help="folder for report.html and metrics.json (default: BUNDLE-report/ next to it)",
    )
    e.add_argument("--metrics", type=Path, help="also write the metrics here as JSON")
    e.set_defaults(func=cmd_evaluate)
    return parser


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), got {value}")
    return value


def _fail(message: str) -> int:
    print(f"lineside-train: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_synth(args: argparse.Namespace) -> int:
    from lineside.trainer.synth import write_dataset

    counts = write_dataset(
        args.out,
        seed=args.seed,
        train=args.train,
        test_good=args.test_good,
        test_per_defect=args.test_per_defect,
        size=args.size,
        progress=print,
    )
    print(f"{sum(counts.values())} images written to {args.out}")
    return 0


def cmd_synth_video(args: argparse.Namespace) -> int:
    from lineside.trainer.synth import write_video

    kinds = write_video(args.out, args.seed, args.frames, args.fps, args.defect_every)
    defective = sum(k != "good" for k in kinds)
    if args.kinds:
        args.kinds.write_text(json.dumps(kinds))
    print(f"{len(kinds)} frames ({defective} defective parts) written to {args.out}")
    return 0


def fit_options(args: argparse.Namespace) -> FitOptions:
    """The fit options from the command line; raises ValueError naming the flag."""
    targets = {
        "false_reject": args.false_reject_target,
        "review": args.review_target,
        "escape": args.escape_target,
        "fail_margin": args.fail_margin,
    }
    fields = {k: v for k, v in vars(args).items() if k in FitOptions.model_fields}
    try:
        return FitOptions.model_validate({**fields, "targets": Targets.model_validate(targets)})
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err["loc"]:
            raise ValueError(describe(err)) from None
        key = ".".join(str(p) for p in err["loc"])
        if exc.title == "Targets":
            key = f"targets.{key}"
        flag = FLAGS.get(key, "--" + key.removeprefix("targets.").replace("_", "-"))
        raise ValueError(f"{flag}: {describe(err)}") from None


def cmd_fit(args: argparse.Namespace) -> int:
    # Every option is checked before TensorFlow loads, let alone training starts.
    try:
        opts = fit_options(args)
    except ValueError as exc:
        return _fail(str(exc))
    # Heavy modules load here, not at start, so `synth`, `--help` and bad options stay quick.
    from lineside.deploy.signing import SignatureError
    from lineside.trainer.dataset import DatasetError
    from lineside.trainer.evaluate import summary_lines
    from lineside.trainer.features.backbone import BackboneError
    from lineside.trainer.quiet import silenced

    with silenced():  # TensorFlow's start-up lines (oneDNN, no CUDA) are not our progress
        from lineside.trainer.fit import fit

    try:
        result = fit(args.data, args.out, opts)
    except (DatasetError, SignatureError, BackboneError) as exc:
        return _fail(str(exc))
    if result.metrics:
        print("\n".join(summary_lines(result.metrics)))
        if args.metrics:
            args.metrics.write_text(json.dumps(result.metrics, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lineside.daemon.runtime import ModelError, load_bundle
    from lineside.deploy.bundle import BundleError
    from lineside.trainer import dataset, evaluate

    try:
        bundle, model = load_bundle(args.bundle, num_threads=args.threads)
        ds = dataset.load(args.data)
    except (BundleError, ModelError, dataset.DatasetError) as exc:
        return _fail(str(exc))
    if not ds.test:
        return _fail(f"{args.data}: no test/ folder to evaluate on")
    from lineside.trainer import report

    manifest = bundle.manifest
    results = evaluate.run(ds.test, manifest, model, print)
    m = evaluate.metrics(results, manifest.thresholds)
    print("\n".join(evaluate.summary_lines(m)))
    report.write(args.report or report.default_dir(args.bundle), manifest, m, results)
    if args.metrics:
        args.metrics.write_text(json.dumps(m, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
