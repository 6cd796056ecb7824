"""Heads: features per grid cell in, a distance per cell out (pure NumPy).

The Gaussian head models each cell of the good parts' feature grid as a Gaussian (mean and
inverse covariance of the projected features) and scores a cell by its Mahalanobis distance.
The bundle stores it as float16 arrays: the projection, the means and the upper triangle of
each inverse covariance, read with `allow_pickle=False`.
"""

from __future__ import annotations

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

    def distance(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) float32 Mahalanobis distance per cell."""
        h, w = self.grid
        if features.shape[:2] != (h, w) or features.shape[2] != self.projection.shape[0]:
            raise HeadError(
                f"features are {features.shape}, the head expects ({h}, {w}, "
                f"{self.projection.shape[0]})"
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
