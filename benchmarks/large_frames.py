"""A 2048x1536 frame with millimetre defects: squashed to the input, or tiles at native resolution.

    .venv/bin/python benchmarks/large_frames.py [--out out/large] [--train 30] [--frames 20]
        [--fits squash,tiles,tiles-half,default] [--bench-only]

Makes synthetic flanges photographed at 2048x1536 (the part about 1,900 px across: at 0.1 mm a
pixel, a flange of 190 mm), and test parts that carry one dark spot 10 px across: a 1 mm pit,
which squashing the frame to 320 px leaves 1.6 px wide. Fits each configuration with the real
trainer (`--geometry squash`, `--geometry tiles` at native resolution and at `--tile-scale
0.5`, and `fit` with no flags), prints its quality on the test split, then `lineside-daemon
bench` on each bundle (its own self-test frames as the source): frames a second end to end and
for the model alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, machine
from benchmarks.quality import fit_one, table
from lineside.trainer import synth

WIDTH, HEIGHT = 2048, 1536
SPOT_RADIUS = 5  # px: a spot 10 px (1 mm) across
FITS = {
    "squash": ["--geometry", "squash"],
    "tiles": ["--geometry", "tiles"],
    "tiles-half": ["--geometry", "tiles", "--tile-scale", "0.5"],
    "default": [],
}
DAEMON = ROOT / ".venv" / "bin" / "lineside-daemon"


def part(split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A flange at 2048x1536 and where a spot would go on its metal (the synthetic spot's
    place), from the project's part generator rendered at 2048 px and cropped."""
    clean, mask = synth.make_image(11, split, "spot", index, size=WIDTH, with_defect=False)
    top = (WIDTH - HEIGHT) // 2
    return clean[top : top + HEIGHT], mask[top : top + HEIGHT]


def small_spot(frame: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(where)
    centre = (int(xs.mean()), int(ys.mean()))
    out = frame.copy()
    cv2.circle(out, centre, SPOT_RADIUS, (40, 40, 40), -1, lineType=cv2.LINE_AA)
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.circle(mask, centre, SPOT_RADIUS, 255, -1)
    return out, mask


def write_data(root: Path, train: int, test: int) -> None:
    folders = {
        "train/good": root / "train" / "good",
        "test/good": root / "test" / "good",
        "test/pit": root / "test" / "pit",
        "masks": root / "ground_truth" / "pit",
    }
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(train):
        cv2.imwrite(str(folders["train/good"] / f"{i:03d}.png"), part("train", i)[0])
    for i in range(test):
        cv2.imwrite(str(folders["test/good"] / f"{i:03d}.png"), part("test-good", i)[0])
        frame, mask = small_spot(*part("test-pit", i))
        cv2.imwrite(str(folders["test/pit"] / f"{i:03d}.png"), frame)
        cv2.imwrite(str(folders["masks"] / f"{i:03d}_mask.png"), mask)


def bench(bundle: Path, frames: int) -> dict:
    out = subprocess.run(
        [str(DAEMON), "bench", str(bundle), "--frames", str(frames), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out[out.index("{") :])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "out" / "large")
    p.add_argument("--train", type=int, default=30)
    p.add_argument("--test", type=int, default=10)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--fits", default=",".join(FITS))
    p.add_argument("--bench-only", action="store_true", help="bench the bundles already made")
    args = p.parse_args()
    data = args.out / "data"
    if not data.is_dir():
        print(f"writing {args.train} good training frames and {2 * args.test} test frames")
        write_data(data, args.train, args.test)
    print(machine(), f"{WIDTH}x{HEIGHT} frames, pits {2 * SPOT_RADIUS} px across")
    rows, speeds = [], {}
    for name in args.fits.split(","):
        if not args.bench_only:
            rows.append(fit_one(name, args.out, FITS[name], data=data))
            print(json.dumps(rows[-1]), flush=True)
        speeds[name] = bench(args.out / f"{name}.lsb", args.frames)
        print(name, json.dumps(speeds[name]["stages_ms"]["inference"]), flush=True)
    if rows:
        print(table(rows))
    print("| fit | inference, median ms | end to end, frames/s | model only, frames/s | RSS |")
    print("|---|---|---|---|---|")
    for name, r in speeds.items():
        print(
            f"| {name} | {r['stages_ms']['inference']['median']:.0f} | {r['end_to_end_fps']} "
            f"| {r['model_only_fps']} | {r['resident_mb']:.0f} MB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
