"""Dataset loading: MVTec AD layout, plain folders, and the real shared datasets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lineside.trainer import dataset
from lineside.trainer.dataset import DatasetError
from tests.conftest import shared_dataset


def test_mvtec_layout(synth_dir):
    ds = dataset.load(synth_dir)
    assert len(ds.train) == 64
    labels = {s.label for s in ds.test}
    assert labels == {"good", "scratch", "spot", "weld", "missing_hole", "extra_hole"}
    assert all((s.mask_path is None) == (s.label == "good") for s in ds.test)
    assert ds.summary()["test"]["good"] == 6


def test_plain_folder_of_good_images(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((20, 30), 100, np.uint8))
    ds = dataset.load(tmp_path)
    assert len(ds.train) == 3 and ds.test == ()
    spec = dataset.frame_spec(dataset.read_frames(ds.train))
    assert (spec.height, spec.width, spec.channels) == (20, 30, 1)


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_unusable_folders_say_why(tmp_path, make):
    path = tmp_path / "data"
    if make == "empty":
        path.mkdir()
    with pytest.raises(DatasetError, match=r"no such dataset folder|no images"):
        dataset.load(path)


def test_mixed_channel_counts_are_refused():
    frames = [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.uint8)]
    with pytest.raises(DatasetError, match="mix channel counts"):
        dataset.frame_spec(frames)


def test_unreadable_training_image_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"broken\.png"):
        dataset.read_frames([bad])


def test_real_mvtec_bottle_loads_with_masks():
    ds = dataset.load(shared_dataset("mvtec-bottle"))
    assert len(ds.train) == 209
    defective = [s for s in ds.test if s.defective]
    assert len(defective) == 63 and sum(not s.defective for s in ds.test) == 20
    assert all(s.mask_path is not None for s in defective)
    spec = dataset.frame_spec(dataset.read_frames(ds.train[:5]))
    assert (spec.height, spec.width, spec.channels) == (384, 384, 3)
    mask = dataset.read_mask(defective[0], (384, 384))
    assert mask.dtype == bool and 0 < mask.sum() < mask.size


def test_real_magnetic_tile_is_gray_with_varying_sizes():
    ds = dataset.load(shared_dataset("magnetic-tile"))
    assert len(ds.train) == 752
    frames = dataset.read_frames(ds.train[::50])
    spec = dataset.frame_spec(frames)
    assert spec.channels == 1 and spec.height is None


def test_several_folders_make_one_training_set_and_say_where_each_image_came_from(tmp_path):
    original = tmp_path / "flange"
    line = tmp_path / "line-cell-1"
    for folder, n in ((original / "train" / "good", 3), (line / "train" / "good", 2)):
        folder.mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(folder / f"{i}.png"), np.full((8, 8), i, np.uint8))
    (original / "test" / "good").mkdir(parents=True)
    cv2.imwrite(str(original / "test" / "good" / "t.png"), np.zeros((8, 8), np.uint8))
    ds = dataset.load_all([original, line])
    assert len(ds.train) == 5 and len(ds.test) == 1
    assert ds.summary()["sources"] == [
        {"folder": str(original), "train_good": 3, "test": 1},
        {"folder": str(line), "train_good": 2, "test": 0},
    ]
    assert ds.describe() == "5 good images from flange (3) + line-cell-1 (2)"
    with pytest.raises(dataset.DatasetError):
        dataset.load_all([original, tmp_path / "missing"])
