"""Heads: features per grid cell in, a distance per cell out.

The Gaussian head models each cell of the good parts' feature grid as a Gaussian (mean and
inverse covariance of the projected features) and scores a cell by its Mahalanobis distance.
The bundle stores it as float16 arrays: the projection, the means and the upper triangle of
each inverse covariance, read with `allow_pickle=False`.

The autoencoder head standardizes the features (per channel, float16 mean and scale in the
bundle), has an int8 network reconstruct them, and scores a cell by its mean squared error: the
mission's autoencoder, in feature space. The network call is passed in, so the head stays pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
        """The float16 arrays the bundle stores."""
        rows, cols = np.triu_indices(self.precision.shape[1])
        return {
            "projection": self.projection.astype(np.float16),
            "mean": self.mean.astype(np.float16),
            "precision_upper": self.precision[:, rows, cols].astype(np.float16),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> GaussianHead:
        """The head from its stored arrays; raises HeadError when they do not fit together."""
        try:
            projection = np.asarray(arrays["projection"], np.float32)
            mean = np.asarray(arrays["mean"], np.float32)
            upper = np.asarray(arrays["precision_upper"], np.float32)
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
