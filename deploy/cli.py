"""`lineside-deploy`: look inside bundle files before they go to a box."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lineside.deploy.bundle import BundleError, read

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lineside-deploy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser(
        "show", help="verify a bundle's structure and hashes and print its manifest summary"
    )
    show.add_argument("bundle", type=Path)
    show.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    show.set_defaults(func=cmd_show)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BundleError as exc:
        print(f"lineside-deploy: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def cmd_show(args: argparse.Namespace) -> int:
    bundle = read(args.bundle)
    m = bundle.manifest
    if args.json:
        print(json.dumps(m.model_dump(mode="json"), indent=2))
        return 0
    frame = f"{m.frame.width or 'any'}x{m.frame.height or 'any'}x{m.frame.channels}"
    rows = [
        ("bundle", f"{args.bundle} (sha256 {bundle.sha256[:16]}...)"),
        ("model", f"{m.model.name} {m.model.version}, created {m.model.created_at}"),
        ("architecture", m.model.architecture),
        (
            "input",
            f"{m.input.dtype}{list(m.input.shape)} scale {m.input.scale:.6g} "
            f"zero point {m.input.zero_point}",
        ),
        ("frames", frame),
        ("preprocess", m.preprocess.model_dump_json()),
        (
            "pixel threshold",
            f"{m.postprocess.pixel_threshold:.6g}, clusters under "
            f"{m.postprocess.min_cluster_px} px removed",
        ),
        (
            "thresholds",
            f"review_at {m.thresholds.review_at:.6g}, fail_at {m.thresholds.fail_at:.6g}",
        ),
        ("files", ", ".join(f"{n} ({h[:12]}...)" for n, h in m.files.items())),
        ("checks", "zip structure, manifest schema, SHA-256 of every file: ok"),
    ]
    if "image_auroc" in m.metrics:
        rows.insert(-2, ("test image AUROC", f"{m.metrics['image_auroc']:.3f}"))
    for key, value in rows:
        print(f"{key:<17} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
