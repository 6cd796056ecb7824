"""Anomaly maps and image scores: the pure functions the box runs on every frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lineside.daemon.core import anomaly_map
from lineside.daemon.core.score import SCORES, top_k_mean
from lineside.deploy.manifest import MAP_KINDS, AnomalyMap


def _part(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((64, 64, 1), np.float32)
    x[16:48, 16:48] = 0.6
    return np.clip(x + rng.normal(0, 0.02, x.shape).astype(np.float32), 0, 1)


@pytest.mark.parametrize("kind", MAP_KINDS)
def test_a_perfect_reconstruction_gives_a_zero_map(kind):
    x = _part()
    amap = anomaly_map.compute(x, x.copy(), AnomalyMap(kind=kind))
    assert amap.shape == (64, 64) and amap.dtype == np.float32
    assert float(amap.max()) < 1e-5


@pytest.mark.parametrize("kind", MAP_KINDS)
@pytest.mark.parametrize("sigma", [0.0, 2.0])
def test_the_map_peaks_where_the_reconstruction_differs(kind, sigma):
    x = _part()
    recon = x.copy()
    recon[40:46, 8:14] += 0.3  # a blob the model failed to reproduce
    amap = anomaly_map.compute(x, recon, AnomalyMap(kind=kind, smooth_sigma=sigma))
    y, xx = np.unravel_index(np.argmax(amap), amap.shape)
    assert 36 <= y <= 49 and 4 <= xx <= 17
    far = amap[:20, 40:]
    assert far.max() < 0.1 * amap.max()


def test_dssim_is_bounded_and_sees_structure_squared_error_misses():
    x = _part()
    flat = x.copy()
    flat[20:44, 20:44] = x[20:44, 20:44].mean()  # same level, texture gone
    se = anomaly_map.squared_error(x, flat)
    ds = anomaly_map.dssim(x, flat)
    assert ds.min() >= 0 and ds.max() <= 1
    # Relative to a brightness step of the same squared error, SSIM weighs lost texture more.
    step = x + np.float32(np.sqrt(se[20:44, 20:44].mean()))
    ds_step = anomaly_map.dssim(x, step)
    assert ds[24:40, 24:40].mean() > 3 * ds_step[24:40, 24:40].mean()


def test_blend_weights_squared_error():
    x = _part()
    recon = np.clip(x + 0.1, 0, 1)
    one = anomaly_map.compute(x, recon, AnomalyMap(kind="blend", l2_weight=1.0))
    ten = anomaly_map.compute(x, recon, AnomalyMap(kind="blend", l2_weight=10.0))
    se = anomaly_map.squared_error(x, recon)
    np.testing.assert_allclose(ten - one, 9 * se, rtol=1e-4, atol=1e-6)


def test_rgb_maps_average_the_channels():
    rng = np.random.default_rng(1)
    x = rng.random((32, 32, 3), np.float32)
    recon = x.copy()
    recon[..., 0] += 0.3
    np.testing.assert_allclose(anomaly_map.squared_error(x, recon), 0.09 / 3, rtol=1e-4)
    assert anomaly_map.dssim(x, recon).shape == (32, 32)


def test_scores():
    amap = np.zeros((100, 100), np.float32)
    amap[0, :50] = 1.0  # 50 pixels at 1: half of the top 1% (100 pixels)
    mask = amap > 0.5
    assert SCORES["anomalous_fraction"](mask, amap) == pytest.approx(0.005)
    assert SCORES["map_max"](mask, amap) == 1.0
    assert top_k_mean(mask, amap) == pytest.approx(0.5)
    assert top_k_mean(mask, np.zeros((3, 3), np.float32)) == 0.0  # k is at least one pixel


def test_dssim_is_wang_et_al_ssim_per_pixel():
    """Against SSIM written out as in Wang et al. (2004), Gaussian window 7x7, sigma 1.5."""
    x = _part(1)
    r = np.clip(x + np.random.default_rng(2).normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
    a, b = x[:, :, 0].astype(np.float64), r[:, :, 0].astype(np.float64)
    g = cv2.getGaussianKernel(7, 1.5)

    def mean(img):
        return cv2.sepFilter2D(img, -1, g, g, borderType=cv2.BORDER_REFLECT_101)

    ma, mb = mean(a), mean(b)
    va, vb, cov = mean(a * a) - ma**2, mean(b * b) - mb**2, mean(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    ssim = (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    np.testing.assert_allclose(anomaly_map.dssim(x, r), (1 - ssim) / 2, atol=2e-5)
