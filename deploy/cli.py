"""`lineside-deploy`: keys, signing, checking, pushing and rolling back model bundles."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lineside.deploy import bundle as bundles
from lineside.deploy import pull, push, signing
from lineside.deploy.bundle import BundleError

EXIT_USAGE = 2


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lineside-deploy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    k = sub.add_parser("keygen", help="make an Ed25519 key pair (private key mode 0600)")
    k.add_argument("--out", type=Path, required=True, help="folder for NAME.key and NAME.pub")
    k.add_argument("--name", default="lineside", help="key file name (default lineside)")
    k.set_defaults(func=cmd_keygen)

    s = sub.add_parser("sign", help="sign a bundle in place with a private key")
    s.add_argument("bundle", type=Path)
    s.add_argument("--key", type=Path, required=True)
    s.set_defaults(func=cmd_sign)

    v = sub.add_parser("verify", help="check a bundle and print every check made")
    v.add_argument("bundle", type=Path)
    v.add_argument("--trusted", type=Path, help="folder of trusted *.pub keys (signature needed)")
    v.set_defaults(func=cmd_verify)

    show = sub.add_parser("show", help="print a bundle's manifest summary")
    show.add_argument("bundle", type=Path)
    show.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    show.set_defaults(func=cmd_show)

    for name, helptext in (
        ("push", "send a bundle to one station or all, and wait for each reply"),
        ("rollback", "return stations to their previous bundle"),
        ("status", "list what every station runs (from retained MQTT topics)"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "push":
            p.add_argument("bundle", type=Path)
        p.add_argument("--broker", type=_broker, required=True, metavar="HOST:PORT")
        p.add_argument("--prefix", default="lineside")
        _connection_options(p)
        if name == "rollback":
            p.add_argument(
                "--key",
                type=Path,
                help="private key that signs the rollback (stations with trusted keys need it)",
            )
        if name != "status":
            who = p.add_mutually_exclusive_group(required=True)
            who.add_argument("--station")
            who.add_argument("--all", action="store_true", help="every station on the broker")
            p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (60)")
        p.set_defaults(
            func={"push": cmd_push, "rollback": cmd_rollback, "status": cmd_status}[name]
        )
    pl = sub.add_parser(
        "pull",
        help="fetch the parts a station's operators labelled, as a dataset folder",
        description="Fetch the labelled parts of one station's review queue: good parts to "
        "OUT/train/good, confirmed defects to OUT/defective; then "
        "`lineside-train fit ORIGINAL OUT --val-defects OUT/defective --out new.lsb`.",
    )
    pl.add_argument("--station", required=True)
    pl.add_argument("--out", type=Path, required=True, help="dataset folder to write into")
    pl.add_argument("--broker", type=_broker, required=True, metavar="HOST:PORT")
    pl.add_argument("--prefix", default="lineside")
    pl.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (60)")
    _connection_options(pl)
    pl.set_defaults(func=cmd_pull)
    return parser


def _connection_options(p: argparse.ArgumentParser) -> None:
    """The daemon's connection options: TLS and a broker account, the password from a file."""
    p.add_argument("--tls-ca", type=Path, metavar="FILE", help="CA certificate: connect with TLS")
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="client certificate (TLS)")
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="client certificate's key (TLS)")
    p.add_argument("--username", help="broker account")
    p.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="file holding the account's password (never on the command line)",
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (BundleError, signing.SignatureError, push.PushError) as exc:
        print(f"lineside-deploy: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def cmd_keygen(args: argparse.Namespace) -> int:
    private, public = signing.generate(args.out, args.name)
    key = signing.load_private(private)
    print(f"private key {private} (mode 0600: keep it off the boxes)")
    print(f"public key  {public} (copy into each box's trusted-keys folder)")
    print(f"key id      {signing.key_id(key.public_key())}")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    key = signing.load_private(args.key)
    try:
        data = args.bundle.read_bytes()
    except OSError as exc:
        raise BundleError(f"{args.bundle}: cannot read bundle ({exc.strerror})") from None
    signed = bundles.sign(data, key)
    bundles.parse(signed, {signing.key_id(key.public_key()): key.public_key()})
    bundles.write_atomic(args.bundle, signed)
    print(f"{args.bundle}: signed with key {signing.key_id(key.public_key())}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    trusted = signing.load_trusted(args.trusted) if args.trusted else None
    b = bundles.read(args.bundle, trusted)
    _summary(args.bundle, b)
    for check in b.checks:
        print(f"  ok  {check}")
    print("model load, tensor shapes and self-test run on the box before it takes the bundle")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    b = bundles.read(args.bundle)
    if args.json:
        print(json.dumps(b.manifest.model_dump(mode="json"), indent=2))
        return 0
    _summary(args.bundle, b)
    return 0


def _summary(path: Path, b: bundles.Bundle) -> None:
    m = b.manifest
    frame = f"{m.frame.width or 'any'}x{m.frame.height or 'any'}x{m.frame.channels}"
    rows = [
        ("bundle", f"{path} (sha256 {b.sha256[:16]}...)"),
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
        (
            "self-test",
            f"{len(m.selftest.images)} images, tolerance {m.selftest.tolerance:.3g}"
            if m.selftest
            else "none",
        ),
        ("files", ", ".join(f"{n} ({h[:12]}...)" for n, h in m.files.items())),
    ]
    if "image_auroc" in m.metrics:
        rows.insert(-1, ("test image AUROC", f"{m.metrics['image_auroc']:.3f}"))
    for key, value in rows:
        print(f"{key:<17} {value}")


def _on_line(args: argparse.Namespace, action) -> list[dict]:
    """Run `action(line)` on a short MQTT session with the broker, closing it afterwards."""
    host, port = args.broker
    options = push.Connect(
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        username=args.username,
        password_file=args.password_file,
    )
    line = push.Line(host, port, args.prefix, connect=options)
    try:
        return action(line)
    finally:
        line.close()


def _report(rows: list[dict]) -> int:
    print(push.table(rows))
    return 0 if all(r["result"] == "ok" for r in rows) else 1


def cmd_push(args: argparse.Namespace) -> int:
    b = bundles.read(args.bundle)  # refuse a broken file before sending it anywhere
    data = args.bundle.read_bytes()
    station = None if args.all else args.station
    return _report(
        _on_line(args, lambda line: push.push(line, data, b.sha256, station, args.timeout))
    )


def cmd_rollback(args: argparse.Namespace) -> int:
    station = None if args.all else args.station
    key = signing.load_private(args.key) if args.key else None
    return _report(_on_line(args, lambda line: push.rollback(line, station, args.timeout, key)))


def cmd_pull(args: argparse.Namespace) -> int:
    got = _on_line(args, lambda line: pull.pull(line, args.station, args.out, args.timeout))
    print(
        f"{args.station}: {got['good']} good parts to {args.out / 'train' / 'good'}, "
        f"{got['defective']} defective to {args.out / 'defective'}"
        + (f" ({got['left_out']} left out: over the size limit)" if got["left_out"] else "")
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    print(push.table(_on_line(args, push.status)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
