"""The original method's way of inspecting a frame against Lineside's, same images, same weights.

    .venv/bin/python benchmarks/original_vs_lineside.py

Original: Keras `model.predict` on one frame, squared error, threshold, and the pure-Python
flood-fill cluster removal. Lineside: the int8 LiteRT model and the vectorized denoiser, through
`inspect_frame`. Both start from the same uint8 frame and the same preprocessing.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import evaluate_tflite, fit_keras, machine
from benchmarks.flood_fill import remove_small_clusters_flood_fill
from benchmarks.timing import median_ms
from lineside.daemon.core.pipeline import inspect_frame
from lineside.daemon.core.preprocess import preprocess
from lineside.deploy.manifest import AnomalyMap, Postprocess
from lineside.trainer.export import to_int8_tflite
from lineside.trainer.fit import FitOptions
from lineside.trainer.synth import write_dataset


def main() -> int:
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "flange"
        write_dataset(data, seed=1, train=80, test_good=10, test_per_defect=2)
        opts = FitOptions(
            model="original",
            image_size=128,
            crop=(24, 24, 208, 208),
            blur_ksize=5,
            min_cluster_px=10,
            epochs=15,
            batch_size=8,
        )
        t = fit_keras(data, opts)
        int8 = to_int8_tflite(t.net, t.xs[t.train_idx])
        _, model, stages = evaluate_tflite(t, int8)
        frames = [t.frames[i] for i in t.val_idx[:10]]
        threshold = 0.02

        def original(frame: np.ndarray) -> float:
            x = preprocess(frame, t.pre)
            recon = t.net.predict(x[None], verbose=0)[0]
            amap = np.mean((x - recon) ** 2, axis=2)
            mask = remove_small_clusters_flood_fill((amap > threshold).astype(np.uint8), 10)
            return float(mask.mean())

        # The original method's post-processing on both sides: same threshold, same clusters.
        post = Postprocess(pixel_threshold=threshold, min_cluster_px=10)
        same = dataclasses.replace(stages, postprocess=post, anomaly_map=AnomalyMap())

        def lineside(frame: np.ndarray) -> float:
            return inspect_frame(frame, same, model.reconstruct).score

        for fn in (original, lineside):  # warm up
            fn(frames[0])
        slow = np.median([median_ms(lambda f=f: original(f), 3) for f in frames])
        fast = np.median([median_ms(lambda f=f: lineside(f), 20) for f in frames])
    print(f"\nper frame, {len(frames)} frames, original model at 128 px")
    print(f"original (Keras predict + flood fill)   {slow:8.2f} ms")
    print(f"Lineside (int8 LiteRT + vectorized)     {fast:8.2f} ms")
    print(f"ratio                                   {slow / fast:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
