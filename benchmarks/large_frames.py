"""A 2048x1536 frame with millimetre defects: squashed to the input, or tiles at native resolution.

    .venv/bin/python benchmarks/large_frames.py [--out out/large] [--train 30] [--frames 20]
        [--fits squash,tiles,tiles-half,default] [--bench-only]

Makes synthetic flanges photographed at 2048x1536 (the part about 1,900 px across: at 0.1 mm a
pixel, a flange of 190 mm), and test parts that carry one defect each: a dark pit 10 px across
(1 mm), which squashing the frame to 320 px leaves 1.6 px wide; a faint pit 6 px across; a faint
scratch 2 px wide (0.2 mm). Fits each configuration with the real trainer (`--geometry squash`,
`--geometry tiles` at native resolution and at `--tile-scale 0.5`, and `fit` with no flags),
prints its quality on the test split and what passed of each kind, then `lineside-daemon bench`
on each bundle (its own self-test frames as the source): frames a second end to end and for the
model alone.
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


def _centre(where: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(where)
    return int(xs.mean()), int(ys.mean())


def pit(frame: np.ndarray, where: np.ndarray, radius: int, darker: int):
    """A round pit `darker` grey levels below the metal around it: (frame, mask)."""
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.circle(mask, _centre(where), radius, 255, -1, lineType=cv2.LINE_AA)
    return _darken(frame, mask, darker), (mask > 127).astype(np.uint8) * 255


def scratch(frame: np.ndarray, where: np.ndarray, length: int, darker: int):
    """A straight scratch 2 px wide and `length` long through the spot's place."""
    cx, cy = _centre(where)
    mask = np.zeros(frame.shape[:2], np.uint8)
    half = length // 2
    cv2.line(mask, (cx - half, cy - half // 3), (cx + half, cy + half // 3), 255, 2, cv2.LINE_AA)
    return _darken(frame, mask, darker), (mask > 127).astype(np.uint8) * 255


def _darken(frame: np.ndarray, mask: np.ndarray, darker: int) -> np.ndarray:
    alpha = (mask.astype(np.float32) / 255)[:, :, None]
    return np.clip(frame - alpha * darker, 0, 255).astype(np.uint8)


# Test defects, 10 of each: (folder, how it is painted). At 0.1 mm a pixel: a 1 mm dark pit, a
# 0.6 mm faint pit and a faint scratch 0.2 mm wide.
DEFECTS = {
    "pit": lambda f, w: pit(f, w, SPOT_RADIUS, 140),
    "faint_pit": lambda f, w: pit(f, w, 3, 35),
    "scratch": lambda f, w: scratch(f, w, 80, 30),
}


def write_data(root: Path, train: int, test: int) -> None:
    train_dir, good_dir = root / "train" / "good", root / "test" / "good"
    for folder in (train_dir, good_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(train):
        cv2.imwrite(str(train_dir / f"{i:03d}.png"), part("train", i)[0])
    for i in range(test):
        cv2.imwrite(str(good_dir / f"{i:03d}.png"), part("test-good", i)[0])
    for kind, paint in DEFECTS.items():
        (root / "test" / kind).mkdir(parents=True, exist_ok=True)
        (root / "ground_truth" / kind).mkdir(parents=True, exist_ok=True)
        for i in range(test):
            frame, mask = paint(*part(f"test-{kind}", i))
            cv2.imwrite(str(root / "test" / kind / f"{i:03d}.png"), frame)
            cv2.imwrite(str(root / "ground_truth" / kind / f"{i:03d}_mask.png"), mask)


def bench(bundle: Path, frames: int) -> dict:
    out = subprocess.run(
        [str(DAEMON), "bench", str(bundle), "--frames", str(frames), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out[out.index("{") :])


def passed_by_kind(out: Path, names: list[str]) -> str:
    """Per fit: the share of each test folder that passed (good: that is right; defects:
    escapes)."""
    kinds = ["good", *DEFECTS]
    lines = ["| fit | " + " | ".join(f"{k} passed" for k in kinds) + " |", "|---" * 5 + "|"]
    for name in names:
        verdicts = json.loads((out / f"{name}.json").read_text())["verdicts"]
        cells = []
        for k in kinds:
            v = verdicts.get(k, {})
            cells.append(f"{v.get('pass', 0)}/{sum(v.values())}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
        print(f"writing {args.train} good training frames and {4 * args.test} test frames")
        write_data(data, args.train, args.test)
    print(machine(), f"{WIDTH}x{HEIGHT} frames; test defects: {', '.join(DEFECTS)}")
    rows, speeds = [], {}
    for name in args.fits.split(","):
        if not args.bench_only:
            rows.append(fit_one(name, args.out, FITS[name], data=data))
            print(json.dumps(rows[-1]), flush=True)
        speeds[name] = bench(args.out / f"{name}.lsb", args.frames)
        print(name, json.dumps(speeds[name]["stages_ms"]["inference"]), flush=True)
    if rows:
        print(table(rows))
        print(passed_by_kind(args.out, [r["set"] for r in rows]))
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
