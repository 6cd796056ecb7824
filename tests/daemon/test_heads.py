"""The Gaussian head: distances, its stored arrays and the refusals of arrays that do not fit."""

from __future__ import annotations

import numpy as np
import pytest

from lineside.daemon.core.features import assemble
from lineside.daemon.core.heads import GaussianHead, HeadError


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


def test_stored_arrays_are_float16_and_read_back():
    head = _head()
    arrays = head.to_arrays()
    assert {a.dtype for a in arrays.values()} == {np.dtype(np.float16)}
    assert arrays["precision_upper"].shape == (20, 6)  # 3 x 4 / 2 values per cell
    back = GaussianHead.from_arrays(arrays)
    np.testing.assert_allclose(back.precision, back.precision.transpose(0, 2, 1))
    np.testing.assert_allclose(back.precision, head.precision, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a.pop("mean"), "no array 'mean'"),
        (lambda a: a.update(mean=a["mean"][:, :, :2]), "disagree"),
        (lambda a: a.update(precision_upper=a["precision_upper"][:-1]), "disagree"),
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
