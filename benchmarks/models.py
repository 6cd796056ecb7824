"""Model against model: speed on this box and quality on the bundle's own test split.

    .venv/bin/python benchmarks/models.py out/quality/bottle-original.lsb \\
        out/quality/bottle-lineside.lsb [more bundles] [--frames 200] [--threads 2]

For each bundle, `lineside-daemon bench` measures the full pipeline with the capture thread
running (the bundle's self-test images as the source), and the quality columns are the metrics
the trainer measured on held-out test images with the same int8 model (the manifest's
`metrics`). Ratios are against the first bundle, all in one run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine
from lineside.daemon import bench
from lineside.deploy.bundle import read


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("bundles", type=Path, nargs="+")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(machine())
    rows = []
    for path in args.bundles:
        manifest = read(path).manifest
        r = bench.run(path, None, args.frames, args.threads)
        rows.append((path.stem, manifest, r))
    print(
        f"\n{'bundle':<26}{'M MACs':>8}{'input':>9}{'infer ms':>9}{'fps':>7}{'overhead':>9}"
        f"{'img AUROC':>10}{'pix AUROC':>10}{'PRO':>7}{'speed':>7}"
    )
    base_fps = rows[0][2]["end_to_end_fps"]
    for name, m, r in rows:
        size = f"{m.preprocess.size[0]}px"
        q = m.metrics
        print(
            f"{name:<26}{(m.model.macs or 0) / 1e6:>8.0f}{size:>9}"
            f"{r['stages_ms']['inference']['median']:>9.2f}{r['end_to_end_fps']:>7.1f}"
            f"{r['overhead_ratio']:>9.1%}{_num(q.get('image_auroc')):>10}"
            f"{_num(q.get('pixel_auroc')):>10}{_num(q.get('pro_auc_0.3')):>7}"
            f"{r['end_to_end_fps'] / base_fps:>6.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
