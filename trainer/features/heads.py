"""The feature family's heads, each fitted twice the same way: once on the training split (to
choose its map on validation) and once on every good image (the head shipped), with every good
image scored by a head that never saw it (for the thresholds).

- gaussian: exact leave-one-out by the Woodbury identity (trainer/features/gaussian.py);
- memory_bank: the validation split scored by the bank of the training split (a coreset covers
  the patches it was chosen from too well for leaving an image's own rows out to be honest:
  that predicted 4.8% of good bottles to review where the test counted 0%);
- autoencoder: trained once on the training split, scored on the validation split (training it
  once per image would take hours), so only asked for by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lineside.daemon.core.heads import AutoencoderHead, GaussianHead, MemoryBankHead
from lineside.deploy.manifest import AUTOENCODER, GAUSSIAN, MEMORY_BANK
from lineside.trainer.features import autoencoder, gaussian, memory_bank
from lineside.trainer.features.choice import Validation, distances
from lineside.trainer.options import AUTO, FitOptions

Head = GaussianHead | AutoencoderHead | MemoryBankHead
Say = Callable[[str], None]
# What `--head auto` compares; the autoencoder's thresholds cannot be left-out like theirs.
AUTO_HEADS = (GAUSSIAN, MEMORY_BANK)


@dataclass(frozen=True)
class LeftOut:
    """The head shipped, and distances of good images and synthetic defects it never saw."""

    head: Head
    network: bytes | None  # the head's int8 network (autoencoder, memory bank's search)
    image_of: np.ndarray  # (R,) the good image behind each row of `good`
    good: np.ndarray  # (R, h, w) distances of good images (and camera copies)
    probe: np.ndarray  # (len(val.probe_idx), variants, h, w) distances of synthetic defects
    scores_from: str


def kinds(opts: FitOptions) -> tuple[str, ...]:
    return AUTO_HEADS if opts.head == AUTO else (opts.head,)


def _everything(val: Validation) -> np.ndarray:
    """Features of every good image and its camera copy."""
    if val.copy_feats is None:
        return val.all_feats
    return np.concatenate([val.all_feats, val.copy_feats])


def _gaussian_trial(val: Validation, opts: FitOptions, say: Say) -> GaussianHead:
    feats = val.train_features()
    return gaussian.fit(feats, gaussian.projection(feats))


def _gaussian_left_out(val: Validation, opts: FitOptions, tried, say: Say) -> LeftOut:
    groups = val.all_feats[:, None]
    if val.copy_feats is not None:
        groups = np.stack([val.all_feats, val.copy_feats], axis=1)
    flat = groups.reshape(-1, *groups.shape[2:])
    proj = gaussian.projection(flat)
    own, probe = gaussian.left_out_distances(groups, proj, val.probe_feats, val.probe_idx)
    n, k = own.shape[:2]
    return LeftOut(
        gaussian.fit(flat, proj),
        None,
        np.repeat(np.arange(n), k),
        own.reshape(n * k, *own.shape[2:]),
        probe,
        "leave-one-out: each good image scored by the Gaussian fitted on all others"
        + (" (an image and its camera copy left out together)" if k > 1 else ""),
    )


def _bank_trial(val: Validation, opts: FitOptions, say: Say) -> MemoryBankHead:
    return memory_bank.fit(val.train_features(), opts.seed, say, opts.threads)


def _bank_left_out(val: Validation, opts: FitOptions, tried, say: Say) -> LeftOut:
    good = distances(tried, val.good_feats)
    probe = np.stack([distances(tried, f) for f in val.probe_feats])
    if val.copy_feats is not None:
        good = np.concatenate([good, distances(tried, val.copy_feats[val.val_idx])])
    head = memory_bank.fit(_everything(val), opts.seed, say, opts.threads)
    return LeftOut(
        head,
        head.search.model_bytes,
        np.tile(val.val_idx, len(good) // len(val.val_idx)),
        good,
        probe,
        "the validation split (and its camera copies), scored by the bank of the training split",
    )


def _autoencoder_trial(val: Validation, opts: FitOptions, say: Say):
    feats = val.train_features()
    say(f"training the feature autoencoder on {len(feats)} images")
    return autoencoder.fit(feats, opts.seed, say)


def _autoencoder_left_out(val: Validation, opts: FitOptions, tried, say: Say) -> LeftOut:
    head, network = tried
    return LeftOut(
        head,
        network,
        val.val_idx,
        distances(head, val.good_feats),
        np.stack([distances(head, f) for f in val.probe_feats]),
        "the validation split, held out from the autoencoder's training",
    )


@dataclass(frozen=True)
class HeadFit:
    """How a head is fitted on the training split, and how its left-out scores are made."""

    trial: Callable[[Validation, FitOptions, Say], object]
    left_out: Callable[[Validation, FitOptions, object, Say], LeftOut]


# Every head the trainer fits, by its manifest name. A new head: its module here and in
# daemon/core/heads.py, its name in the manifest's HEAD_KINDS, and one line in this table.
HEADS: dict[str, HeadFit] = {
    GAUSSIAN: HeadFit(_gaussian_trial, _gaussian_left_out),
    MEMORY_BANK: HeadFit(_bank_trial, _bank_left_out),
    AUTOENCODER: HeadFit(_autoencoder_trial, _autoencoder_left_out),
}


def trial(kind: str, val: Validation, opts: FitOptions, say: Say):
    """The head fitted on the training split (with its camera copies)."""
    return HEADS[kind].trial(val, opts, say)


def left_out(kind: str, val: Validation, opts: FitOptions, tried, say: Say) -> LeftOut:
    """The head shipped for `kind` and the scores its thresholds come from."""
    return HEADS[kind].left_out(val, opts, tried, say)
