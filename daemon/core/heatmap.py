"""Heatmap overlays for operators: the anomaly map in colour over the frame, outlines on top."""

from __future__ import annotations

import cv2
import numpy as np

from lineside.daemon.core.pipeline import Inspection
from lineside.daemon.core.preprocess import Geometry

# The map is shown only where it is anomalous: clear below the bundle's pixel threshold, 0.4
# opaque at it, rising to at most 0.75 at twice it so the part stays visible under the worst
# anomaly. A features model's distance map is never near zero on a good part, so any colour
# below the threshold would tint every good frame and make good and bad look alike.
_MIN_OPACITY = 0.4
_MAX_OPACITY = 0.75
# Colours from the hot half of the JET map (yellow at the threshold, dark red at twice it):
# every coloured pixel is an anomalous one, never a cool blue wash.
_JET = cv2.applyColorMap((128 + np.arange(256) // 2).astype(np.uint8)[:, None], cv2.COLORMAP_JET)
_COLOURS = {"pass": (60, 180, 60), "review": (0, 190, 255), "fail": (40, 40, 230)}


def render(
    frame: np.ndarray, insp: Inspection, pixel_threshold: float, with_map: bool = True
) -> np.ndarray:
    """BGR uint8 image: frame, map blended in where it passes the pixel threshold (unless
    `with_map` is False), outlines in the verdict's colour, verdict and score."""
    out = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    out = out.copy()
    # 0 at the threshold, 1 at twice it; negative below it, where nothing is drawn.
    level = insp.amap / pixel_threshold - 1
    shown = level >= 0
    level = np.clip(level, 0, 1)
    alpha = np.where(shown, _MIN_OPACITY + level * (_MAX_OPACITY - _MIN_OPACITY), 0)
    alpha = alpha.astype(np.float32)
    bx, by, bw, bh = cv2.boundingRect(shown.view(np.uint8)) if with_map else (0, 0, 0, 0)
    if bw:  # blend only the box around the coloured pixels: blending costs per frame pixel
        _blend(
            out,
            level[by : by + bh, bx : bx + bw],
            alpha[by : by + bh, bx : bx + bw],
            insp.geometry.shifted(bx, by),
        )
    colour = _COLOURS[insp.verdict]
    for region in insp.regions:
        cv2.polylines(out, [np.array(region.contour, np.int32)], True, (255, 255, 255), 2)
        cv2.polylines(out, [np.array(region.contour, np.int32)], True, colour, 1)
    _label(out, f"{insp.verdict} {insp.score:.4f}", colour)
    return out


def _blend(out: np.ndarray, level: np.ndarray, alpha: np.ndarray, geo: Geometry) -> None:
    """Blend the coloured map into `out` where the model-resolution box lands in the frame."""
    h, w = level.shape
    # The box in frame pixels; a letterboxed input reaches past the frame's edges.
    left, top = round(geo.x0), round(geo.y0)
    right, bottom = round(geo.x0 + w * geo.sx), round(geo.y0 + h * geo.sy)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(right, out.shape[1]), min(bottom, out.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    size = (right - left, bottom - top)
    inside = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
    gray = cv2.cvtColor((level * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    heat = cv2.LUT(gray, _JET)  # applyColorMap builds its table anew on every call: 150 us
    # Premultiplied at model resolution, so the frame-sized work is one multiply and one add
    # on 8-bit pixels: out = heat x alpha + frame x (1 - alpha).
    heat = (heat * alpha[:, :, None]).astype(np.uint8)
    keep = cv2.cvtColor(((1 - alpha) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    heat = cv2.resize(heat, size, interpolation=cv2.INTER_LINEAR)[inside]
    keep = cv2.resize(keep, size, interpolation=cv2.INTER_LINEAR)[inside]
    roi = out[y0:y1, x0:x1]
    cv2.add(cv2.multiply(roi, keep, scale=1 / 255), heat, dst=roi)


def _label(image: np.ndarray, text: str, colour: tuple[int, int, int]) -> None:
    """Verdict and score top-left, on a dark plate so it reads on any part."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    (w, h), base = cv2.getTextSize(text, font, scale, 1)
    cv2.rectangle(image, (0, 0), (w + 10, h + base + 8), (20, 20, 20), -1)
    cv2.putText(image, text, (5, h + 4), font, scale, colour, 1, cv2.LINE_AA)


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
