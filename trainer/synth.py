"""A synthetic part generator in the MVTec AD layout, for demos and fast tests.

The part is a machined flange on a conveyor: brushed-metal disc with a bore, a chamfer ring and six
bolt holes, lit from one side, photographed with small pose changes and sensor noise. Defective
variants carry one defect each with its ground-truth mask. Every image is seeded on its own, so
asking for more images never changes the ones already made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEFECTS = ("scratch", "spot", "weld", "missing_hole", "extra_hole")


@dataclass(frozen=True)
class Pose:
    cx: float
    cy: float
    angle: float  # degrees
    scale: float


def _seed_sequence(seed: int, split: str, kind: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, *split.encode(), 0, *kind.encode(), 0, index])


def _brushed(rng: np.random.Generator, size: int, length: int = 21) -> np.ndarray:
    """Fine streaks along one direction, zero mean, about unit spread."""
    noise = rng.standard_normal((size, size)).astype(np.float32)
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    streaks = cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return streaks / (streaks.std() + 1e-6)


def _bolt_centres(pose: Pose) -> list[tuple[float, float]]:
    r = 62 * pose.scale
    angles = np.deg2rad(pose.angle + np.arange(6) * 60.0)
    return [(pose.cx + r * np.cos(a), pose.cy + r * np.sin(a)) for a in angles]


def _disc(img: np.ndarray, centre, radius: float, value, soft: float = 1.2) -> None:
    """Blend `value` into `img` inside a circle with an anti-aliased edge."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(xx - centre[0], yy - centre[1])
    alpha = np.clip((radius - d) / soft + 0.5, 0, 1)
    if img.ndim == 3:
        alpha = alpha[:, :, None]
    img[:] = img * (1 - alpha) + np.asarray(value, np.float32) * alpha


def render_part(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, Pose]:
    """A good part as float32 gray in [0, 255], and its pose."""
    jitter = size / 256
    pose = Pose(
        cx=size / 2 + rng.uniform(-3, 3) * jitter,
        cy=size / 2 + rng.uniform(-3, 3) * jitter,
        angle=rng.uniform(-2.5, 2.5),
        scale=jitter * rng.uniform(0.98, 1.02),
    )
    belt = 48 + 6 * _brushed(rng, size, 5)
    img = belt.astype(np.float32)
    metal = 150 + 7 * _brushed(rng, size)
    _disc_texture(img, metal, pose, 96 * pose.scale)
    _disc(img, (pose.cx, pose.cy), 92 * pose.scale, 130)  # outer bevel ring, darker
    _disc_texture(img, metal, pose, 89 * pose.scale)
    _disc(img, (pose.cx, pose.cy), 34 * pose.scale, 205)  # chamfer highlight
    _disc(img, (pose.cx, pose.cy), 28 * pose.scale, 28)  # bore
    for c in _bolt_centres(pose):
        _disc(img, c, 9.5 * pose.scale, 185)
        _disc(img, c, 8 * pose.scale, 32)
    return img, pose


def _disc_texture(img: np.ndarray, texture: np.ndarray, pose: Pose, radius: float) -> None:
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.clip(radius - np.hypot(xx - pose.cx, yy - pose.cy) + 0.5, 0, 1)
    img[:] = img * (1 - alpha) + texture * alpha


def _on_metal(rng: np.random.Generator, pose: Pose) -> tuple[float, float]:
    """A random point on the flat metal, away from the bore and the bolt holes."""
    while True:
        r = rng.uniform(40, 84) * pose.scale
        a = rng.uniform(0, 2 * np.pi)
        p = (pose.cx + r * np.cos(a), pose.cy + r * np.sin(a))
        if all(np.hypot(p[0] - c[0], p[1] - c[1]) > 16 * pose.scale for c in _bolt_centres(pose)):
            return p


def _scratch(img, rng, pose) -> np.ndarray:
    mask = np.zeros(img.shape, np.uint8)
    x, y = _on_metal(rng, pose)
    a = rng.uniform(0, np.pi)
    n = int(rng.uniform(40, 80) * pose.scale)
    bend = rng.uniform(-0.01, 0.01)
    pts = np.array(
        [
            (
                x + t * np.cos(a + bend * t) - n / 2 * np.cos(a),
                y + t * np.sin(a + bend * t) - n / 2 * np.sin(a),
            )
            for t in range(n)
        ],
        np.int32,
    )
    width = int(rng.integers(3, 5))
    cv2.polylines(mask, [pts], False, 255, thickness=width, lineType=cv2.LINE_8)
    shade = rng.choice([-1, 1]) * rng.uniform(60, 90)
    img += (mask > 0) * np.float32(shade)
    return mask


def _spot(img, rng, pose) -> np.ndarray:
    x, y = _on_metal(rng, pose)
    axes = (int(rng.uniform(5, 10) * pose.scale), int(rng.uniform(4, 8) * pose.scale))
    mask = np.zeros(img.shape, np.uint8)
    cv2.ellipse(mask, (int(x), int(y)), axes, rng.uniform(0, 180), 0, 360, 255, -1)
    stain = cv2.GaussianBlur((mask > 0).astype(np.float32), (0, 0), 2.0)
    img -= stain * np.float32(rng.uniform(55, 85))
    return mask


