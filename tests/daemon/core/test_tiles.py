"""Tiles over a large image, and their grids stitched back without a seam."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lineside.daemon.core.tiles import Tiling, seams, starts

STRIDE = 8


@st.composite
def tilings(draw) -> Tiling:
    tile_w, tile_h = (32 * draw(st.integers(2, 10)) for _ in range(2))
    overlap = 8 * draw(st.integers(0, min(tile_w, tile_h) // 8 - 1))
    width = 32 * draw(st.integers(tile_w // 32, 40))
    height = 32 * draw(st.integers(tile_h // 32, 40))
    return Tiling(width, height, tile_w, tile_h, overlap, STRIDE)


@given(st.integers(32, 4096), st.integers(32, 512), st.data())
def test_tiles_cover_a_side_and_each_cell_has_one_owner(length, tile, data):
    tile = min(tile, length)
    overlap = data.draw(st.integers(0, tile - 1))
    origins = starts(length, tile, overlap)
    assert origins[0] == 0 and origins[-1] + tile == length
    assert all(b - a <= tile - overlap for a, b in itertools.pairwise(origins))
    owned = seams(origins, tile, length)
    assert owned[0][0] == 0 and owned[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(owned))
    for origin, (lo, hi) in zip(origins, owned, strict=True):
        assert origin <= lo < hi <= origin + tile


@given(tilings())
def test_stitching_a_shift_equivariant_grid_is_the_grid_of_the_whole_image(tiling):
    rng = np.random.default_rng(tiling.width * tiling.height)
    image = rng.random((tiling.height, tiling.width, 2), np.float32)
    stitched = tiling.stitch(image, lambda tile: tile[::STRIDE, ::STRIDE])
    np.testing.assert_array_equal(stitched, image[::STRIDE, ::STRIDE])


@given(tilings())
def test_no_cell_is_taken_from_near_a_tile_edge_inside_the_image(tiling):
    """Each cell comes from the tile where it lies at least half the overlap from an edge
    (the image's own borders excepted), so no cell is judged from a tile border."""
    rows, cols = tiling.tile_h // STRIDE, tiling.tile_w // STRIDE
    r, c = np.mgrid[:rows, :cols]
    # Per cell of a tile: its distance in cells to the tile's left, right, top and bottom.
    edges = np.stack([c, cols - 1 - c, r, rows - 1 - r], axis=-1).astype(np.float32)
    stitched = tiling.stitch(np.zeros((tiling.height, tiling.width)), lambda _: edges)
    h, w = tiling.grid
    margin = tiling.overlap // STRIDE // 2
    for side in range(4):
        dist = stitched[:, :, side]
        # Either `margin` from the tile's edge, or that edge is the image's own border.
        assert np.all((dist >= margin) | (dist == _border_distance(side, h, w)))


def _border_distance(side: int, h: int, w: int) -> np.ndarray:
    """Each cell's distance to the image border on `side`: a tile edge there is the image's."""
    r, c = np.mgrid[:h, :w]
    return [c, w - 1 - c, r, h - 1 - r][side]
