"""Fit the per-location Gaussian head on good parts' backbone features.

The features are projected onto their main directions (PCA over every cell of every good image)
to keep the bundle small: 96 of 128 values kept 99% of the measured quality on magnetic tiles
and cut the inverse covariances from 26 to 7 MB. Each cell's covariance gets a small ridge so it
stays invertible with fewer images than dimensions.
"""

from __future__ import annotations

import numpy as np

from lineside.daemon.core.heads import GaussianHead

DIMS = 96
# Cells of the grid a Gaussian may model: 1,800 cells are 8.4 MB of int8 inverse covariances, so
# the bundle stays under 10 MB (a 40x40 grid at 320 px, or native tiles of a 512x208 frame).
MAX_CELLS = 1800


def fits(grid: tuple[int, int]) -> bool:
    return grid[0] * grid[1] <= MAX_CELLS


RIDGE = 0.01  # share of the mean feature variance added to each covariance's diagonal


# Rows (cells of images) and cells per pass: every cell of 500 images at a 40x40 grid would be
# 800 MB as float64 at once.
ROWS_PER_PASS = 65_536
CELLS_PER_PASS = 64


def projection(features: np.ndarray, dims: int = DIMS) -> np.ndarray:
    """(C, dims) float32: the main directions of all cells' features (PCA)."""
    x = features.reshape(-1, features.shape[-1])
    scatter = np.zeros((x.shape[1], x.shape[1]))
    total = np.zeros(x.shape[1])
    for lo in range(0, len(x), ROWS_PER_PASS):
        part = x[lo : lo + ROWS_PER_PASS].astype(np.float64)
        scatter += part.T @ part
        total += part.sum(0)
    mean = total / len(x)
    _, vectors = np.linalg.eigh(scatter - len(x) * np.outer(mean, mean))
    return vectors[:, ::-1][:, : min(dims, x.shape[1])].astype(np.float32)


def fit(features: np.ndarray, proj: np.ndarray) -> GaussianHead:
    """(N, H, W, C) good features and a projection -> the Gaussian head."""
    n, h, w, _ = features.shape
    flat = features.reshape(n, h * w, -1)
    cells, d = h * w, proj.shape[1]
    mean, cov = np.empty((cells, d)), np.empty((cells, d, d))
    for lo in range(0, cells, CELLS_PER_PASS):
        sl = slice(lo, min(lo + CELLS_PER_PASS, cells))
        y = (flat[:, sl] @ proj).astype(np.float64)  # (N, l, D)
        mean[sl] = y.mean(0)
        centred = (y - mean[sl]).transpose(1, 0, 2)  # (l, N, D): batched matmul uses BLAS
        cov[sl] = np.matmul(centred.transpose(0, 2, 1), centred) / max(n - 1, 1)
    ridge = RIDGE * float(np.mean(np.diagonal(cov, axis1=1, axis2=2)))
    cov += ridge * np.eye(d)
    precision = np.linalg.inv(cov).astype(np.float32)
    # Round-trip through the stored arrays now, so what the trainer measures is what the box runs.
    stored = GaussianHead(proj, mean.reshape(h, w, -1).astype(np.float32), precision)
    return GaussianHead.from_arrays(stored.to_arrays())


def ridge(sum_squares: float, cells: int, dims: int, n: int) -> float:
    """The ridge `fit` adds (RIDGE x the mean per-cell variance), from the sum of squares of
    n images' centred projected features over all cells and dims."""
    return RIDGE * sum_squares / (cells * dims) / max(n - 1, 1)


