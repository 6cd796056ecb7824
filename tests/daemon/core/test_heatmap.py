"""Heatmap overlays: the part shows through where the map is quiet, anomalies stand out."""

from __future__ import annotations

import cv2
import numpy as np

from lineside.daemon.core import heatmap
from lineside.daemon.core.pipeline import Inspection
from lineside.daemon.core.preprocess import Geometry
from lineside.daemon.core.regions import find_regions


def _inspection(amap: np.ndarray, threshold: float, geo: Geometry) -> Inspection:
    mask = (amap > threshold).view(np.uint8)
    regions = find_regions(mask, amap, geo)
    return Inspection(0.9, "fail", regions, [], {}, amap, mask, geo)


def test_overlay_leaves_quiet_pixels_alone_and_colours_the_anomaly():
    rng = np.random.default_rng(0)
    frame = rng.integers(40, 200, (256, 256, 3), dtype=np.uint8)
    amap = np.zeros((64, 64), np.float32)
    amap[20:30, 30:40] = 1.0  # well above twice the threshold: full colour
    geo = Geometry(x0=0, y0=0, sx=4.0, sy=4.0)
    out = heatmap.render(frame, _inspection(amap, 0.1, geo), pixel_threshold=0.1)
    assert out.shape == frame.shape and out.dtype == np.uint8
    # Far from the anomaly (and below the label plate) the frame is unchanged.
    quiet = (slice(180, 256), slice(0, 256))
    assert np.array_equal(out[quiet], frame[quiet])
    # Inside it, the colour map's hot end (dark red) covers the frame's random grays.
    hot = out[90:110, 130:150].astype(int)
    assert hot[..., 2].mean() > hot[..., 0].mean() + 60 and hot[..., 0].mean() < 60
    # The outline runs through the region's contour in the verdict's colour.
    contour = np.array(find_regions((amap > 0.1).view(np.uint8), amap, geo)[0].contour)
    for x, y in contour:
        assert tuple(out[y, x]) == (40, 40, 230)


def test_gray_frames_become_colour_overlays():
    frame = np.full((64, 64), 128, np.uint8)
    amap = np.zeros((64, 64), np.float32)
    geo = Geometry(x0=0, y0=0, sx=1.0, sy=1.0)
    out = heatmap.render(frame, _inspection(amap, 0.1, geo), pixel_threshold=0.1)
    assert out.shape == (64, 64, 3)
    assert np.array_equal(out[32:, :], cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)[32:, :])


def test_a_letterboxed_map_reaching_past_the_frame_is_drawn_inside_it():
    frame = np.full((50, 200, 3), 100, np.uint8)
    amap = np.ones((64, 64), np.float32)  # hot everywhere, bars included
    geo = Geometry(x0=0, y0=-75, sx=200 / 64, sy=200 / 64)  # 200x50 padded to 200x200
    insp = Inspection(1.0, "fail", [], [], {}, amap, amap > 0, geo)
    out = heatmap.render(frame, insp, pixel_threshold=0.5)
    assert out.shape == frame.shape
    assert (out[30:, :, 0] != 100).any()  # the map is blended in over the whole frame


def test_nothing_is_coloured_below_the_pixel_threshold():
    """A features model's map is never near zero on a good part: a good frame stays untinted."""
    rng = np.random.default_rng(1)
    frame = rng.integers(40, 200, (128, 128, 3), dtype=np.uint8)
    amap = np.full((32, 32), 0.099, np.float32)  # everywhere just under the threshold
    geo = Geometry(x0=0, y0=0, sx=4.0, sy=4.0)
    out = heatmap.render(frame, _inspection(amap, 0.1, geo), pixel_threshold=0.1)
    below_plate = (slice(40, 128), slice(0, 128))
    assert np.array_equal(out[below_plate], frame[below_plate])
    amap[20:24, 20:24] = 0.1  # at the threshold: coloured, and only there
    out = heatmap.render(frame, _inspection(amap, 0.1, geo), pixel_threshold=0.1)
    changed = (out != frame).any(axis=2)
    changed[:40] = False
    ys, xs = np.nonzero(changed)
    assert ys.min() >= 76 and ys.max() <= 99 and xs.min() >= 76 and xs.max() <= 99


def test_the_map_can_be_left_out_keeping_the_outlines():
    frame = np.full((256, 256, 3), 120, np.uint8)
    amap = np.zeros((64, 64), np.float32)
    amap[20:30, 30:40] = 1.0
    geo = Geometry(x0=0, y0=0, sx=4.0, sy=4.0)
    insp = _inspection(amap, 0.1, geo)
    out = heatmap.render(frame, insp, pixel_threshold=0.1, with_map=False)
    assert np.array_equal(out[100:110, 140:150], frame[100:110, 140:150])  # inside: no colour
    x, y = insp.regions[0].contour[0]
    assert tuple(out[y, x]) == (40, 40, 230)  # the outline is drawn
