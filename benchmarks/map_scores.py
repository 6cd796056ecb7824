"""Which anomaly map and image score separate a dataset's test split, for one trained model.

    .venv/bin/python benchmarks/map_scores.py ../shared/datasets/magnetic-tile \\
        --model original --epochs 30 [--plain] [--image-size 128]

Trains the model on the good training images (the trainer's own preparation and training),
then scores every test image with the float Keras model under each map (squared error, SSIM
dissimilarity, and squared error of pixels darker than the reconstruction), smoothing (sigma 0,
2, 4) and score (maximum, mean of the top 1%, and that mean less the map's median), and prints
the image AUROC of each, best first. `--plain` trains a denoising architecture the way the
original method trains: binary cross-entropy, no synthetic defects (`--loss` and `--no-repair`
change one of the two). A research tool: the
trainer itself chooses among the box's maps and scores on validation images only.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine
from lineside.daemon.core import anomaly_map
from lineside.daemon.core.preprocess import preprocess
from lineside.trainer import dataset, metrics
from lineside.trainer.fit import FitOptions, prepare
from lineside.trainer.options import ARCHITECTURES
from lineside.trainer.pixels.model import build, ssim_l2_loss
from lineside.trainer.pixels.train import train

LOSSES = {"bce": "binary_crossentropy", "mse": "mse", "ssim_l2": ssim_l2_loss}


def _maps(x: np.ndarray, r: np.ndarray, kind: str) -> np.ndarray:
    if kind == "squared_error":
        return anomaly_map.squared_error(x, r)
    if kind == "ssim":
        return anomaly_map.dssim(x, r)
    darker = np.minimum(x - r, 0).mean(axis=2)  # "dark": only what is darker than expected
    return np.square(darker).astype(np.float32)


def _scores(maps: np.ndarray) -> dict[str, np.ndarray]:
    flat = maps.reshape(len(maps), -1)
    k = max(1, flat.shape[1] // 100)
    top = np.sort(flat, axis=1)[:, -k:].mean(axis=1)
    return {"max": flat.max(axis=1), "top1%": top, "top1%-median": top - np.median(flat, axis=1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("data", type=Path)
    p.add_argument("--model", default="lineside")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--plain", action="store_true", help="BCE loss, no synthetic defects")
    p.add_argument("--loss", choices=sorted(LOSSES), help="train with this loss instead")
    p.add_argument("--no-repair", action="store_true", help="no synthetic defects in training")
    args = p.parse_args()
    print(machine())
    opts = FitOptions(model=args.model, image_size=args.image_size, epochs=args.epochs)
    prep = prepare(args.data, opts)
    net = build(args.model, args.image_size, args.image_size, prep.xs.shape[-1])
    arch = ARCHITECTURES[args.model]
    loss = "bce" if args.plain else args.loss
    if loss:
        net.compile(optimizer="adam", loss=LOSSES[loss])
    if args.plain or args.no_repair:
        arch = dataclasses.replace(arch, denoising=False)
    train(net, arch, prep.xs[prep.train_idx], prep.xs[prep.val_idx], args.epochs, 16, 0)
    test = prep.ds.test
    xs = np.stack([preprocess(f, prep.pre) for f in dataset.read_frames([s.path for s in test])])
    rs = net.predict(xs, batch_size=32, verbose=0)
    defective = np.array([s.defective for s in test])
    table = {}
    for kind in ("squared_error", "ssim", "dark"):
        for sigma in (0, 2, 4):
            maps = np.stack([_maps(x, r, kind) for x, r in zip(xs, rs, strict=True)])
            if sigma:
                maps = np.stack([cv2.GaussianBlur(m, (0, 0), sigma) for m in maps])
            for name, s in _scores(maps).items():
                table[f"{kind}, sigma {sigma}, {name}"] = metrics.image_auroc(defective, s)
    how = " ".join(f"--{k.replace('_', '-')}" for k in ("plain", "no_repair") if getattr(args, k))
    print(f"\n{args.model} {how} loss {loss or 'own'}, {args.epochs} epochs, float model")
    for name, auroc in sorted(table.items(), key=lambda kv: -kv[1]):
        print(f"{auroc:.3f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
