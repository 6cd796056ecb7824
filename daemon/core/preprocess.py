"""Frame to model input, exactly as the manifest says; and the way back to frame coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lineside.deploy.manifest import TILE_MULTIPLE, FrameSpec, Preprocess


class FrameError(ValueError):
    """A frame this bundle cannot inspect (wrong size, channels or type); one line for a person."""


@dataclass(frozen=True)
class Geometry:
    """Maps model-resolution pixel coordinates back to the original frame."""

    x0: float
    y0: float
    sx: float
    sy: float

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) model (x, y) -> (N, 2) frame (x, y), as float."""
        return np.asarray(xy, dtype=np.float64) * (self.sx, self.sy) + (self.x0, self.y0)

    def point(self, x: float, y: float) -> tuple[float, float]:
        """One model (x, y) -> frame (x, y), without building arrays."""
        return float(x) * self.sx + self.x0, float(y) * self.sy + self.y0

    def shifted(self, dx: int, dy: int) -> Geometry:
        """The geometry of a sub-image whose origin is model pixel (dx, dy)."""
        return Geometry(self.x0 + dx * self.sx, self.y0 + dy * self.sy, self.sx, self.sy)

    def box_to_model(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """Frame (x, y, w, h) -> the model-resolution box covering it, as (x0, y0, x1, y1)."""
        x, y, w, h = box
        x0 = int(np.floor((x - self.x0) / self.sx))
        y0 = int(np.floor((y - self.y0) / self.sy))
        x1 = int(np.ceil((x + w - self.x0) / self.sx))
        y1 = int(np.ceil((y + h - self.y0) / self.sy))
        return x0, y0, x1, y1


def frame_channels(frame: np.ndarray) -> int:
    return 1 if frame.ndim == 2 else frame.shape[2]


def check_frame(frame: np.ndarray, spec: FrameSpec) -> None:
    """Refuse frames unlike the training frames, rather than inspect them wrongly."""
    if frame.dtype != np.uint8:
        raise FrameError(f"frame is {frame.dtype}, expected 8-bit (uint8) pixels")
    if frame.ndim not in (2, 3) or frame_channels(frame) not in (1, 3):
        raise FrameError(f"frame has shape {frame.shape}, expected HxW gray or HxWx3 colour")
    h, w, c = frame.shape[0], frame.shape[1], frame_channels(frame)
    if c != spec.channels:
        raise FrameError(f"frame has {c} channel(s), the model was trained on {spec.channels}")
    if spec.height is not None and (h, w) != (spec.height, spec.width):
        raise FrameError(
            f"frame is {w}x{h} px, the model was trained on {spec.width}x{spec.height} px frames"
        )


def input_size(frame_shape: tuple[int, ...], spec: Preprocess) -> tuple[int, int]:
    """(width, height) of the preprocessed image: the model's input, or for tiles the cropped
    frame at `tile_scale`, rounded to TILE_MULTIPLE and at least one tile."""
    if spec.geometry != "tiles":
        return spec.size
    _, _, cw, ch = _crop_box(frame_shape, spec)
    return _tiled(cw, ch, spec)


def _tiled(cw: int, ch: int, spec: Preprocess) -> tuple[int, int]:
    tw, th = spec.size

    def side(n: int, tile: int) -> int:
        return max(tile, round(n * spec.tile_scale / TILE_MULTIPLE) * TILE_MULTIPLE)

    return side(cw, tw), side(ch, th)


def _padding(cw: int, ch: int, spec: Preprocess) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) pixels that letterbox a cw x ch image to the input's aspect."""
    if spec.geometry != "letterbox":
        return 0, 0, 0, 0
    mw, mh = spec.size
    w, h = max(cw, round(ch * mw / mh)), max(ch, round(cw * mh / mw))
    left, top = (w - cw) // 2, (h - ch) // 2
    return left, top, w - cw - left, h - ch - top


def _crop_box(frame_shape: tuple[int, ...], spec: Preprocess) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the frame pixels the model sees."""
    h, w = frame_shape[:2]
    return spec.crop if spec.crop else (0, 0, w, h)


def geometry(frame_shape: tuple[int, ...], spec: Preprocess) -> Geometry:
    cx, cy, cw, ch = _crop_box(frame_shape, spec)
    left, top, right, bottom = _padding(cw, ch, spec)
    mw, mh = input_size(frame_shape, spec)
    return Geometry(
        x0=cx - left, y0=cy - top, sx=(cw + left + right) / mw, sy=(ch + top + bottom) / mh
    )


def content(
    frame_shape: tuple[int, ...], spec: Preprocess, geo: Geometry | None = None
) -> tuple[int, int, int, int] | None:
    """The model-pixel box (x0, y0, x1, y1) that shows the frame; None when all of it does.
    Pass the frame's `geometry` when it is at hand."""
    if spec.geometry != "letterbox":
        return None
    geo = geo or geometry(frame_shape, spec)
    return geo.box_to_model(_crop_box(frame_shape, spec))


def shown(frame_shape: tuple[int, ...], spec: Preprocess) -> np.ndarray:
    """(H, W) bool at the model's size: the pixels that show the frame (not letterbox bars)."""
    mw, mh = input_size(frame_shape, spec)
    out = np.zeros((mh, mw), bool)
    x0, y0, x1, y1 = content(frame_shape, spec) or (0, 0, mw, mh)
    out[y0:y1, x0:x1] = True
    return out


def fit_to_input(img: np.ndarray, spec: Preprocess, interpolation: int) -> np.ndarray:
    """A cropped image (or mask) at the model's size: squashed, letterboxed with black, or for
    tiles at its own scale."""
    if spec.geometry == "tiles":
        size = _tiled(img.shape[1], img.shape[0], spec)
        same = size == img.shape[1::-1]
        return img if same else cv2.resize(img, size, interpolation=interpolation)
    left, top, right, bottom = _padding(img.shape[1], img.shape[0], spec)
    if left or top or right or bottom:
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(img, spec.size, interpolation=interpolation)


def preprocess(frame: np.ndarray, spec: Preprocess) -> np.ndarray:
    """uint8 frame -> float32 (H, W, C) in [0, 1] at the model's size."""
    img = _crop(frame, spec.crop)
    img = _to_color(img, spec.color)
    # INTER_AREA averages when shrinking, so fine texture does not alias into false anomalies.
    img = fit_to_input(img, spec, cv2.INTER_AREA)
    if spec.equalize:
        img = _equalize(img, spec.color)
    if spec.blur_ksize:
        img = cv2.GaussianBlur(img, (spec.blur_ksize, spec.blur_ksize), 0)
    if img.ndim == 2:
        img = img[:, :, None]
    return img.astype(np.float32) * np.float32(1 / 255)


def _crop(frame: np.ndarray, crop: tuple[int, int, int, int] | None) -> np.ndarray:
    if crop is None:
        return frame
    x, y, w, h = crop
    if x < 0 or y < 0 or x + w > frame.shape[1] or y + h > frame.shape[0]:
        raise FrameError(f"crop {crop} reaches outside the {frame.shape[1]}x{frame.shape[0]} frame")
    return frame[y : y + h, x : x + w]


def _to_color(img: np.ndarray, color: str) -> np.ndarray:
    if color == "gray":
        return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _equalize(img: np.ndarray, color: str) -> np.ndarray:
    if color == "gray":
        return cv2.equalizeHist(img)
    # Equalize brightness only, so colours keep their hue.
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    ycc[:, :, 0] = cv2.equalizeHist(ycc[:, :, 0])
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
