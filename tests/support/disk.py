"""A file system that fills up."""

from __future__ import annotations

import os
from pathlib import Path


def fill(folder: Path, leave: int = 0) -> Path:
    """Write zeros into `folder` until its file system is full, or has only `leave` bytes
    free; returns the filler file."""
    filler = folder / "filler"
    try:
        with open(filler, "wb") as f:
            while True:
                room = free(folder) - leave
                if room <= 0:
                    break
                f.write(b"\0" * min(65536, room))
                f.flush()
    except OSError:
        pass  # full
    return filler


def free(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize
