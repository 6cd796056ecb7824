"""Heads: features per grid cell in, a distance per cell out.

The Gaussian head models each cell of the good parts' feature grid as a Gaussian (mean and
inverse covariance of the projected features) and scores a cell by its Mahalanobis distance.
The bundle stores the projection and the means as float16, and the upper triangle of each
inverse covariance as int8 with one float32 scale per cell (symmetric, largest entry = 127):
half the size of float16, which a finer grid needs to fit a bundle of 10 MB, at no measured
loss (mvtec-screw at 320 px: image AUROC 0.953 against 0.952). Bundles written with float16
triangles (`precision_upper`) still read. All read with `allow_pickle=False`.

The memory-bank head keeps a coreset of the good parts' patch features (PatchCore's greedy
coreset) and scores a cell by the distance to its nearest neighbour in the bank, wherever on the
part that neighbour came from: it needs no alignment between parts and few images. Stored
float16, as the bank (M, C) with each row's squared norm recomputed at load. The search for the
nearest row is the frame's largest product (cells x rows x features); where the bundle carries
it as an int8 network the search is passed in (five times faster than float32 on two cores),
otherwise NumPy does it in float32.

The autoencoder head standardizes the features (per channel, float16 mean and scale in the
bundle), has an int8 network reconstruct them, and scores a cell by its mean squared error: the
mission's autoencoder, in feature space. The network call is passed in, so the head stays pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


class HeadError(ValueError):
    """Head arrays that do not fit the manifest or the backbone; one line for a person."""


@dataclass(frozen=True)
class GaussianHead:
    projection: np.ndarray  # (C, D) float32
    mean: np.ndarray  # (H, W, D) float32
    precision: np.ndarray  # (H * W, D, D) float32, symmetric

    @property
    def grid(self) -> tuple[int, int]:
        return self.mean.shape[0], self.mean.shape[1]

    @property
    def channels(self) -> int:
        return self.projection.shape[0]

    def distance(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) float32 Mahalanobis distance per cell."""
        h, w = self.grid
        if features.shape != (h, w, self.channels):
            raise HeadError(
                f"features are {features.shape}, the head expects {(h, w, self.channels)}"
            )
        y = features.reshape(h * w, -1) @ self.projection - self.mean.reshape(h * w, -1)
        d2 = np.einsum("ld,ld->l", np.matmul(y[:, None, :], self.precision)[:, 0, :], y)
        return np.sqrt(np.maximum(d2, 0)).reshape(h, w).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays the bundle stores: float16, and the inverse covariances int8."""
        rows, cols = np.triu_indices(self.precision.shape[1])
        upper = self.precision[:, rows, cols]
        scale = np.abs(upper).max(axis=1, keepdims=True) / 127
        scale[scale == 0] = 1
        return {
            "projection": self.projection.astype(np.float16),
            "mean": self.mean.astype(np.float16),
            "precision_int8": np.rint(upper / scale).astype(np.int8),
            "precision_scale": scale.astype(np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> GaussianHead:
        """The head from its stored arrays; raises HeadError when they do not fit together."""
        try:
            projection = np.asarray(arrays["projection"], np.float32)
            mean = np.asarray(arrays["mean"], np.float32)
            upper = _precision_upper(arrays)
        except KeyError as exc:
            raise HeadError(f"head has no array {exc.args[0]!r}") from None
        if projection.ndim != 2 or mean.ndim != 3 or upper.ndim != 2:
            raise HeadError("head arrays have the wrong number of dimensions")
        d = projection.shape[1]
        cells = mean.shape[0] * mean.shape[1]
        if mean.shape[2] != d or upper.shape != (cells, d * (d + 1) // 2):
            raise HeadError(
                f"head arrays disagree: projection to {d} values, means {mean.shape}, "
                f"inverse covariances {upper.shape}"
            )
        precision = np.zeros((cells, d, d), np.float32)
        rows, cols = np.triu_indices(d)
        precision[:, rows, cols] = upper
        precision[:, cols, rows] = upper
        return cls(projection, mean, precision)


def _precision_upper(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """(cells, D(D+1)/2) float32 upper triangles, from int8 and scales or from float16."""
    if "precision_upper" in arrays:
        return np.asarray(arrays["precision_upper"], np.float32)
    q = np.asarray(arrays["precision_int8"])
    scale = np.asarray(arrays["precision_scale"], np.float32)
    if q.dtype != np.int8 or q.ndim != 2 or scale.shape != (len(q), 1):
        raise HeadError("int8 inverse covariances need one scale per cell")
    return q.astype(np.float32) * scale


# (Q, C) queries -> (Q,) min over the bank's rows b of ||b||^2 - 2 q.b (add ||q||^2 for the
# squared distance to the nearest row).
Search = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MemoryBankHead:
    bank: np.ndarray  # (M, C) float32 patch features of good parts
    grid: tuple[int, int]
    chunk: int = 4096  # bank rows per matmul, to bound the (cells, rows) temporary
    search: Search | None = field(default=None, repr=False)  # the bundle's int8 search network
    norms: np.ndarray = field(init=False, repr=False)  # each row's squared norm

    def __post_init__(self) -> None:
        object.__setattr__(self, "norms", _row_norms(self.bank))

    @property
    def channels(self) -> int:
        return self.bank.shape[1]

    def distance(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) float32 distance to the nearest bank patch."""
        if features.shape != (*self.grid, self.channels):
            raise HeadError(
                f"features are {features.shape}, the head expects {(*self.grid, self.channels)}"
            )
        f = features.reshape(-1, self.channels).astype(np.float32, copy=False)
        if self.search is None:
            d2 = nearest(f, self.bank, self.norms, self.chunk)
        else:
            d2 = np.maximum(self.search(f) + np.einsum("qd,qd->q", f, f), 0)
        return np.sqrt(d2).reshape(self.grid)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"bank": self.bank.astype(np.float16)}

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], grid: tuple[int, int], search: Search | None = None
    ) -> MemoryBankHead:
        try:
            bank = np.asarray(arrays["bank"], np.float32)
        except KeyError as exc:
            raise HeadError(f"head has no array {exc.args[0]!r}") from None
        if bank.ndim != 2 or len(bank) == 0 or not np.all(np.isfinite(bank)):
            raise HeadError("memory bank is not a finite (patches, features) array")
        head = cls(bank, tuple(grid), search=search)
        if search is not None and not head.search_agrees():
            raise HeadError("the memory bank's search network was made for another bank")
        return head

    def search_agrees(self, rows: int = 16, tolerance: float = 0.02) -> bool:
        """Whether the search finds the bank's own rows (distance 0) to within int8 rounding:
        a network made for another bank does not."""
        if self.search is None:
            return True
        at = np.linspace(0, len(self.bank) - 1, min(rows, len(self.bank))).astype(int)
        d2 = self.search(self.bank[at]) + self.norms[at]
        return bool(np.max(np.abs(d2)) <= tolerance * max(float(np.mean(self.norms)), 1e-12))


