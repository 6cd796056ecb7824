"""Frames from files: single images, folders of images (recursively, sorted) and video files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".mjpg", ".mjpeg", ".webm"}


@dataclass(frozen=True)
class Item:
    """One frame, or the reason there is none. `name` is a short label safe for file names."""

    source: str
    name: str
    frame: np.ndarray | None = None
    error: str | None = None


def read_image(path: Path) -> np.ndarray:
    """Decode an image file as stored (gray stays gray). Raises OSError or ValueError."""
    data = np.fromfile(path, dtype=np.uint8)
    frame = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if frame is None:
        raise ValueError("not a readable image")
    return frame


def read_paths(paths: Iterable[Path]) -> Iterator[Item]:
    """Every frame from images, folders and videos, in the order given."""
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            for f in files:
                yield _image_item(f, "_".join(f.relative_to(path).with_suffix("").parts))
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            yield from _video_items(path)
        else:
            yield _image_item(path, path.stem)


def _image_item(path: Path, name: str) -> Item:
    try:
        return Item(str(path), name, frame=read_image(path))
    except FileNotFoundError:
        return Item(str(path), name, error="no such file")
    except IsADirectoryError:
        return Item(str(path), name, error="is a directory")
    except OSError as exc:
        return Item(str(path), name, error=f"cannot read ({exc.strerror})")
    except ValueError as exc:
        return Item(str(path), name, error=str(exc))


def _video_items(path: Path) -> Iterator[Item]:
    if not path.is_file():
        yield Item(str(path), path.stem, error="no such file")
        return
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            yield Item(str(path), path.stem, error="not a readable video")
            return
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield Item(f"{path}#{index}", f"{path.stem}_{index:06d}", frame=frame)
            index += 1
        if index == 0:
            yield Item(str(path), path.stem, error="no frame could be decoded from the video")
    finally:
        cap.release()
