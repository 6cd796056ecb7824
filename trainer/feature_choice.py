"""What the feature fit chooses on validation: the input geometry, the head, and the map's
smoothing and score.

Validation is the held-out good images against the same images with one synthetic defect each
(thin scratches and cracks, pits, missing features and stains at three sizes, on the part only);
merit is the mean of image AUROC and pixel AUROC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lineside.daemon.core.heads import AutoencoderHead
from lineside.daemon.core.preprocess import preprocess, shown
from lineside.daemon.runtime import Backbone
from lineside.deploy.manifest import FEATURE_MAP
from lineside.trainer import augment, calibrate, defects, feature_ae, gaussian
from lineside.trainer.fitting import Prepared, squarish, with_geometry
from lineside.trainer.options import AUTO, FitOptions

SMOOTHING = (0.0, 2.0, 4.0, 8.0)
SCORES = ("map_max", "top_k_mean")
# Validation merit the autoencoder head must gain over the Gaussian to replace it.
AUTOENCODER_MARGIN = 0.01


# Held-out images that every synthetic defect variant is painted on, to predict escapes.
PROBE_IMAGES = 24


@dataclass(frozen=True)
class Validation:
    """Held-out good images and the same images with one synthetic defect each (kinds and sizes
    taken in turn), with their backbone features: what every head and map is chosen on; and
    every good image, for the thresholds."""

    good_x: np.ndarray
    good_feats: np.ndarray
    bad_x: np.ndarray
    bad_masks: np.ndarray
    bad_feats: np.ndarray
    train_feats: np.ndarray  # the training split (and its camera copies)
    all_feats: np.ndarray  # every good image
    copy_xs: np.ndarray | None  # every good image as a compressing camera delivers it
    copy_feats: np.ndarray | None
    shown: np.ndarray  # (N, H, W) bool, every good image: map pixels that show the part
    val_idx: np.ndarray
    probe_idx: np.ndarray  # images that carry every defect variant
    probe_feats: np.ndarray  # (len(probe_idx), len(defects.VARIANTS), h, w, C)


def validation(p: Prepared, opts: FitOptions, net: Backbone, say) -> Validation:
    feats = features_of(net, p.xs, say)
    copy_xs = copy_feats = None
    if opts.camera == "jpeg":
        frames = augment.camera_copies(p.frames, opts.seed)
        copy_xs = np.stack([preprocess(f, p.pre) for f in frames])
        say(f"and of {len(copy_xs)} camera copies (JPEG quality {augment.JPEG_QUALITY})")
        copy_feats = features_of(net, copy_xs, say)
    val = p.val_idx if len(p.val_idx) else p.train_idx
    on_part = np.stack([shown(f.shape, p.pre) for f in p.frames])
    # Defects only on the part: one pasted into a letterbox bar is no test of finding one.
    bad_x, bad_masks, _ = defects.mixed(p.xs[val], opts.seed + 1, on_part[val])
    probe_idx = val[:PROBE_IMAGES]
    probe = np.stack(
        [
            features_of(net, defects.every_variant(p.xs[i], opts.seed + 2 + int(i), on_part[i]))
            for i in probe_idx
        ]
    )
    train = [feats[p.train_idx]] + ([copy_feats[p.train_idx]] if copy_feats is not None else [])
    return Validation(
        p.xs[val],
        feats[val],
        bad_x,
        bad_masks,
        features_of(net, bad_x),
        np.concatenate(train),
        feats,
        copy_xs,
        copy_feats,
        on_part,
        val,
        probe_idx,
        probe,
    )


def choose_geometry(p: Prepared, opts: FitOptions, net: Backbone, say):
    """Squash, or letterbox when the frames are not square and validation says so (judged with
    the Gaussian head, fitted on the training split)."""
    if opts.geometry != AUTO:
        tried = (opts.geometry,)
    else:
        tried = ("squash",) if squarish(p.frames) else ("squash", "letterbox")
    best, merits = None, {}
    for geometry in tried:
        q = with_geometry(p, geometry)
        val = validation(q, opts, net, say)
        head = gaussian.fit(val.train_feats, gaussian.projection(val.train_feats))
        choice, table = choose_map(opts, val, head, f"{geometry}, Gaussian head", say)
        merits[geometry] = choice.merit
        if best is None or choice.merit > best[2].merit + 1e-9:
            best = (q, val, choice, table)
    assert best is not None
    if len(tried) > 1:
        say(
            "geometry: "
            + ", ".join(f"{g} merit {m:.3f}" for g, m in merits.items())
            + f"; chosen {best[0].pre.geometry}"
        )
    return (*best, merits)


@dataclass(frozen=True)
class HeadChoice:
    kind: str
    choice: calibrate.Choice
    table: list[dict]
    merits: dict[str, float]
    autoencoder: tuple[AutoencoderHead, bytes] | None  # trained on the training split


def choose_head(opts: FitOptions, val: Validation, choice, table, say) -> HeadChoice:
    """The Gaussian head, or the feature autoencoder when it validates clearly better.

    The Gaussian's thresholds are cross-validated over every good image and the autoencoder's
    come from the validation split alone, so a tie goes to the Gaussian.
    """
    merits = {"gaussian": choice.merit}
    if opts.head == "gaussian":
        return HeadChoice("gaussian", choice, table, merits, None)
    say(f"training the feature autoencoder on {len(val.train_feats)} images (with camera copies)")
    ae = feature_ae.fit(val.train_feats, opts.seed, say)
    ae_choice, ae_table = choose_map(opts, val, ae[0], "autoencoder head", say)
    merits["autoencoder"] = ae_choice.merit
    if opts.head == "autoencoder" or ae_choice.merit > choice.merit + AUTOENCODER_MARGIN:
        say(f"head: autoencoder (merit {ae_choice.merit:.3f} against {choice.merit:.3f})")
        return HeadChoice("autoencoder", ae_choice, ae_table, merits, ae)
    say(
        f"head: Gaussian (merit {choice.merit:.3f}; autoencoder {ae_choice.merit:.3f}, kept "
        f"only when more than {AUTOENCODER_MARGIN} better)"
    )
    return HeadChoice("gaussian", choice, table, merits, ae)


def features_of(
    net: Backbone, xs: np.ndarray, say: Callable[[str], None] = lambda _: None
) -> np.ndarray:
    """(N, h, w, C) backbone features of preprocessed images."""
    out = np.empty((len(xs), *net.grid, net.channels), np.float32)
    for i, x in enumerate(xs):
        out[i] = net.features(x)
        if (i + 1) % 200 == 0:
            say(f"features of {i + 1}/{len(xs)} images")
    return out


def distances(head, feats: np.ndarray) -> np.ndarray:
    return np.stack([head.distance(f) for f in feats])


def choose_map(opts: FitOptions, val: Validation, head, what: str, say):
    """Smoothing and score chosen on held-out good images and faint synthetic defects."""
    scores = SCORES if opts.score == AUTO else (opts.score,)
    choice, table = calibrate.choose(
        (val.good_x, distances(head, val.good_feats)),
        (val.bad_x, distances(head, val.bad_feats)),
        val.bad_masks,
        calibrate.Candidates((FEATURE_MAP,), scores, SMOOTHING),
        opts.pixel_quantile,
        opts.min_cluster_px,
        val.shown[val.val_idx],
    )
    say(
        f"{what}: map smoothed sigma {choice.spec.smooth_sigma:g}, score '{choice.score}': "
        f"validation merit {choice.merit:.3f} (image and pixel AUROC, good vs faint synthetic "
        "defects)"
    )
    return choice, table