# Values in the (bank rows, cells) temporary of one matrix product: 16 MB of float32.
TEMPORARY_VALUES = 4 * 1024 * 1024


def _row_norms(bank: np.ndarray) -> np.ndarray:
    return np.einsum("md,md->m", bank, bank)


def nearest(
    queries: np.ndarray, bank: np.ndarray, bank_norms: np.ndarray, chunk: int = 4096
) -> np.ndarray:
    """(Q, C) queries -> (Q,) squared distance to the nearest of the (M, C) bank rows.

    ||q - b||^2 = ||q||^2 + ||b||^2 - 2 q.b, one matmul per chunk of the bank.
    """
    q_norms = np.einsum("qd,qd->q", queries, queries)
    best = np.full(len(queries), np.inf, np.float32)
    # Queries in blocks too: a tiled frame has tens of thousands of cells, and one (rows, cells)
    # temporary for all of them would be hundreds of MB.
    block = max(256, TEMPORARY_VALUES // min(chunk, len(bank)))
    for lo in range(0, len(bank), chunk):
        part, part_norms = bank[lo : lo + chunk], bank_norms[lo : lo + chunk, None]
        for q0 in range(0, len(queries), block):
            d = part @ queries[q0 : q0 + block].T  # (m, q)
            d *= -2
            d += part_norms
            np.minimum(best[q0 : q0 + block], d.min(axis=0), out=best[q0 : q0 + block])
    return np.maximum(best + q_norms, 0)


@dataclass(frozen=True)
class AutoencoderHead:
    mean: np.ndarray  # (C,) float32
    scale: np.ndarray  # (C,) float32, > 0
    grid: tuple[int, int]
    reconstruct: Callable[[np.ndarray], np.ndarray]  # (H, W, C) -> (H, W, C), standardized

    @property
    def channels(self) -> int:
        return self.mean.shape[0]

    def standardize(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.scale

    def distance(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) float32 mean squared reconstruction error per cell."""
        if features.shape != (*self.grid, self.channels):
            raise HeadError(
                f"features are {features.shape}, the head expects {(*self.grid, self.channels)}"
            )
        z = self.standardize(features).astype(np.float32)
        return np.mean(np.square(z - self.reconstruct(z)), axis=-1, dtype=np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean.astype(np.float16), "scale": self.scale.astype(np.float16)}

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        grid: tuple[int, int],
        reconstruct: Callable[[np.ndarray], np.ndarray],
    ) -> AutoencoderHead:
        try:
            mean = np.asarray(arrays["mean"], np.float32)
            scale = np.asarray(arrays["scale"], np.float32)
        except KeyError as exc:
            raise HeadError(f"head has no array {exc.args[0]!r}") from None
        if mean.ndim != 1 or scale.shape != mean.shape or not np.all(scale > 0):
            raise HeadError("head standardization arrays are not one positive scale per channel")
        return cls(mean, scale, tuple(grid), reconstruct)
