"""A file system that fills up."""

from __future__ import annotations

from pathlib import Path


def fill(folder: Path) -> Path:
    """Write zeros into `folder` until its file system is full; returns the filler file."""
    filler = folder / "filler"
    try:
        with open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass  # full
    return filler
