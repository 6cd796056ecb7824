"""Large frames inspected in tiles at native resolution: fitted by the real trainer, run by the
box's pipeline, a small defect found where it is on the frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lineside.daemon.core.pipeline import inspect_frame
from lineside.daemon.core.preprocess import FrameError
from lineside.daemon.intake import selftest
from lineside.daemon.runtime import load_bundle
from lineside.trainer import synth
from lineside.trainer.dataset import DatasetError

SIZE = 512  # 9 tiles of 224 px with the default overlap
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def large_parts(tmp_path_factory):
    out = tmp_path_factory.mktemp("large") / "flange"
    synth.write_dataset(out, seed=5, train=24, test_good=4, test_per_defect=1, size=SIZE)
    return out


@pytest.fixture(scope="module")
def tiles_fit(large_parts, tmp_path_factory):
    from lineside.trainer.fit import FitOptions, fit

    out = tmp_path_factory.mktemp("tiles") / "t.lsb"
    lines: list[str] = []
    result = fit(large_parts, out, FitOptions(geometry="tiles", version="t1"), say=lines.append)
    return result, lines


def test_a_tiled_bundle_keeps_the_frame_resolution_and_is_what_the_box_runs(tiles_fit):
    result, lines = tiles_fit
    m = result.manifest
    assert m.preprocess.geometry == "tiles" and m.preprocess.size == (224, 224)
    assert (m.frame.width, m.frame.height) == (SIZE, SIZE)
    # One cell per 8 px of the frame: 64x64 cells, too many for a Gaussian per cell.
    assert m.features.head.kind == "memory_bank" and tuple(m.features.head.grid) == (64, 64)
    assert any("9 tiles of 224x224 over 512x512" in line for line in lines)
    assert any("gaussian head: not tried" in line for line in lines)
    bundle, model = load_bundle(result.path)
    assert model.backbone.tiling.count == 9
    assert len(selftest.run(bundle, model)) == len(m.selftest.images)


def _small_spot(frame: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The part with a dark spot 6 px across where the synthetic spot defect would be."""
    ys, xs = np.nonzero(mask)
    centre = (int(xs.mean()), int(ys.mean()))
    out = frame.copy()
    cv2.circle(out, centre, 3, (40, 40, 40), -1, lineType=cv2.LINE_AA)
    return out, centre


@pytest.mark.parametrize("part", range(3))
def test_a_defect_of_a_few_pixels_is_found_where_it_is_on_the_frame(tiles_fit, part):
    result, _ = tiles_fit
    bundle, model = load_bundle(result.path)
    m = bundle.manifest
    clean, mask = synth.make_image(5, "probe", "spot", part, size=SIZE, with_defect=False)
    spotted, (cx, cy) = _small_spot(clean, mask)
    good = inspect_frame(clean, m, model.infer)
    bad = inspect_frame(spotted, m, model.infer)
    # Thresholds from 5 validation images sit tight, so the clean part is compared, not judged.
    assert bad.verdict == "fail" and bad.score > 1.5 * good.score
    # The map's peak, in frame pixels, is on the spot: stitching kept every tile in place.
    py, px = np.unravel_index(np.argmax(bad.amap), bad.amap.shape)
    fx, fy = bad.geometry.point(px, py)
    assert abs(fx - cx) <= 8 and abs(fy - cy) <= 8
    x, y, w, h = max(bad.regions, key=lambda r: r.peak_value).box
    assert x - 8 <= cx <= x + w + 8 and y - 8 <= cy <= y + h + 8


def test_a_frame_of_another_size_is_refused(tiles_fit):
    result, _ = tiles_fit
    bundle, model = load_bundle(result.path)
    with pytest.raises(FrameError, match="512x512"):
        inspect_frame(np.zeros((480, 640, 3), np.uint8), bundle.manifest, model.infer)


def test_tiles_need_training_frames_of_one_size(tmp_path):
    from lineside.trainer.fitting import prepare
    from lineside.trainer.options import FitOptions

    good = tmp_path / "parts" / "train" / "good"
    good.mkdir(parents=True)
    for i, side in enumerate((256, 256, 320)):
        cv2.imwrite(str(good / f"{i}.png"), np.full((side, side, 3), 128, np.uint8))
    with pytest.raises(DatasetError, match=r"one size.*256x256 to 320x320"):
        prepare(tmp_path / "parts", FitOptions(geometry="tiles"))


def test_a_gaussian_asked_for_on_a_grid_it_cannot_hold_is_refused(large_parts, tmp_path):
    from lineside.trainer.fit import FitOptions, fit

    opts = FitOptions(geometry="tiles", head="gaussian")
    with pytest.raises(DatasetError, match="64x64 grid is over the 1800 cells"):
        fit(large_parts, tmp_path / "g.lsb", opts, say=lambda _: None)