def _weld(img, rng, pose) -> np.ndarray:
    """A weld bead: a rippled bright crown inside a dark heat-tinted band."""
    x, y = _on_metal(rng, pose)
    a = rng.uniform(0, np.pi)
    mask = np.zeros(img.shape, np.uint8)
    crown = np.zeros(img.shape, np.uint8)
    steps = int(rng.integers(6, 11))
    for i in range(steps):
        cx = int(x + (i - steps / 2) * 4.5 * np.cos(a))
        cy = int(y + (i - steps / 2) * 4.5 * np.sin(a))
        angle = np.rad2deg(a) + 90
        cv2.ellipse(mask, (cx, cy), (7, 5), angle, 0, 360, 255, -1)
        cv2.ellipse(crown, (cx, cy), (4, 3), angle, 0, 360, 255, -1)
    band = cv2.GaussianBlur((mask > 0).astype(np.float32), (0, 0), 1.5)
    top = cv2.GaussianBlur((crown > 0).astype(np.float32), (0, 0), 1.0)
    img[:] = img * (1 - band) + band * np.float32(rng.uniform(70, 90))
    img[:] = img * (1 - top) + top * np.float32(rng.uniform(205, 230))
    return mask


def _missing_hole(img, rng, pose) -> np.ndarray:
    c = _bolt_centres(pose)[int(rng.integers(0, 6))]
    mask = np.zeros(img.shape, np.uint8)
    cv2.circle(mask, (round(c[0]), round(c[1])), round(10 * pose.scale), 255, -1)
    _disc(img, c, 10 * pose.scale, 150)
    return mask


def _extra_hole(img, rng, pose) -> np.ndarray:
    k = int(rng.integers(0, 6))
    a = np.deg2rad(pose.angle + 30 + 60 * k)
    r = 62 * pose.scale
    c = (pose.cx + r * np.cos(a), pose.cy + r * np.sin(a))
    _disc(img, c, 9.5 * pose.scale, 185)
    _disc(img, c, 8 * pose.scale, 32)
    mask = np.zeros(img.shape, np.uint8)
    cv2.circle(mask, (round(c[0]), round(c[1])), round(10 * pose.scale), 255, -1)
    return mask


_DEFECT_PAINTERS: dict[str, Callable] = {
    "scratch": _scratch,
    "spot": _spot,
    "weld": _weld,
    "missing_hole": _missing_hole,
    "extra_hole": _extra_hole,
}


def _photograph(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light from one side, a faint tint, sensor noise; float gray -> uint8 BGR."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    angle = rng.uniform(-0.3, 0.3) + np.pi / 4
    light = 0.85 + 0.3 * (np.cos(angle) * xx + np.sin(angle) * yy) * rng.uniform(0.9, 1.1)
    lit = img * light * rng.uniform(0.95, 1.05)
    tint = np.array([1.04, 1.0, 0.96], np.float32)  # BGR: a cool, bluish steel
    bgr = lit[:, :, None] * tint + rng.normal(0, 2.5, (h, w, 3)).astype(np.float32)
    return np.clip(bgr, 0, 255).astype(np.uint8)


def make_image(
    seed: int, split: str, kind: str, index: int, size: int = 256, with_defect: bool = True
):
    """(BGR uint8 image, uint8 mask or None) for one part; `kind` is 'good' or a defect name.

    Pose, defect and camera each draw from their own stream, so `with_defect=False` gives the
    very same photograph of the part before it was damaged.
    """
    part_rng, defect_rng, camera_rng = (
        np.random.default_rng(s) for s in _seed_sequence(seed, split, kind, index).spawn(3)
    )
    img, pose = render_part(part_rng, size)
    mask = None
    if kind != "good":
        mask = _DEFECT_PAINTERS[kind](img if with_defect else img.copy(), defect_rng, pose)
    return _photograph(img, camera_rng), mask


def write_dataset(
    out: Path,
    seed: int = 0,
    train: int = 150,
    test_good: int = 20,
    test_per_defect: int = 8,
    size: int = 256,
    defects: tuple[str, ...] = DEFECTS,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, int]:
    """Write an MVTec AD style dataset to `out`; returns image counts per folder."""
    out = Path(out)
    plan = [("train", "good", train), ("test", "good", test_good)]
    plan += [("test", d, test_per_defect) for d in defects]
    counts = {}
    for split, kind, n in plan:
        folder = out / split / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image, mask = make_image(seed, split, kind, i, size)
            cv2.imwrite(str(folder / f"{i:03d}.png"), image)
            if mask is not None:
                gt = out / "ground_truth" / kind
                gt.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(gt / f"{i:03d}_mask.png"), mask)
        counts[f"{split}/{kind}"] = n
        progress(f"{split}/{kind}: {n} images")
    return counts


def write_video(
    out: Path,
    seed: int = 0,
    frames: int = 60,
    fps: float = 10.0,
    defect_every: int = 4,
    size: int = 256,
    dim_to: float = 1.0,
) -> list[str]:
    """An MJPEG .avi of parts passing the camera: every `defect_every`-th part is defective
    (0: none). `dim_to` < 1 darkens the scene linearly to that share of its brightness by the
    last frame, as an ageing lamp does.

    Returns the kind of part in each frame, for checking what a daemon reported.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    if not writer.isOpened():
        raise OSError(f"cannot write video {out}")
    kinds = []
    try:
        for i in range(frames):
            defective = defect_every and i % defect_every == defect_every - 1
            kind = DEFECTS[(i // defect_every) % len(DEFECTS)] if defective else "good"
            image, _ = make_image(seed, "video", kind, i, size)
            if dim_to != 1.0:
                gain = 1.0 - (1.0 - dim_to) * i / max(1, frames - 1)
                image = cv2.convertScaleAbs(image, alpha=gain)
            writer.write(image)
            kinds.append(kind)
    finally:
        writer.release()
    return kinds
