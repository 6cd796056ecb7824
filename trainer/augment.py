"""Training pairs for the denoising autoencoder: line-like variation and synthetic defects.

The default model is trained to turn a good image with a defect pasted in back into the clean
image, so it learns to repair what it has never seen instead of copying every pixel through.
The pasted defects are irregular blobs filled with texture from other good images, flat paint
or noise; the line-like variation is a small shift and a brightness change, applied to the
input and the target alike.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_SHIFT_PX = 3
BRIGHTNESS = (0.92, 1.08)
DEFECT_SHARE = 0.7  # share of training inputs that get a pasted defect
BLOB_AREA = (0.005, 0.08)  # share of the image a defect covers
OPAQUE = (0.5, 1.0)  # training defects: from half-transparent to opaque
# Validation defects are faint: clear ones are caught by every anomaly map and so cannot tell
# the candidate maps apart, while real defects on a line are often subtle.
SUBTLE = (0.15, 0.5)


def blob_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H, W) float32 0/1 mask of irregular blobs: coarse noise, smoothly upscaled, thresholded."""
    cells = int(rng.choice([4, 8, 16]))
    noise = cv2.resize(rng.random((cells, cells), np.float32), (w, h), cv2.INTER_CUBIC)
    level = np.quantile(noise, 1 - rng.uniform(*BLOB_AREA))
    return (noise > level).astype(np.float32)


def _texture(rng: np.random.Generator, pool: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    h, w, c = shape
    kind = rng.integers(3)
    if kind == 0:  # another good image, turned: right materials, wrong place
        return np.rot90(pool[rng.integers(len(pool))], int(rng.integers(1, 4))).astype(np.float32)
    if kind == 1:  # paint or dirt: a flat level with a little grain
        grain = rng.normal(0, 0.05, shape).astype(np.float32)
        return np.float32(rng.uniform(0, 1)) + grain
    noise = cv2.GaussianBlur(rng.random((h, w), np.float32), (0, 0), rng.uniform(0.5, 3))
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-6)  # scratches and pits: fine texture
    return np.repeat(noise[:, :, None], c, axis=2)


def paste_defect(
    rng: np.random.Generator,
    x: np.ndarray,
    pool: np.ndarray,
    opacity: tuple[float, float] = OPAQUE,
) -> tuple[np.ndarray, np.ndarray]:
    """(x with one synthetic defect blended in, the defect's (H, W) bool mask)."""
    blob = blob_mask(rng, x.shape[0], x.shape[1])
    alpha = blob[:, :, None] * np.float32(rng.uniform(*opacity))
    tex = _texture(rng, pool, x.shape)
    return np.clip(x * (1 - alpha) + tex * alpha, 0, 1).astype(np.float32), blob > 0


def jitter(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """A small shift and brightness change, as parts and lighting vary on a line."""
    dx, dy = rng.integers(-MAX_SHIFT_PX, MAX_SHIFT_PX + 1, 2)
    shifted = np.roll(x, (int(dy), int(dx)), axis=(0, 1))
    return np.clip(shifted * np.float32(rng.uniform(*BRIGHTNESS)), 0, 1).astype(np.float32)


def training_pair(
    rng: np.random.Generator, x: np.ndarray, pool: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(input, target): the target is the jittered clean image."""
    clean = jitter(rng, x)
    if rng.random() < DEFECT_SHARE:
        return paste_defect(rng, clean, pool)[0], clean
    return clean, clean


def defective_copies(
    xs: np.ndarray, seed: int, opacity: tuple[float, float] = OPAQUE
) -> tuple[np.ndarray, np.ndarray]:
    """One pasted defect per image, the same for the same seed: (images, bool masks)."""
    rng = np.random.default_rng(seed)
    pairs = [paste_defect(rng, x, xs, opacity) for x in xs]
    return np.stack([a for a, _ in pairs]), np.stack([m for _, m in pairs])


# Re-encoding qualities for camera copies: what MJPEG cameras and streams deliver.
JPEG_QUALITY = (60, 95)


def camera_copies(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Each frame re-encoded as JPEG at a random quality: the same good part as a camera that
    compresses its stream would deliver it, so compression alone is not an anomaly."""
    rng = np.random.default_rng(seed)
    out = []
    for frame in frames:
        quality = int(rng.integers(*JPEG_QUALITY, endpoint=True))
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        out.append(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))
    return out
