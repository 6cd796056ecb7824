"""Regions in frame coordinates, ROI rules and the verdict policy, on hand-made maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lineside.daemon.core.preprocess import Geometry
from lineside.daemon.core.regions import find_regions
from lineside.daemon.core.roi import RoiRule, check_rois, without_expected_changes
from lineside.daemon.core.score import anomalous_fraction
from lineside.daemon.core.verdict import verdict
from lineside.deploy.manifest import Thresholds

# Model maps are 32x32 of a 128x64 crop at (10, 20): x scales by 4, y by 2.
GEO = Geometry(x0=10, y0=20, sx=4.0, sy=2.0)


def _blob_map():
    mask = np.zeros((32, 32), np.uint8)
    mask[4:8, 10:14] = 1  # 16 px
    mask[20:22, 2:4] = 1  # 4 px
    amap = mask.astype(np.float32) * 0.1
    amap[6, 12] = 0.9
    return mask, amap


def test_regions_are_in_frame_coordinates_largest_first():
    mask, amap = _blob_map()
    big, small = find_regions(mask, amap, GEO)
    assert big.box == (10 + 10 * 4, 20 + 4 * 2, 16, 8)
    assert big.area_px == 16 * 8
    assert big.centroid == (10 + 12 * 4, 20 + 6 * 2)
    assert big.peak == (10 + int(12.5 * 4), 20 + int(6.5 * 2))
    assert big.peak_value == pytest.approx(0.9)
    xs, ys = zip(*big.contour, strict=True)
    assert min(xs) >= big.box[0] and max(xs) <= big.box[0] + big.box[2]
    assert min(ys) >= big.box[1] and max(ys) <= big.box[1] + big.box[3]
    assert small.area_px == 4 * 8


def test_no_regions_on_an_empty_mask():
    assert find_regions(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.float32), GEO) == []


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, (24, 20), elements=st.sampled_from([0, 0, 0, 1])))
def test_regions_match_labelling_the_whole_map(mask):
    """Labelling only the box around flagged pixels changes nothing a user sees."""
    amap = np.arange(mask.size, dtype=np.float32).reshape(mask.shape) % 7
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    regions = find_regions(mask, amap, GEO)
    assert len(regions) == n - 1
    expected = sorted(
        ((10 + x * 4, 20 + y * 2, w * 4, h * 2), a * 8) for x, y, w, h, a in stats[1:]
    )
    assert sorted((r.box, r.area_px) for r in regions) == expected
    for r in regions:  # the peak is the highest map value inside the region
        px, py = (r.peak[0] - 10) // 4, (r.peak[1] - 20) // 2
        own = labels == labels[py, px]
        assert mask[py, px] and r.peak_value == amap[own].max()


def test_score_is_the_flagged_fraction():
    mask, amap = _blob_map()
    assert anomalous_fraction(mask, amap) == pytest.approx(20 / 1024)


def test_roi_absent_and_present():
    mask, _ = _blob_map()
    on_blob = (10 + 10 * 4, 20 + 4 * 2, 16, 8)  # exactly the big blob, in frame pixels
    elsewhere = (10 + 24 * 4, 20 + 24 * 2, 16, 8)
    rules = (
        RoiRule(name="clean zone", box=on_blob, expect="absent"),
        RoiRule(name="weld", box=on_blob, expect="present", min_fraction=0.9),
        RoiRule(name="missing weld", box=elsewhere, expect="present"),
        RoiRule(name="quiet zone", box=elsewhere, expect="absent"),
    )
    assert [r.ok for r in check_rois(mask, rules, GEO)] == [False, True, False, True]


def test_expected_change_is_left_out_of_the_score():
    mask, _ = _blob_map()
    weld = RoiRule(name="weld", box=(10 + 10 * 4, 20 + 4 * 2, 16, 8), expect="present")
    cleared = without_expected_changes(mask, (weld,), GEO)
    assert cleared.sum() == 4 and mask.sum() == 20  # the original is untouched


T = Thresholds(review_at=0.01, fail_at=0.05)
VERDICTS = [
    (0.0, (), "pass"),
    (0.01, (), "pass"),  # equal to review_at counts as normal
    (0.0100001, (), "review"),
    (0.05, (), "review"),  # equal to fail_at is still review
    (0.0500001, (), "fail"),
    (0.0, (True, True), "pass"),
    (0.0, (True, False), "fail"),  # a failed region check fails whatever the score
]


@pytest.mark.parametrize("score,rois,expected", VERDICTS)
def test_verdict_boundaries(score, rois, expected):
    assert verdict(score, T, rois) == expected


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError, match="below"):
        Thresholds(review_at=0.5, fail_at=0.1)
