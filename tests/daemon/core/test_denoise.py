"""The vectorized denoiser against a plain flood fill, on tables and random maps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from benchmarks.flood_fill import remove_small_clusters_flood_fill
from lineside.daemon.core.denoise import binarize, remove_small_clusters

flood_fill_reference = remove_small_clusters_flood_fill


def _grid(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in r] for r in rows], dtype=np.uint8)


CASES = {
    "empty": (_grid(["....", "....", "...."]), 1),
    "full": (_grid(["####", "####", "####"]), 12),
    "full, one pixel short": (_grid(["####", "####", "####"]), 13),
    "single pixel kept": (_grid(["....", ".#..", "...."]), 1),
    "single pixel dropped": (_grid(["....", ".#..", "...."]), 2),
    "diagonal-only is four clusters": (_grid(["#...", ".#..", "..#.", "...#"]), 2),
    "border-touching": (_grid(["##..", "#...", "...#", "..##"]), 3),
    "1x1 map": (_grid(["#"]), 1),
    "one row": (_grid(["##.###.#"]), 2),
    "ring": (_grid(["#####", "#...#", "#####"]), 12),
}


@pytest.mark.parametrize("mask,min_px", CASES.values(), ids=CASES.keys())
def test_table_matches_flood_fill(mask, min_px):
    got = remove_small_clusters(mask, min_px)
    np.testing.assert_array_equal(got, flood_fill_reference(mask, min_px))


def test_diagonal_neighbours_are_separate_clusters():
    mask = _grid(["#.", ".#"])
    assert remove_small_clusters(mask, 2).sum() == 0


@settings(max_examples=300, deadline=None)
@given(
    mask=arrays(
        np.uint8,
        st.tuples(st.integers(1, 24), st.integers(1, 24)),
        elements=st.sampled_from([0, 1]),
    ),
    min_px=st.integers(1, 12),
)
def test_random_maps_match_flood_fill(mask, min_px):
    np.testing.assert_array_equal(
        remove_small_clusters(mask, min_px), flood_fill_reference(mask, min_px)
    )


@pytest.mark.parametrize(
    "value,threshold,flagged", [(0.5, 0.5, 0), (0.5000001, 0.5, 1), (0.0, 0.0, 0), (1.0, 0.2, 1)]
)
def test_binarize_is_strictly_above(value, threshold, flagged):
    amap = np.full((2, 2), value, dtype=np.float32)
    assert binarize(amap, threshold).tolist() == [[flagged] * 2] * 2