def left_out_distances(
    features: np.ndarray,
    proj: np.ndarray,
    queries: np.ndarray | None = None,
    query_groups: np.ndarray | None = None,
    chunk: int = 64,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Every good image scored by the Gaussian fitted on all the others, exactly, in one pass.

    `features` is (G, k, H, W, C): G groups of k images that leave together (an image and its
    camera copy). For each group the head fitted without it differs from the head on all
    images by a rank-k change of each cell's covariance and a shift of its mean, so its
    distances follow from the full fit by the Woodbury identity instead of G refits: a fold
    size of one image, which is what the shipped head (fitted on every image) faces on a new
    part. `queries` (M, Q, H, W, C) are scored by the head without group `query_groups[m]`
    (synthetic defects pasted on that group's image). The ridge is the full fit's.
    Returns (G, k, H, W) and (M, Q, H, W) Mahalanobis distances.
    """
    g, k, h, w, c = features.shape
    n = g * k
    if g < 2 or n - k < 2:
        raise ValueError("leaving a group out needs at least 3 images in the others")
    cells = h * w
    flat = features.reshape(n, cells, c)

    def centred(sl: slice) -> tuple[np.ndarray, np.ndarray]:
        # Projected per chunk of cells: all cells at once would hold (cells, n, D) float64 twice.
        y = (flat[:, sl] @ proj).astype(np.float64).transpose(1, 0, 2)  # (l, n, D)
        mean = y.mean(1, keepdims=True)
        return y - mean, mean

    chunks = [slice(lo, min(lo + chunk, cells)) for lo in range(0, cells, chunk)]
    total = sum(float(np.einsum("lnd,lnd->", e, e)) for e in (centred(sl)[0] for sl in chunks))
    r = ridge(total, cells, proj.shape[1], n)
    own = np.empty((g, k, cells))
    out_q = None
    if queries is not None:
        out_q = np.empty((*queries.shape[:2], cells))
        q_flat = queries.reshape(*queries.shape[:2], cells, c)
    m_inv = (n - k - 1) * (np.eye(k) - 1.0 / n)  # M'^-1 for k points leaving together
    for sl in chunks:
        e, mean = centred(sl)  # (l, n, D), (l, 1, D)
        scatter = np.matmul(e.transpose(0, 2, 1), e)
        a = scatter / (n - k - 1) + r * np.eye(e.shape[-1])
        a_inv = np.linalg.inv(a)  # (l, D, D)
        u = e.reshape(e.shape[0], g, k, -1)  # (l, G, k, D)
        z = np.matmul(e, a_inv).reshape(u.shape)  # batched matmul: BLAS, unlike einsum
        gram = np.einsum("lgad,lgbd->lgab", u, z)  # U A^-1 U^T
        kinv = np.linalg.inv(m_inv - gram)  # (l, G, k, k)
        delta = u.sum(2) / (n - k)  # the mean's shift when the group leaves: (l, G, D)
        z_delta = z.sum(2) / (n - k)
        res = u + delta[:, :, None]  # residuals of the group's own images
        a_res = z + z_delta[:, :, None]
        own[:, :, sl] = _woodbury(res, a_res, u, kinv).transpose(1, 2, 0)
        if queries is not None:
            qg = np.asarray(query_groups)
            yq = (q_flat[:, :, sl] @ proj).astype(np.float64).transpose(2, 0, 1, 3)
            eq = yq - mean[:, None]  # (l, M, Q, D)
            res_q = eq + delta[:, qg][:, :, None]
            flat_q = res_q.reshape(res_q.shape[0], -1, res_q.shape[-1])
            a_res_q = np.matmul(flat_q, a_inv).reshape(res_q.shape)
            d = _woodbury(res_q, a_res_q, u[:, qg], kinv[:, qg])
            out_q[:, :, sl] = d.transpose(1, 2, 0)
    dist = np.sqrt(np.maximum(own, 0)).reshape(g, k, h, w).astype(np.float32)
    if out_q is None:
        return dist, None
    return dist, np.sqrt(np.maximum(out_q, 0)).reshape(*out_q.shape[:2], h, w).astype(np.float32)


def _woodbury(res, a_res, u, kinv) -> np.ndarray:
    """Squared distances r^T C'^-1 r, C'^-1 = A^-1 + A^-1 U^T K^-1 U A^-1 (leading axes l, g)."""
    base = np.einsum("lgqd,lgqd->lgq", res, a_res)
    wv = np.einsum("lgbd,lgqd->lgqb", u, a_res)  # U A^-1 r
    return base + np.einsum("lgqa,lgab,lgqb->lgq", wv, kinv, wv)
