"""Timing for the benchmarks: the median of repeated calls, in milliseconds."""

from __future__ import annotations

import statistics
import time


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)
