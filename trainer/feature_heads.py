"""The feature family's heads, each fitted twice the same way: once on the training split (to
choose its map on validation) and once on every good image (the head shipped), with every good
image scored by a head that never saw it (for the thresholds).

- gaussian: exact leave-one-out by the Woodbury identity (trainer/gaussian.py);
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
from lineside.trainer import feature_ae, gaussian, memory_bank
from lineside.trainer.feature_choice import Validation, distances
from lineside.trainer.options import AUTO, FitOptions

Head = GaussianHead | AutoencoderHead | MemoryBankHead
# What `--head auto` compares; the autoencoder's thresholds cannot be left-out like theirs.
AUTO_HEADS = ("gaussian", "memory_bank")


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


def trial(kind: str, val: Validation, opts: FitOptions, say: Callable[[str], None]):
    """The head fitted on the training split (with its camera copies)."""
    feats = val.train_features()
    if kind == "gaussian":
        return gaussian.fit(feats, gaussian.projection(feats))
    if kind == "memory_bank":
        return memory_bank.fit(feats, opts.seed, say, opts.threads)
    say(f"training the feature autoencoder on {len(feats)} images")
    return feature_ae.fit(feats, opts.seed, say)


def left_out(kind: str, val: Validation, opts: FitOptions, tried, say) -> LeftOut:
    """The head shipped for `kind` and the scores its thresholds come from."""
    if kind == "gaussian":
        groups = val.all_feats[:, None]
        if val.copy_feats is not None:
            groups = np.stack([val.all_feats, val.copy_feats], axis=1)
        flat = groups.reshape(-1, *groups.shape[2:])
        proj = gaussian.projection(flat)
        own, probe = gaussian.left_out_distances(groups, proj, val.probe_feats, val.probe_idx)
        n, k = own.shape[:2]
        image_of = np.repeat(np.arange(n), k)
        head = gaussian.fit(flat, proj)
        return LeftOut(
            head,
            None,
            image_of,
            own.reshape(n * k, *own.shape[2:]),
            probe,
            "leave-one-out: each good image scored by the Gaussian fitted on all others"
            + (" (an image and its camera copy left out together)" if k > 1 else ""),
        )
    if kind == "memory_bank":
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
            "the validation split (and its camera copies), scored by the bank of the training "
            "split",
        )
    head, network = tried
    probe = np.stack([distances(head, f) for f in val.probe_feats])
    return LeftOut(
        head,
        network,
        val.val_idx,
        distances(head, val.good_feats),
        probe,
        "the validation split, held out from the autoencoder's training",
    )
