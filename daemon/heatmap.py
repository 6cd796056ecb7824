"""Heatmap overlays for operators: the anomaly map in colour over the frame, outlines on top."""

from __future__ import annotations

import cv2
import numpy as np

from lineside.daemon.pipeline import Inspection

_MAX_OPACITY = 0.75
_COLOURS = {"pass": (60, 180, 60), "review": (0, 190, 255), "fail": (40, 40, 230)}


def render(frame: np.ndarray, insp: Inspection, pixel_threshold: float) -> np.ndarray:
    """BGR uint8 image: frame, map blended in (full colour at 2x the pixel threshold), outlines."""
    out = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    out = out.copy()
    geo = insp.geometry
    h, w = insp.amap.shape
    x0, y0 = round(geo.x0), round(geo.y0)
    cw, ch = round(w * geo.sx), round(h * geo.sy)
    level = np.clip(insp.amap / (2 * pixel_threshold), 0, 1)
    heat = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.resize(heat, (cw, ch), interpolation=cv2.INTER_LINEAR)
    # Opacity follows the map, so the part shows through where nothing is wrong and the
    # anomalies stand out (half opaque at the pixel threshold).
    alpha = cv2.resize(np.minimum(level, _MAX_OPACITY), (cw, ch), interpolation=cv2.INTER_LINEAR)
    roi = out[y0 : y0 + ch, x0 : x0 + cw]
    roi[...] = cv2.blendLinear(heat, roi, alpha, 1 - alpha)
    colour = _COLOURS[insp.verdict]
    for region in insp.regions:
        cv2.polylines(out, [np.array(region.contour, np.int32)], True, (255, 255, 255), 2)
        cv2.polylines(out, [np.array(region.contour, np.int32)], True, colour, 1)
    _label(out, f"{insp.verdict} {insp.score:.4f}", colour)
    return out


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
