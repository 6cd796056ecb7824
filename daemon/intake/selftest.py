"""Self-test: a box scores the bundle's own images on its own runtime before the bundle serves.

The trainer stores a few images with the scores it measured; a model that scores them
differently here (a broken file, a runtime that computes differently) is refused.
"""

from __future__ import annotations

import cv2
import numpy as np

from lineside.daemon.core.pipeline import Stages, inspect_frame
from lineside.daemon.core.preprocess import FrameError, input_size
from lineside.daemon.runtime import Model, ModelError
from lineside.deploy.bundle import Bundle


def encode(frame: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", frame)  # lossless: the box sees the very same pixels
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def tolerance(stages: Stages) -> float:
    """How far a box may score from the trainer: int8 on another CPU rounds a little differently.

    A pixel-count score may move by one smallest cluster; a map score by 2% of `fail_at`.
    """
    if stages.postprocess.score == "anomalous_fraction":
        frame = stages.frame
        w, h = input_size((frame.height or 0, frame.width or 0), stages.preprocess)
        return stages.postprocess.min_cluster_px / (w * h)
    return max(0.02 * stages.thresholds.fail_at, float(np.finfo(np.float32).eps))


def frame(bundle: Bundle, file: str) -> np.ndarray:
    """A self-test image decoded exactly as stored; ModelError when missing or unreadable."""
    data = bundle.files.get(file)
    image = cv2.imdecode(np.frombuffer(data or b"", np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ModelError(f"self-test image {file} is missing or unreadable")
    return image


def run(bundle: Bundle, model: Model) -> list[str]:
    """Score every self-test image; raise ModelError on the first one out of tolerance."""
    st = bundle.manifest.selftest
    if st is None:
        return ["self-test: none in this bundle"]
    lines = []
    for image in st.images:
        try:
            score = inspect_frame(frame(bundle, image.file), bundle.manifest, model.infer).score
        except FrameError as exc:
            raise ModelError(f"self-test image {image.file}: {exc}") from None
        if abs(score - image.score) > st.tolerance:
            raise ModelError(
                f"self-test {image.file}: scored {score:.6g} here, {image.score:.6g} by the "
                f"trainer (tolerance {st.tolerance:.3g})"
            )
        lines.append(f"self-test {image.file}: {score:.6g} (trainer {image.score:.6g})")
    return lines
