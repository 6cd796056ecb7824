"""Fit the memory-bank head: a greedy coreset of the good parts' patch features (PatchCore).

Every cell of every good image is a patch; the bank keeps the patches that cover all the
others best (greedy k-centre: each pick is the patch farthest from those picked so far), so
a good patch anywhere on a new part finds a close neighbour and a defect does not. Distances
for the greedy search use a random projection to fewer values (Johnson-Lindenstrauss, as
PatchCore does); the bank keeps the full features.

The box's search for each cell's nearest row is one int8 network (made here): a fully connected
layer whose weights are -2 times the bank and whose bias is each row's squared norm, then the
minimum over rows. Its weights are int8 per row and each block of cells is quantized as it
comes (dynamic range), which XNNPACK runs about five times faster than NumPy's float32 product;
the trainer scores with the same network, so the thresholds allow for its rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from lineside.daemon.core.heads import MemoryBankHead
from lineside.daemon.runtime import BankSearch
from lineside.trainer.quiet import silenced

# Bank rows: 5% of the patches, at least 1,024 and at most 8,192 (16 ms a frame on 2 cores at a
# 28x28 grid, 2 MB in the bundle).
SHARE, SMALLEST, LARGEST = 0.05, 1024, 8192
CANDIDATES = 65_536  # patches the greedy search looks at, a random sample beyond that
SEARCH_DIMS = 32


def bank_size(patches: int) -> int:
    return int(min(patches, max(SMALLEST, min(LARGEST, round(SHARE * patches)))))


def coreset(
    patches: np.ndarray,
    size: int,
    seed: int,
    say: Callable[[str], None] = lambda _: None,
) -> np.ndarray:
    """Indices of `size` rows of (P, C) `patches` chosen by greedy k-centre."""
    rng = np.random.default_rng(seed)
    proj = rng.normal(size=(patches.shape[1], SEARCH_DIMS)).astype(np.float32)
    z = patches @ proj
    chosen = np.empty(size, np.int64)
    chosen[0] = int(rng.integers(len(z)))
    gap = np.sum((z - z[chosen[0]]) ** 2, axis=1)
    for i in range(1, size):
        chosen[i] = int(np.argmax(gap))
        np.minimum(gap, np.sum((z - z[chosen[i]]) ** 2, axis=1), out=gap)
        if (i + 1) % 2048 == 0:
            say(f"coreset: {i + 1}/{size} patches chosen")
    return chosen


def search_network(bank: np.ndarray) -> bytes:
    """The int8 network for (Q, C) queries -> (Q,) min over rows b of ||b||^2 - 2 q.b."""
    weights = tf.constant(-2 * bank.T)
    norms = tf.constant(np.einsum("md,md->m", bank, bank)[None, :])

    @tf.function(input_signature=[tf.TensorSpec([None, bank.shape[1]], tf.float32)])
    def search(queries):
        return tf.reduce_min(tf.matmul(queries, weights) + norms, axis=1)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [search.get_concrete_function()], search
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with silenced():
        return converter.convert()


def fit(
    features: np.ndarray,
    seed: int,
    say: Callable[[str], None] = lambda _: None,
    threads: int | None = None,
) -> MemoryBankHead:
    """(N, H, W, C) good features -> the head, searching with the int8 network the box runs."""
    _, h, w, c = features.shape
    # No copy when the features are float32 already: they can be hundreds of MB.
    patches = np.asarray(features.reshape(-1, c), np.float32)
    rng = np.random.default_rng(seed)
    pool = np.arange(len(patches))
    if len(pool) > CANDIDATES:
        pool = np.sort(rng.choice(pool, CANDIDATES, replace=False))
    size = bank_size(len(pool))
    say(f"memory bank: greedy coreset of {size} of {len(pool)} good patches")
    rows = pool[coreset(patches[pool], size, seed, say)]
    # Through float16 now, so what the trainer measures is what the box runs.
    bank = patches[rows].astype(np.float16).astype(np.float32)
    search = BankSearch(search_network(bank), len(bank), h * w, threads)
    return MemoryBankHead(bank, (h, w), search=search)
