"""The Gaussian head: distances, its stored arrays and the refusals of arrays that do not fit."""

from __future__ import annotations

import numpy as np
import pytest

from lineside.daemon.core.features import aggregate, assemble
from lineside.daemon.core.heads import GaussianHead, HeadError, MemoryBankHead, nearest


def _head(h=4, w=5, c=6, d=3, seed=0) -> GaussianHead:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(h * w, d, d)).astype(np.float32)
    precision = a @ a.transpose(0, 2, 1) + np.eye(d, dtype=np.float32)
    return GaussianHead(
        rng.normal(size=(c, d)).astype(np.float32),
        rng.normal(size=(h, w, d)).astype(np.float32),
        precision,
    )


def test_the_distance_is_zero_at_the_mean_and_grows_away_from_it():
    head = GaussianHead(
        np.eye(3, dtype=np.float32),
        np.zeros((2, 2, 3), np.float32),
        np.tile(np.eye(3, dtype=np.float32), (4, 1, 1)),
    )
    feats = np.zeros((2, 2, 3), np.float32)
    feats[1, 0] = (3, 4, 0)
    d = head.distance(feats)
    assert d.shape == (2, 2) and d.dtype == np.float32
    np.testing.assert_allclose(d, [[0, 0], [5, 0]], atol=1e-6)


def test_the_distance_is_the_mahalanobis_distance():
    head = _head()
    feats = np.random.default_rng(1).normal(size=(4, 5, 6)).astype(np.float32)
    y = feats.reshape(20, 6) @ head.projection - head.mean.reshape(20, 3)
    expected = np.sqrt([v @ p @ v for v, p in zip(y, head.precision, strict=True)])
    np.testing.assert_allclose(head.distance(feats).ravel(), expected, rtol=1e-4)


def test_stored_arrays_are_float16_and_int8_and_read_back():
    head = _head()
    arrays = head.to_arrays()
    assert arrays["projection"].dtype == arrays["mean"].dtype == np.float16
    assert arrays["precision_int8"].dtype == np.int8
    assert arrays["precision_int8"].shape == (20, 6)  # 3 x 4 / 2 values per cell
    assert arrays["precision_scale"].shape == (20, 1)
    back = GaussianHead.from_arrays(arrays)
    np.testing.assert_allclose(back.precision, back.precision.transpose(0, 2, 1))
    # int8 per cell: within half a step of the cell's largest entry / 127.
    step = np.abs(head.precision).max(axis=(1, 2), keepdims=True) / 127
    assert np.all(np.abs(back.precision - head.precision) <= step / 2 + 1e-3)
    feats = np.random.default_rng(5).normal(size=(4, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(back.distance(feats), head.distance(feats), rtol=0.03)


def test_bundles_with_float16_inverse_covariances_still_read():
    head = _head()
    rows, cols = np.triu_indices(3)
    arrays = {
        "projection": head.projection.astype(np.float16),
        "mean": head.mean.astype(np.float16),
        "precision_upper": head.precision[:, rows, cols].astype(np.float16),
    }
    back = GaussianHead.from_arrays(arrays)
    np.testing.assert_allclose(back.precision, head.precision, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a.pop("mean"), "no array 'mean'"),
        (lambda a: a.update(mean=a["mean"][:, :, :2]), "disagree"),
        (lambda a: a.update(precision_int8=a["precision_int8"][:-1]), "one scale per cell"),
        (
            lambda a: a.update(
                precision_int8=a["precision_int8"][:-1], precision_scale=a["precision_scale"][:-1]
            ),
            "disagree",
        ),
        (lambda a: a.update(precision_int8=a["precision_int8"].astype(np.int16)), "int8"),
        (lambda a: a.update(projection=a["projection"][0]), "dimensions"),
    ],
)
def test_arrays_that_do_not_fit_together_are_refused(edit, message):
    arrays = _head().to_arrays()
    edit(arrays)
    with pytest.raises(HeadError, match=message):
        GaussianHead.from_arrays(arrays)


def test_features_of_the_wrong_shape_are_refused():
    with pytest.raises(HeadError, match="expects"):
        _head().distance(np.zeros((4, 5, 7), np.float32))


def test_coarse_maps_are_brought_to_the_finest_grid():
    fine = np.ones((4, 6, 2), np.float32)
    coarse = np.full((2, 3, 3), 2.0, np.float32)
    out = assemble([fine, coarse])
    assert out.shape == (4, 6, 5)
    np.testing.assert_allclose(out[:, :, 2:], 2.0)


def test_neighbourhood_aggregation_is_the_mean_over_the_cells_around():
    feats = np.random.default_rng(2).normal(size=(5, 6, 7)).astype(np.float32)
    assert aggregate(feats, 1) is feats
    out = aggregate(feats, 3)
    assert out.shape == feats.shape
    # An inner cell is the plain mean of its 3x3 block; a border cell mirrors its neighbours.
    np.testing.assert_allclose(out[2, 3], feats[1:4, 2:5].mean(axis=(0, 1)), atol=1e-5)
    mirrored = np.pad(feats, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    np.testing.assert_allclose(out[0, 0], mirrored[0:3, 0:3].mean(axis=(0, 1)), atol=1e-5)


def _bank(m=50, c=8, grid=(3, 4), seed=3) -> MemoryBankHead:
    rng = np.random.default_rng(seed)
    return MemoryBankHead(rng.normal(size=(m, c)).astype(np.float32), grid, chunk=16)


def test_the_memory_bank_distance_is_to_the_nearest_patch():
    head = _bank()
    feats = np.random.default_rng(4).normal(size=(3, 4, 8)).astype(np.float32)
    d = head.distance(feats)
    brute = np.linalg.norm(feats.reshape(-1, 1, 8) - head.bank[None], axis=-1).min(1)
    np.testing.assert_allclose(d.ravel(), brute, rtol=1e-4, atol=1e-4)
    # A patch that is in the bank is at distance zero.
    feats[1, 2] = head.bank[17]
    assert head.distance(feats)[1, 2] == pytest.approx(0, abs=1e-3)


def test_nearest_is_the_squared_distance_to_the_closest_row():
    bank = np.array([[0.0, 0], [10, 0]], np.float32)
    q = np.array([[1.0, 0]], np.float32)
    norms = np.einsum("md,md->m", bank, bank)
    assert nearest(q, bank, norms)[0] == pytest.approx(1)


def test_memory_bank_arrays_round_trip_and_bad_ones_are_refused():
    head = _bank()
    arrays = head.to_arrays()
    assert arrays["bank"].dtype == np.float16
    back = MemoryBankHead.from_arrays(arrays, head.grid)
    np.testing.assert_allclose(back.bank, head.bank, atol=1e-2)
    with pytest.raises(HeadError, match="no array 'bank'"):
        MemoryBankHead.from_arrays({}, head.grid)
    with pytest.raises(HeadError, match="finite"):
        MemoryBankHead.from_arrays({"bank": np.full((3, 8), np.nan)}, head.grid)
    with pytest.raises(HeadError, match="expects"):
        head.distance(np.zeros((3, 4, 9), np.float32))
