"""The synthetic part generator: deterministic, MVTec AD layout, masks where the defects are."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lineside.trainer.synth import DEFECTS, make_image, write_dataset


def test_same_seed_same_image_different_seed_different_image():
    a, _ = make_image(1, "train", "good", 0)
    b, _ = make_image(1, "train", "good", 0)
    c, _ = make_image(2, "train", "good", 0)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1


def test_good_parts_vary_in_pose_and_light():
    frames = [make_image(0, "train", "good", i)[0].astype(float) for i in range(4)]
    assert min(np.abs(frames[0] - f).mean() for f in frames[1:]) > 2


@pytest.mark.parametrize("kind", DEFECTS)
def test_each_defect_changes_the_part_inside_its_mask(kind):
    image, mask = make_image(0, "test", kind, 0)
    before, _ = make_image(0, "test", kind, 0, with_defect=False)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert mask is not None and 20 < np.count_nonzero(mask) < 0.05 * mask.size
    changed = np.abs(image.astype(int) - before.astype(int)).max(axis=2) > 10
    near_mask = cv2.dilate(mask, np.ones((7, 7), np.uint8)) > 0
    assert changed.sum() > 0.3 * np.count_nonzero(mask), f"{kind} barely changes the part"
    assert changed[near_mask].sum() >= 0.98 * changed.sum(), f"{kind} changes pixels off its mask"


def test_layout_and_counts(tmp_path):
    counts = write_dataset(tmp_path, train=3, test_good=2, test_per_defect=1, size=128)
    assert counts["train/good"] == 3 and counts["test/scratch"] == 1
    assert len(list((tmp_path / "train" / "good").glob("*.png"))) == 3
    for kind in DEFECTS:
        assert (tmp_path / "test" / kind / "000.png").is_file()
        assert (tmp_path / "ground_truth" / kind / "000_mask.png").is_file()
    assert not (tmp_path / "ground_truth" / "good").exists()
