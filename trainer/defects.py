"""Synthetic defects of the kinds real parts show, at several sizes, for validation.

A blob of foreign texture is what every anomaly map finds; real lines mostly bring thin
scratches and cracks, small pits, a feature that is missing and a patch of discolouration, often
faint and a few pixels across. Validation that only pastes blobs chooses maps and thresholds
that pass those. Each kind here is drawn at three sizes, relative to the model input (224 px
for the default), so the trainer can say which sizes its thresholds would catch.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

SIZES = ("small", "medium", "large")
# Per size: length of a scratch or crack, as a share of the image side.
_LENGTH = {"small": 0.08, "medium": 0.18, "large": 0.35}
# Per size: radius of a pit, side of a missing patch and area of a stain, at 224 px.
_PIT_RADIUS = {"small": 1.5, "medium": 3.0, "large": 6.0}
_PATCH_SIDE = {"small": 8, "medium": 16, "large": 30}
_STAIN_AREA = {"small": 0.004, "medium": 0.015, "large": 0.05}
CONTRAST = (0.25, 0.55)  # how far a defect moves pixels toward black or white


def _level(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Dark or bright: what a scratch or pit turns the pixels into."""
    return np.zeros_like(x) if rng.random() < 0.6 else np.ones_like(x)


def _scale(x: np.ndarray) -> float:
    return x.shape[0] / 224


def _line(rng, x, size: str, wiggle: float) -> np.ndarray:
    """(H, W) mask of a thin stroke: straight for a scratch, wandering for a crack."""
    h, w = x.shape[:2]
    length = _LENGTH[size] * min(h, w)
    steps = 8
    angle = rng.uniform(0, np.pi)
    point = np.array([rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h])
    points = [point]
    for _ in range(steps):
        angle += rng.normal(0, wiggle)
        point = point + length / steps * np.array([np.cos(angle), np.sin(angle)])
        points.append(point)
    mask = np.zeros((h, w), np.uint8)
    width = max(1, round(rng.uniform(1, 2) * _scale(x)))
    pts = np.clip(np.array(points), 0, [w - 1, h - 1]).astype(np.int32)
    cv2.polylines(mask, [pts], False, 1, thickness=width, lineType=cv2.LINE_8)
    return mask.astype(bool)


def scratch(rng, x, size):
    mask = _line(rng, x, size, wiggle=0.05)
    return _tinted(rng, x, mask), mask


def crack(rng, x, size):
    mask = _line(rng, x, size, wiggle=0.6)
    return _tinted(rng, x, mask), mask


def pit(rng, x, size):
    h, w = x.shape[:2]
    radius = _PIT_RADIUS[size] * _scale(x)
    centre = (int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.1, 0.9) * h))
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, centre, max(1, round(radius)), 1, thickness=-1)
    return _tinted(rng, x, mask.astype(bool), soft=radius / 2), mask.astype(bool)


def missing(rng, x, size):
    """A patch of the part painted over from its surroundings: the detail that was there is
    gone (a hole not drilled, a print not applied, a component not placed)."""
    h, w = x.shape[:2]
    side = max(3, round(_PATCH_SIDE[size] * _scale(x)))
    x0, y0 = int(rng.integers(0, max(1, w - side))), int(rng.integers(0, max(1, h - side)))
    mask = np.zeros((h, w), np.uint8)
    mask[y0 : y0 + side, x0 : x0 + side] = 1
    img = np.rint(x * 255).astype(np.uint8)
    filled = cv2.inpaint(img, mask, 3, cv2.INPAINT_TELEA)
    out = filled.reshape(x.shape).astype(np.float32) / 255
    changed = np.abs(out - x).max(axis=-1) > 0.04  # only what actually changed is a defect
    return out, changed & mask.astype(bool)


def stain(rng, x, size):
    """Discolouration: a soft-edged patch shifted in brightness or hue."""
    h, w = x.shape[:2]
    area = _STAIN_AREA[size]
    noise = cv2.GaussianBlur(rng.random((h, w), np.float32), (0, 0), max(4.0, 0.1 * w))
    blob = (noise > np.quantile(noise, 1 - area)).astype(np.float32)
    alpha = cv2.GaussianBlur(blob, (0, 0), 1.5)[:, :, None] * np.float32(rng.uniform(0.2, 0.4))
    tint = np.float32(rng.uniform(0, 1, x.shape[-1]))
    out = np.clip(x * (1 - alpha) + tint * alpha, 0, 1).astype(np.float32)
    return out, blob > 0


def _tinted(rng, x, mask: np.ndarray, soft: float = 0.0) -> np.ndarray:
    alpha = mask.astype(np.float32)
    if soft > 0.5:
        alpha = np.maximum(alpha, cv2.GaussianBlur(alpha, (0, 0), soft))
    alpha = alpha[:, :, None] * np.float32(rng.uniform(*CONTRAST))
    return np.clip(x * (1 - alpha) + _level(rng, x) * alpha, 0, 1).astype(np.float32)


Painter = Callable[[np.random.Generator, np.ndarray, str], tuple[np.ndarray, np.ndarray]]
KINDS: dict[str, Painter] = {
    "scratch": scratch,
    "crack": crack,
    "pit": pit,
    "missing": missing,
    "stain": stain,
}
VARIANTS = tuple((kind, size) for kind in KINDS for size in SIZES)


def paint(rng: np.random.Generator, x: np.ndarray, kind: str, size: str, on_part: np.ndarray):
    """One defect of `kind` and `size` on image x, on the part only: (image, bool mask).

    A defect that lands outside the part, or changes nothing, is drawn again elsewhere.
    """
    for _ in range(8):
        out, mask = KINDS[kind](rng, x, size)
        mask &= on_part
        if mask.sum() >= 2:
            return np.where(on_part[..., None], out, x), mask
    return np.where(on_part[..., None], out, x), mask


def mixed(
    xs: np.ndarray, seed: int, on_part: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """One defect per image, kinds and sizes taken in turn: (images, masks, (kind, size))."""
    rng = np.random.default_rng(seed)
    labels = [VARIANTS[i % len(VARIANTS)] for i in range(len(xs))]
    pairs = [paint(rng, x, k, s, m) for x, (k, s), m in zip(xs, labels, on_part, strict=True)]
    return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs]), labels


def every_variant(x: np.ndarray, seed: int, on_part: np.ndarray) -> np.ndarray:
    """Image x with each (kind, size) of VARIANTS in turn: (len(VARIANTS), H, W, C)."""
    rng = np.random.default_rng(seed)
    return np.stack([paint(rng, x, k, s, on_part)[0] for k, s in VARIANTS])
