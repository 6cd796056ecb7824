"""What the feature fit validates on: the input candidates, the validation images and their
features, and each head's map smoothing and score.

Validation is the held-out good images against the same images with one synthetic defect each
(thin scratches and cracks, pits, missing features and stains at three sizes, on the part only);
merit is the mean of image AUROC and pixel AUROC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lineside.daemon.core.preprocess import preprocess, shown
from lineside.daemon.runtime import Backbone
from lineside.deploy.manifest import FEATURE_MAP
from lineside.trainer import augment, calibrate, defects
from lineside.trainer.fitting import Prepared
from lineside.trainer.options import AUTO, AUTO_SCORES, FEATURE_SIZES, FitOptions

SMOOTHING = (0.0, 2.0, 4.0, 8.0)
# Frames whose short side is at least this are also tried in tiles at native resolution:
# squashed to 320 px they lose more than half their resolution, and a defect of a few pixels
# with it. (No shared set has frames this large; their short sides are 100-620 px.)
TILES_FROM = 2 * FEATURE_SIZES[-1]
# ... at most this long a side: a 2048x1536 frame at native resolution took 11 minutes to fit
# and 7.4 GB, and 1.7 s a frame on the box (benchmarks/large_frames.py); at half, a quarter.
TILED_LONG_SIDE = 1024


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
    train_idx: np.ndarray  # the training split, in `all_feats` (and `copy_feats`)
    all_feats: np.ndarray  # every good image
    copy_xs: np.ndarray | None  # every good image as a compressing camera delivers it
    copy_feats: np.ndarray | None
    shown: np.ndarray  # (N, H, W) bool, every good image: map pixels that show the part
    val_idx: np.ndarray
    probe_idx: np.ndarray  # images that carry every defect variant
    probe_feats: np.ndarray  # (len(probe_idx), len(defects.VARIANTS), h, w, C)

    def train_features(self) -> np.ndarray:
        """The training split's features and its camera copies: a copy made only while a head
        is fitted on them (kept, it was 330 MB of DeepPCB's 4.3 GB peak)."""
        parts = [self.all_feats[self.train_idx]]
        if self.copy_feats is not None:
            parts.append(self.copy_feats[self.train_idx])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


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
    # float16: these only choose and predict; the thresholds come from float32 good features.
    probe = np.stack(
        [
            features_of(
                net, defects.every_variant(p.xs[i], opts.seed + 2 + int(i), on_part[i])
            ).astype(np.float16)
            for i in probe_idx
        ]
    )
    return Validation(
        p.xs[val],
        feats[val],
        bad_x,
        bad_masks,
        features_of(net, bad_x).astype(np.float16),
        p.train_idx,
        feats,
        copy_xs,
        copy_feats,
        on_part,
        val,
        probe_idx,
        probe,
    )


def inputs(p: Prepared, opts: FitOptions) -> list[tuple[str, int, float]]:
    """The (geometry, input size, tile scale) candidates: squash unless told otherwise; 224 px,
    and 320 px too for frames at least that large (never upscaled into it); and for frames of
    one size from TILES_FROM px, tiles of 224 px over the frame brought to at most
    TILED_LONG_SIDE px (`--geometry tiles` alone: at `--tile-scale`, native by default).

    Letterboxing is not tried by itself: on both shared sets of long or varied frames it
    validated better on synthetic defects and lost on the real ones (bsdata-pitting image AUROC
    0.936 against 0.948 squashed, magnetic tiles 35% escapes against 14%), since the part fills
    less of the input and a defect of a given size on the input is a larger one on the part."""
    short = float(np.median([min(f.shape[:2]) for f in p.frames]))
    if opts.geometry == "tiles":
        return [("tiles", opts.image_size or FEATURE_SIZES[0], opts.tile_scale)]
    geometries = ("squash",) if opts.geometry == AUTO else (opts.geometry,)
    if opts.image_size is not None:
        sizes: tuple[int, ...] = (opts.image_size,)
    else:
        sizes = tuple(s for s in FEATURE_SIZES if s == FEATURE_SIZES[0] or short >= s)
    out = [(g, s, 1.0) for s in sizes for g in geometries]
    if opts.geometry == AUTO and short >= TILES_FROM and len({f.shape for f in p.frames}) == 1:
        scale = min(1.0, TILED_LONG_SIDE / max(p.frames[0].shape[:2]))
        out.append(("tiles", FEATURE_SIZES[0], round(scale, 3)))
    return out


def label(geometry: str, size: int, scale: float) -> str:
    """How the report and the manifest name an input candidate."""
    if geometry != "tiles":
        return f"{geometry} {size}"
    return f"tiles {size}" + ("" if scale == 1 else f" at scale {scale:g}")


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
    """Smoothing and score chosen on held-out good images and synthetic defects."""
    scores = AUTO_SCORES if opts.score == AUTO else (opts.score,)
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
        f"validation merit {choice.merit:.3f} (image and pixel AUROC, good vs synthetic "
        "defects)"
    )
    return choice, table
