"""Preprocessing as the manifest says, frame checks, and the way back to frame coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from lineside.daemon.core.preprocess import (
    FrameError,
    check_frame,
    content,
    geometry,
    input_size,
    preprocess,
)
from lineside.deploy.manifest import FrameSpec, Preprocess


def test_gray_output_shape_and_range():
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    x = preprocess(frame, Preprocess(color="gray", size=(64, 48)))
    assert x.shape == (48, 64, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_equalize_stretches_a_dull_image_to_full_range():
    frame = np.tile(np.linspace(100, 140, 64, dtype=np.uint8), (64, 1))
    x = preprocess(frame, Preprocess(size=(64, 64), equalize=True))
    flat = preprocess(frame, Preprocess(size=(64, 64), equalize=False))
    assert x.max() - x.min() > 0.9 > flat.max() - flat.min()


def test_rgb_keeps_three_channels_in_rgb_order():
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[:, :, 2] = 255  # red in BGR
    x = preprocess(frame, Preprocess(color="rgb", size=(32, 32), equalize=False))
    assert x.shape == (32, 32, 3)
    assert x[..., 0].mean() == pytest.approx(1.0) and x[..., 2].mean() == pytest.approx(0.0)


def test_crop_then_resize_and_geometry_maps_back():
    frame = np.zeros((200, 300), np.uint8)
    frame[50:60, 100:110] = 255
    spec = Preprocess(size=(50, 50), crop=(100, 50, 100, 100), equalize=False)
    x = preprocess(frame, spec)
    assert x[:5, :5].mean() == pytest.approx(1.0)  # the bright square is now top-left
    geo = geometry(frame.shape, spec)
    np.testing.assert_allclose(geo.to_frame([[0, 0], [50, 50]]), [[100, 50], [200, 150]])
    assert geo.box_to_model((100, 50, 10, 10)) == (0, 0, 5, 5)


def test_crop_outside_the_frame_is_a_frame_error():
    with pytest.raises(FrameError, match="outside"):
        preprocess(np.zeros((50, 50), np.uint8), Preprocess(size=(8, 8), crop=(40, 40, 20, 20)))


def test_even_blur_kernel_is_refused():
    with pytest.raises(ValueError, match="odd"):
        Preprocess(size=(8, 8), blur_ksize=4)


SPEC = FrameSpec(height=100, width=200, channels=3)
BAD_FRAMES = {
    "gray into colour model": (np.zeros((100, 200), np.uint8), "1 channel"),
    "four channels": (np.zeros((100, 200, 4), np.uint8), "shape"),
    "16-bit": (np.zeros((100, 200, 3), np.uint16), "uint8"),
    "other size": (np.zeros((120, 200, 3), np.uint8), "200x100"),
}


@pytest.mark.parametrize("frame,message", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_check_frame_refuses_unlike_frames(frame, message):
    with pytest.raises(FrameError, match=message):
        check_frame(frame, SPEC)


def test_check_frame_accepts_any_size_when_training_sizes_varied():
    check_frame(np.zeros((37, 91), np.uint8), FrameSpec(channels=1))


def test_letterbox_keeps_the_aspect_ratio_and_maps_back_to_frame_pixels():
    spec = Preprocess(color="gray", size=(64, 64), equalize=False, geometry="letterbox")
    frame = np.zeros((50, 200), np.uint8)
    frame[20:30, 100:110] = 255  # a 10 px square stays square
    x = preprocess(frame, spec)[:, :, 0]
    ys, xs = np.nonzero(x > 0.5)
    assert abs((np.ptp(xs) + 1) - (np.ptp(ys) + 1)) <= 1
    box = content(frame.shape, spec)
    assert box == (0, 24, 64, 40)  # 200x50 padded to 200x200: the part fills rows 24-40
    assert x[: box[1]].max() == 0 and x[box[3] :].max() == 0
    geo = geometry(frame.shape, spec)
    fx, fy = geo.point(xs.mean(), ys.mean())
    assert abs(fx - 104.5) < 3 and abs(fy - 24.5) < 3


def test_squash_is_unchanged_by_the_geometry_field():
    frame = np.random.default_rng(0).integers(0, 256, (50, 200), dtype=np.uint8)
    plain = Preprocess(color="gray", size=(64, 64), equalize=False)
    assert plain.geometry == "squash" and content(frame.shape, plain) is None
    np.testing.assert_array_equal(
        preprocess(frame, plain), preprocess(frame, plain.model_copy(update={"geometry": "squash"}))
    )


def test_tiles_keep_the_frame_resolution_and_map_back_to_frame_pixels():
    spec = Preprocess(color="gray", size=(224, 224), equalize=False, geometry="tiles")
    frame = np.zeros((700, 1000), np.uint8)
    frame[400:410, 600:610] = 255  # a 10 px defect stays 10 px: nothing is squashed
    assert input_size(frame.shape, spec) == (992, 704)  # to the 32 px grid, each side
    x = preprocess(frame, spec)[:, :, 0]
    assert x.shape == (704, 992)
    ys, xs = np.nonzero(x > 0.5)
    assert 9 <= np.ptp(xs) + 1 <= 11 and 9 <= np.ptp(ys) + 1 <= 11
    fx, fy = geometry(frame.shape, spec).point(xs.mean(), ys.mean())
    assert abs(fx - 604.5) < 1 and abs(fy - 404.5) < 1
    assert content(frame.shape, spec) is None


def test_tiles_at_a_scale_and_frames_smaller_than_a_tile():
    half = Preprocess(size=(224, 224), geometry="tiles", tile_scale=0.5)
    assert input_size((1536, 2048, 3), half) == (1024, 768)
    # A side shorter than a tile is brought up to one tile, never left short of the input.
    assert input_size((208, 512, 3), Preprocess(size=(224, 224), geometry="tiles")) == (512, 224)


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"size": (200, 200)}, "multiple of 32"),
        ({"tile_overlap": 20}, "multiple of 8"),
        ({"tile_overlap": 224}, "below the tile"),
    ],
)
def test_tiles_that_do_not_fit_the_grid_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        Preprocess(**{"size": (224, 224), "geometry": "tiles", **fields})
