"""Overlapping tiles over a large image, and their feature grids stitched back into one.

A frame inspected at its own resolution is larger than the backbone's input: it is cut into
tiles of the input's size that overlap by a few cells, each tile's grid is computed on its own,
and every cell of the whole grid is taken from the tile in which it lies furthest from an edge
(the middle of each overlap is the seam), so no cell is judged from a tile border.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of `tile` pixels start along a side of `length`, `overlap` apart at least;
    the last one ends at the side's end."""
    if length <= tile:
        return [0]
    step = tile - overlap
    out = list(range(0, length - tile, step))
    return [*out, length - tile]


def seams(origins: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """The (start, end) each tile owns along a side: from the middle of the overlap with the
    tile before it to the middle of the overlap with the one after it."""
    edges = [0]
    for prev, nxt in itertools.pairwise(origins):
        edges.append((nxt + prev + tile) // 2)
    edges.append(length)
    return list(itertools.pairwise(edges))


@dataclass(frozen=True)
class Tiling:
    """Tiles of (tile_w, tile_h) pixels over a (width, height) image, on a grid of `stride`
    pixels per cell. Every size is a multiple of the stride."""

    width: int
    height: int
    tile_w: int
    tile_h: int
    overlap: int
    stride: int

    @property
    def grid(self) -> tuple[int, int]:
        return self.height // self.stride, self.width // self.stride

    @property
    def count(self) -> int:
        return len(self._axis(self.height, self.tile_h)) * len(self._axis(self.width, self.tile_w))

    def _axis(self, length: int, tile: int) -> list[tuple[int, int, int]]:
        """(tile start, owned start, owned end) per tile along a side, in cells."""
        s = self.stride
        origins = [o // s for o in starts(length, tile, self.overlap)]
        owned = seams(origins, tile // s, length // s)
        return [(o, lo, hi) for o, (lo, hi) in zip(origins, owned, strict=True)]

    def stitch(self, image: np.ndarray, grid_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """(H, W, ...) image -> (H / stride, W / stride, C): `grid_of` run on every tile."""
        s = self.stride
        out: np.ndarray | None = None
        for ty, ylo, yhi in self._axis(self.height, self.tile_h):
            for tx, xlo, xhi in self._axis(self.width, self.tile_w):
                tile = image[ty * s : ty * s + self.tile_h, tx * s : tx * s + self.tile_w]
                cells = grid_of(tile)
                if out is None:
                    out = np.empty((*self.grid, cells.shape[-1]), cells.dtype)
                out[ylo:yhi, xlo:xhi] = cells[ylo - ty : yhi - ty, xlo - tx : xhi - tx]
        assert out is not None
        return out
