"""Quality of `fit` on every shared dataset, one table: the figures of docs/quality.md.

    .venv/bin/python benchmarks/quality.py [--sets mvtec-bottle,deeppcb] [--out out/quality]
        [-- extra fit flags, e.g. --head gaussian]

Each set is fitted as a new user would (`lineside-train fit DATA --out X.lsb`, plus any flags
given after `--`), evaluated on its test split with the int8 model through the box's pipeline,
and summarized: image and pixel AUROC, AUPRO, defects caught with 1/5/10% of good parts held
back, escapes, false rejects and good parts to review (counted, with the predicted beside),
fit time and the trainer's peak memory. Synthetic flanges are made first when asked for.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATASETS, ROOT, machine

SETS = ("mvtec-bottle", "magnetic-tile", "mvtec-screw", "bsdata-pitting", "deeppcb", "flanges")
TRAIN = ROOT / ".venv" / "bin" / "lineside-train"


def fit_one(name: str, out: Path, extra: list[str], data: Path | None = None) -> dict:
    """`fit` on a shared set (or on `data`) in a process of its own, summarized."""
    data = data or DATASETS / name
    if name == "flanges":
        data = out / "flange-data"
        if not data.is_dir():
            subprocess.run([str(TRAIN), "synth", str(data), "--seed", "7"], check=True)
    bundle = out / f"{name}.lsb"
    metrics = out / f"{name}.json"
    log = out / f"{name}.log"
    cmd = [str(TRAIN), "fit", str(data), "--out", str(bundle), "--metrics", str(metrics), *extra]
    started = time.monotonic()
    with log.open("w") as f:
        # Each fit in its own process, so its peak memory is its own.
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "maxrss_kb %M", *cmd], stdout=f, stderr=subprocess.STDOUT
        )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        return {"set": name, "error": f"exit {proc.returncode}, see {log}"}
    m = json.loads(metrics.read_text())
    rss = [ln for ln in log.read_text().splitlines() if ln.startswith("maxrss_kb")]
    from lineside.deploy.bundle import read

    manifest = read(bundle).manifest
    rule = manifest.calibration["thresholds"]
    good = m["verdicts"].get("good", {})
    n_good = sum(good.values()) or 1
    return {
        "set": name,
        "head": manifest.features.head.kind if manifest.features else manifest.model.architecture,
        "image_auroc": m["image_auroc"],
        "pixel_auroc": m["pixel_auroc"],
        "aupro": m["pro_auc_0.3"],
        "caught": m["caught_at_good_held_back"],
        "escapes": m["escape_rate"],
        "escapes_predicted": rule.get("synthetic_defects", {}).get("passed"),
        "false_rejects": m["false_reject_rate"],
        "good_to_review": (good.get("review", 0) + good.get("fail", 0)) / n_good,
        "good_to_review_predicted": rule["good_validation"]["review_or_fail_rate"],
        "fit_s": round(seconds),
        "peak_mb": round(int(rss[-1].split()[1]) / 1024) if rss else None,
        "bundle_mb": round(bundle.stat().st_size / 2**20, 1),
    }


def _pct(v) -> str:
    return "-" if v is None else f"{v:.0%}"


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def table(rows: list[dict]) -> str:
    head = (
        "| set | head | image AUROC | pixel AUROC | AUPRO | caught at 1/5/10% good held back "
        "| escapes (predicted) | false rejects | good to review (predicted) | fit | peak memory |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['set']} | {r['error']} |" + " |" * 9)
            continue
        c = r["caught"] or {}
        lines.append(
            f"| {r['set']} | {r['head']} | {_num(r['image_auroc'])} | {_num(r['pixel_auroc'])} "
            f"| {_num(r['aupro'])} | {' / '.join(_pct(v) for v in c.values())} "
            f"| {_pct(r['escapes'])} ({_pct(r['escapes_predicted'])}) "
            f"| {_pct(r['false_rejects'])} | {_pct(r['good_to_review'])} "
            f"({_pct(r['good_to_review_predicted'])}) | {r['fit_s']} s | {r['peak_mb']} MB |"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--out", type=Path, default=ROOT / "out" / "quality")
    p.add_argument("extra", nargs="*", help="flags passed to every fit, after --")
    args = p.parse_args()
    if not DATASETS.is_dir():
        print(f"no datasets at {DATASETS}: nothing to measure")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    print(machine(), "fit", " ".join(args.extra) or "(no flags)")
    rows = []
    for name in args.sets.split(","):
        rows.append(fit_one(name, args.out, args.extra))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"largest trainer peak memory: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
