"""`lineside-daemon`: inspect files with a bundle (and, on the box, run the service)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from lineside.daemon.service.signals import Signals

# The commands import the pipeline (NumPy, OpenCV, LiteRT: about half a second) when they run,
# so that `run` has its signal handlers installed first and `--help` answers at once.

log = logging.getLogger("lineside.daemon")

THREADS_HELP = "inference threads (default: this box's cores, at most 4)"
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        args.signals = Signals()
        args.signals.install()
    level = logging.INFO if args.command == "run" else logging.WARNING
    # No timestamps: journald stamps each line itself.
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except _refusals() as exc:
        print(f"lineside-daemon: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        # A file the configuration names that the checks could not foresee (a race, a disk).
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lineside-daemon: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


def _refusals() -> tuple[type[Exception], ...]:
    """What is reported in one line with exit status 2. Evaluated only when something was
    raised, by which time the command has loaded these modules."""
    from lineside.daemon.config import ConfigError
    from lineside.daemon.runtime import ModelError
    from lineside.deploy.bundle import BundleError

    return (UsageError, BundleError, ModelError, ConfigError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lineside-daemon", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "inspect",
        help="inspect images, folders or video files; one JSON line per frame on stdout",
        description="Inspect images, folders (recursively) or video files with a bundle. Prints "
        "one JSON line per frame; a frame that cannot be read or inspected gives a line with "
        "'error' and the run goes on (exit status 1 at the end). A missing or broken bundle "
        "exits with status 2.",
    )
    p.add_argument("bundle", type=Path, help="model bundle (.lsb)")
    p.add_argument("paths", type=Path, nargs="+", help="images, folders or video files")
    p.add_argument("--heatmaps", type=Path, metavar="DIR", help="write heatmap overlays (JPEG)")
    p.add_argument("--rules", type=Path, metavar="FILE", help="YAML file with 'rois:' rules")
    p.add_argument("--threads", type=int, help=THREADS_HELP)
    p.set_defaults(func=cmd_inspect)

    r = sub.add_parser(
        "run",
        help="run the line-side service",
        description="Run the inspection service: capture, inspect, publish to MQTT. Stops "
        "cleanly on SIGTERM/SIGINT, reloads on SIGHUP. Exit status 2 for a bad configuration "
        "or bundle at start.",
    )
    r.add_argument("--config", type=Path, required=True, help="YAML configuration file")
    r.add_argument(
        "--exit-when-source-ends",
        action="store_true",
        help="stop when a video or folder source without loop has been played",
    )
    r.set_defaults(func=cmd_run)

    b = sub.add_parser(
        "bench",
        help="measure every stage on this box",
        description="Run the pipeline on a source (default: the bundle's self-test images) with "
        "the capture thread running; print median and p95 ms per stage, frames per second, "
        "overhead as a share of inference, memory and the model's MAC rate.",
    )
    b.add_argument("bundle", type=Path)
    b.add_argument("--source", help="video file, image folder, device index or stream URL")
    b.add_argument("--frames", type=int, default=300)
    b.add_argument("--threads", type=int, help=THREADS_HELP)
    b.add_argument(
        "--capture-fps",
        type=float,
        default=60.0,
        help="pace for file sources (default 60, a fast industrial camera)",
    )
    b.add_argument(
        "--plc",
        type=int,
        metavar="PARTS",
        help="instead: a Modbus TCP PLC on loopback triggers PARTS parts one after another; "
        "print trigger-to-answer latency (needs the plc extra)",
    )
    b.add_argument("--json", action="store_true", help="machine-readable output")
    b.set_defaults(func=cmd_bench)

    c = sub.add_parser("check-config", help="validate a configuration file and its bundle")
    c.add_argument("config", type=Path)
    c.set_defaults(func=cmd_check_config)
    return parser


def load_rules(path: Path | None) -> tuple:
    """ROI rules from a YAML file of the form `rois: [{name, box, expect, ...}]`."""
    if path is None:
        return ()
    import yaml
    from pydantic import TypeAdapter, ValidationError

    from lineside.daemon import config
    from lineside.daemon.core.roi import RoiRule

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise UsageError(f"{path}: cannot read rules ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or set(doc) - {"rois"}:
        raise UsageError(f"{path}: expected a mapping with the single key 'rois'")
    try:
        rules = TypeAdapter(tuple[RoiRule, ...]).validate_python(doc.get("rois") or ())
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UsageError(
            f"{path}: {config.describe({**err, 'loc': ('rois', *err['loc'])})}"
        ) from None
    return rules


def cmd_inspect(args: argparse.Namespace) -> int:
    from lineside.daemon.capture.image_files import read_paths
    from lineside.daemon.core import heatmap
    from lineside.daemon.core.pipeline import Frame, inspect_frame
    from lineside.daemon.core.preprocess import FrameError
    from lineside.daemon.runtime import load_bundle
    from lineside.daemon.sinks.mqtt_topics import inspection_doc

    rules = load_rules(args.rules)
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    bundle, model = load_bundle(args.bundle, num_threads=args.threads)
    manifest = bundle.manifest
    if args.heatmaps:
        args.heatmaps.mkdir(parents=True, exist_ok=True)
    failures = 0
    for seq, item in enumerate(read_paths(args.paths)):
        line: dict = {"seq": seq, "source": item.source}
        try:
            if item.error:
                raise FrameError(item.error)
            insp = inspect_frame(item.frame, manifest, model.infer, rules)
        except FrameError as exc:
            failures += 1
            print(f"lineside-daemon: {item.source}: {exc}", file=sys.stderr)
            line["error"] = str(exc)
        else:
            frame = Frame(item.frame, time.time(), seq)
            line |= inspection_doc(insp, seq, frame, None, bundle, None)
            if args.heatmaps:
                overlay = heatmap.render(item.frame, insp, manifest.postprocess.pixel_threshold)
                out = args.heatmaps / f"{seq:05d}_{item.name}.jpg"
                out.write_bytes(heatmap.encode_jpeg(overlay))
                line["heatmap"] = str(out)
        print(json.dumps(line), flush=True)
    return EXIT_BAD_INPUT if failures else 0


def cmd_run(args: argparse.Namespace) -> int:
    from lineside.daemon.service import lifecycle

    return lifecycle.run(args.config, args.exit_when_source_ends, args.signals)


def cmd_bench(args: argparse.Namespace) -> int:
    from lineside.daemon import bench

    if args.frames < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError("--frames and --threads must be at least 1")
    try:
        if args.plc is not None:
            if args.plc < 1:
                raise UsageError("--plc needs at least 1 part")
            result = bench.plc(args.bundle, args.source, args.plc, args.threads, args.capture_fps)
            print(bench.to_json(result) if args.json else bench.plc_table(result))
            return 0
        result = bench.run(args.bundle, args.source, args.frames, args.threads, args.capture_fps)
    except (ValueError, RuntimeError) as exc:
        raise UsageError(str(exc)) from None
    print(bench.to_json(result) if args.json else bench.table(result))
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from lineside.daemon import config
    from lineside.daemon.intake.bundle_store import BundleStore
    from lineside.daemon.runtime import ModelError
    from lineside.daemon.service import lifecycle, preflight
    from lineside.deploy.bundle import BundleError

    cfg = config.load(args.config)
    preflight.check(cfg)
    bundle_path = lifecycle.resolve_bundle(cfg.model.path)
    store = BundleStore(cfg.model.store, cfg.model.trusted_keys, cfg.model.max_bundle_bytes, 1)
    try:
        loaded = store.vet(bundle_path.read_bytes())
    except OSError as exc:
        raise BundleError(f"{bundle_path}: cannot read bundle ({exc.strerror})") from None
    except (BundleError, ModelError) as exc:
        raise type(exc)(f"{bundle_path}: {exc}") from None
    m = loaded.bundle.manifest
    print(
        f"{args.config}: ok (station {cfg.station}, {cfg.source.kind} source, "
        f"{cfg.trigger.mode} trigger, model {m.model.name} {m.model.version} from {bundle_path})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
