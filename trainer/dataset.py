"""Training and test images: the MVTec AD folder layout, or a plain folder of good images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lineside.daemon.capture.image_files import IMAGE_SUFFIXES, read_image
from lineside.daemon.core.preprocess import frame_channels
from lineside.deploy.manifest import FrameSpec


class DatasetError(Exception):
    """A dataset folder that cannot be used; one line for a person."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str  # "good" or the defect type
    mask_path: Path | None = None

    @property
    def defective(self) -> bool:
        return self.label != "good"


@dataclass(frozen=True)
class Dataset:
    root: Path
    train: tuple[Path, ...]
    test: tuple[Sample, ...]
    # (folder, good training images, test images) per folder the dataset was read from
    sources: tuple[tuple[str, int, int], ...] = ()

    def summary(self) -> dict:
        labels: dict[str, int] = {}
        for s in self.test:
            labels[s.label] = labels.get(s.label, 0) + 1
        sources = self.sources or ((str(self.root), len(self.train), len(self.test)),)
        return {
            "name": self.root.name,
            "train_good": len(self.train),
            "test": labels,
            "sources": [{"folder": f, "train_good": n, "test": t} for f, n, t in sources],
        }

    def describe(self) -> str:
        """'152 good images from flange (150) + line-cell-1 (2)'."""
        parts = [f"{Path(f).name} ({n})" for f, n, _ in self.sources] or [self.root.name]
        return f"{len(self.train)} good images from {' + '.join(parts)}"


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load(root: Path) -> Dataset:
    """MVTec AD layout when `root/train/good` exists, otherwise `root` holds good images only."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    good_dir = root / "train" / "good"
    if not good_dir.is_dir():
        train = _images(root)
        if not train:
            raise DatasetError(f"{root}: no images, and no train/good folder (MVTec AD layout)")
        return Dataset(root, tuple(train), ())
    train = _images(good_dir)
    if not train:
        raise DatasetError(f"{good_dir}: no images")
    test = []
    test_dir = root / "test"
    if test_dir.is_dir():
        for kind in sorted(p for p in test_dir.iterdir() if p.is_dir()):
            for path in _images(kind):
                mask = root / "ground_truth" / kind.name / f"{path.stem}_mask.png"
                test.append(Sample(path, kind.name, mask if mask.is_file() else None))
    return Dataset(root, tuple(train), tuple(test))


def load_all(roots: Path | Sequence[Path]) -> Dataset:
    """One dataset from several folders (the original set plus the line's own parts, say): their
    good training images together, and the test images of those that have a test/ folder."""
    roots = [Path(roots)] if isinstance(roots, str | Path) else [Path(r) for r in roots]
    if not roots:
        raise DatasetError("no dataset folder given")
    parts = [load(r) for r in roots]
    sources = tuple((str(d.root), len(d.train), len(d.test)) for d in parts)
    train = tuple(p for d in parts for p in d.train)
    test = tuple(s for d in parts for s in d.test)
    return Dataset(parts[0].root, train, test, sources)


def read_frames(paths: list[Path] | tuple[Path, ...]) -> list[np.ndarray]:
    frames = []
    for p in paths:
        try:
            frames.append(read_image(p))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{p}: {exc}") from None
    return frames


def frame_spec(frames: list[np.ndarray]) -> FrameSpec:
    """What frames the model expects: one channel count, and one size when all agree."""
    channels = {frame_channels(f) for f in frames}
    if len(channels) != 1 or not channels <= {1, 3}:
        raise DatasetError(f"training images mix channel counts {sorted(channels)}")
    sizes = {f.shape[:2] for f in frames}
    h, w = sizes.pop() if len(sizes) == 1 else (None, None)
    return FrameSpec(height=h, width=w, channels=channels.pop())


def read_mask(sample: Sample, shape: tuple[int, int]) -> np.ndarray:
    """Ground-truth mask as bool (all False for good parts or when no mask file exists)."""
    if sample.mask_path is None:
        return np.zeros(shape, bool)
    mask = read_image(sample.mask_path)
    if mask.ndim == 3:
        mask = mask[:, :, 0]
    return mask > 127
