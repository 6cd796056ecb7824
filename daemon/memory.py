"""How the daemon's process hands memory back to the system (glibc's allocator, where present).

Pushed bundles are large (megabytes) and arrive on paho's thread, are checked on the install
thread and dropped: left to its defaults, glibc serves such blocks from per-thread heaps once it
has freed one, and those heaps keep the pages, so every barrage of bad bundles left the resident
memory a little higher. Large blocks are therefore always mapped on their own (and unmapped when
freed), and freed heap pages are given back after each bundle is vetted or swapped. Elsewhere
(musl, other systems) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
LARGE_BLOCK_BYTES = 1024 * 1024


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018 - glibc has both
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def map_large_blocks() -> None:
    """Blocks of LARGE_BLOCK_BYTES and more go straight to the system and back; called once at
    start, before the threads."""
    if _LIBC is not None:
        _LIBC.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)


def give_back() -> None:
    """Return freed heap pages to the system."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
