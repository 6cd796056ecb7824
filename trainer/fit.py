"""`lineside-train fit`: good images in, a calibrated int8 bundle and its report out.

One dispatch over the model families, each in its own folder: `features` (the pretrained int8
backbone and a head: the default) and `pixels` (autoencoders of the frame's pixels). A family is
a folder with a `fit(data, out, opts, say)` and one line in FAMILIES.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from lineside.trainer.features import fit as features
from lineside.trainer.fitting import FitResult, Prepared, Stages, prepare, split
from lineside.trainer.options import ARCHITECTURES, FEATURES, FitOptions
from lineside.trainer.pixels import fit as pixels

__all__ = ["FitOptions", "FitResult", "Prepared", "Stages", "fit", "prepare", "split"]

Fit = Callable[[Path | Sequence[Path], Path, FitOptions, Callable[[str], None]], FitResult]

# The family behind each `--model` name.
FAMILIES: dict[str, Fit] = {
    FEATURES: features.fit,
    **{name: pixels.fit for name in ARCHITECTURES},
}


def fit(
    data: Path | Sequence[Path], out: Path, opts: FitOptions, say: Callable[[str], None] = print
) -> FitResult:
    """Fit the model family `opts.model` names on DATA's good images and write the bundle."""
    return FAMILIES[opts.model](data, out, opts, say)
