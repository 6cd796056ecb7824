"""Fitting the feature heads: exact leave-one-out Gaussians, the memory bank's coreset and its
int8 search."""

from __future__ import annotations

import numpy as np
import pytest

from lineside.daemon import runtime
from lineside.daemon.core.heads import HeadError, MemoryBankHead, nearest
from lineside.trainer.features import gaussian, memory_bank


def _brute_left_out(y: np.ndarray, k: int, ridge: float, group: int, points: np.ndarray):
    """Distances of `points` (P, L, D) under Gaussians fitted on every point outside `group`."""
    keep = [i for i in range(len(y)) if i // k != group]
    out = []
    for cell in range(y.shape[1]):
        rest = y[keep, cell]
        cov = np.cov(rest.T) + ridge * np.eye(y.shape[2])
        diff = points[:, cell] - rest.mean(0)
        out.append(np.sqrt(np.einsum("pd,de,pe->p", diff, np.linalg.inv(cov), diff)))
    return np.array(out).T


@pytest.mark.parametrize("k", [1, 2])
def test_left_out_distances_equal_a_refit_without_each_group(k):
    rng = np.random.default_rng(0)
    g, h, w, c = 9, 2, 3, 6
    feats = rng.normal(size=(g, k, h, w, c)).astype(np.float32)
    proj = gaussian.projection(feats.reshape(-1, h, w, c), 4)
    queries = rng.normal(size=(3, 2, h, w, c)).astype(np.float32)
    query_groups = np.array([0, 4, 8])
    own, scored = gaussian.left_out_distances(feats, proj, queries, query_groups, chunk=4)
    y = (feats.reshape(g * k, h * w, c) @ proj).astype(np.float64)
    ridge = gaussian.ridge(float(np.sum((y - y.mean(0)) ** 2)), h * w, 4, g * k)
    for group in range(g):
        expected = _brute_left_out(y, k, ridge, group, y[group * k : (group + 1) * k])
        np.testing.assert_allclose(own[group].reshape(k, -1), expected, rtol=1e-4)
    yq = (queries.reshape(3, 2, h * w, c) @ proj).astype(np.float64)
    for m, group in enumerate(query_groups):
        expected = _brute_left_out(y, k, ridge, group, yq[m])
        np.testing.assert_allclose(scored[m].reshape(2, -1), expected, rtol=1e-4)


def test_left_out_scores_are_higher_than_the_fit_that_saw_the_image():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(30, 1, 2, 2, 5)).astype(np.float32)
    proj = gaussian.projection(feats[:, 0], 5)
    own, _ = gaussian.left_out_distances(feats, proj)
    seen = np.stack([gaussian.fit(feats[:, 0], proj).distance(f) for f in feats[:, 0]])
    assert np.all(own[:, 0] > seen)


def test_leaving_out_needs_enough_images():
    with pytest.raises(ValueError, match="at least 3"):
        gaussian.left_out_distances(np.zeros((2, 1, 1, 1, 3), np.float32), np.eye(3))


def test_the_coreset_covers_every_cluster():
    rng = np.random.default_rng(2)
    centres = np.array([[0.0] * 4, [50.0] * 4, [-50.0, 50, -50, 50]])
    patches = np.concatenate([c + rng.normal(size=(200, 4)) for c in centres]).astype(np.float32)
    chosen = memory_bank.coreset(patches, 3, seed=0)
    assert sorted(set(chosen // 200)) == [0, 1, 2]


def test_the_bank_holds_good_patches_and_finds_them():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(6, 4, 4, 8)).astype(np.float32)
    head = memory_bank.fit(feats, seed=0)
    assert len(head.bank) == 6 * 16  # fewer patches than the smallest bank: all kept
    np.testing.assert_allclose(head.distance(feats[2]), 0, atol=0.05)
    assert np.all(head.distance(feats[2] + 3) > 1)


def test_the_bank_keeps_a_share_of_many_patches():
    assert memory_bank.bank_size(500) == 500
    assert memory_bank.bank_size(40_000) == 2000
    assert memory_bank.bank_size(10_000_000) == memory_bank.LARGEST


def _patches(rows: int, seed: int) -> np.ndarray:
    # Like the backbone's features: non-negative, most of their length shared by every patch.
    rng = np.random.default_rng(seed)
    return (2 + rng.gamma(2.0, 0.5, size=(rows, 32))).astype(np.float32)


def test_the_int8_search_finds_the_nearest_patch_as_float32_does(monkeypatch):
    bank, queries = _patches(300, 0), _patches(500, 1)
    norms = np.einsum("md,md->m", bank, bank)
    exact = nearest(queries, bank, norms)
    # Blocks of 64 cells, the last one padded: what a tiled frame's many cells go through.
    monkeypatch.setattr(runtime, "SEARCH_VALUES", 64 * 300)
    search = runtime.BankSearch(memory_bank.search_network(bank), 300, 500)
    assert search.block == 63
    approx = np.maximum(search(queries) + np.einsum("qd,qd->q", queries, queries), 0)
    # int8 rounding moves the squared distance by well under 2% of a patch's squared length.
    assert np.max(np.abs(approx - exact)) < 0.02 * norms.mean()
    assert np.corrcoef(approx, exact)[0, 1] > 0.99
    head = MemoryBankHead.from_arrays({"bank": bank}, (20, 25), search)
    assert head.search_agrees()


def test_a_search_network_made_for_another_bank_is_refused():
    bank, other = _patches(300, 0), _patches(300, 2)
    search = runtime.BankSearch(memory_bank.search_network(other), 300, 16)
    with pytest.raises(HeadError, match="another bank"):
        MemoryBankHead.from_arrays({"bank": bank}, (4, 4), search)
