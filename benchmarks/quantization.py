"""int8 against float32 and float16 TFLite of the same trained weights: speed and image AUROC.

    .venv/bin/python benchmarks/quantization.py [--data ../shared/datasets/mvtec-bottle]
        [--model lineside|original|...]

Trains the model (the default model unless --model says otherwise) once on the dataset's good
images and exports the three TFLite models; for each: median inference milliseconds with LiteRT
at 2 threads, and image AUROC on the test split through the box's own pipeline (each
calibrated on the same validation images).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATASETS, evaluate_tflite, fit_keras, machine
from benchmarks.timing import median_ms
from lineside.trainer.export import to_float_tflite
from lineside.trainer.fit import FitOptions
from lineside.trainer.options import ARCHITECTURES, DEFAULT
from lineside.trainer.pixels.fit import export_int8


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, default=DATASETS / "mvtec-bottle")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--model", choices=sorted(ARCHITECTURES), default=DEFAULT)
    args = p.parse_args()
    if not args.data.is_dir():
        print(f"skipped: {args.data} is absent")
        return 0
    opts = FitOptions(model=args.model, image_size=128, epochs=args.epochs)
    print(machine())
    t = fit_keras(args.data, opts)
    exports = {
        "float32": to_float_tflite(t.net),
        "float16": to_float_tflite(t.net, float16=True),
        "int8": export_int8(t.net, t, opts),
    }
    x = t.xs[t.val_idx[0]]
    rows = {}
    for name, data in exports.items():
        metrics, model, _ = evaluate_tflite(t, data)
        model.reconstruct(x)
        rows[name] = (
            median_ms(lambda m=model: m.reconstruct(x), 100),
            metrics["image_auroc"],
            len(data),
        )
    base_ms, base_auc, _ = rows["float32"]
    print(f"\n{args.data.name}, {opts.model} model at {opts.image_size} px, LiteRT 2 threads")
    print(
        f"{'model':<8} {'size KiB':>9} {'median ms':>10} {'speed vs f32':>13} "
        f"{'image AUROC':>12} {'AUROC vs f32':>13}"
    )
    for name, (ms, auc, size) in rows.items():
        print(
            f"{name:<8} {size / 1024:>9.0f} {ms:>10.2f} {base_ms / ms:>12.2f}x "
            f"{auc:>12.3f} {auc - base_auc:>+13.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
