"""What `lineside-train fit` can be asked for, checked before any training starts.

The architectures' names and shapes, the calibration targets and the fit options live here,
free of TensorFlow, so the command line refuses a bad value at once with one line instead of
after an hour of training. The CLI takes its defaults from these models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lineside.deploy.manifest import GEOMETRIES, HEAD_KINDS, MAP_KINDS, SCORE_NAMES

AUTO = "auto"
# Input sizes the features model tries: its backbone's own 224 px, and a finer 40x40 grid.
FEATURE_SIZES = (224, 320)
CAMERAS = ("as_trained", "jpeg")
# The scores `--score auto` chooses among on validation (the map's peak, or its top-k mean).
AUTO_SCORES = ("map_max", "top_k_mean")


@dataclass(frozen=True)
class Architecture:
    filters: tuple[int, ...]
    description: str
    denoising: bool  # the lineside family; `fit --repair` trains it on (defective, clean) pairs


ARCHITECTURES = {
    "lineside": Architecture(
        (16, 32, 64, 128, 128),
        "autoencoder: conv stem, 4x(stride-2 conv, conv), 4x(bilinear upsample, "
        "2 convs), BN+ReLU, sigmoid output; loss squared error + (1 - SSIM)",
        denoising=True,
    ),
    "lineside-small": Architecture(
        (8, 16, 32, 32), "3-level version of `lineside`, for fast tests", denoising=True
    ),
    "original": Architecture(
        (32, 32, 64, 128, 256),
        "original method: 5x(BN, 3x3 conv+ReLU, 2x2 max-pool), 5 stride-2 transposed convs, "
        "sigmoid conv, binary cross-entropy, Adam 1e-3",
        denoising=False,
    ),
    "small": Architecture(
        (8, 16, 32), "3-block version of the original, for fast tests", denoising=False
    ),
}
# The feature family: the pretrained int8 backbone with a per-location Gaussian head.
FEATURES = "features"
MODELS = (FEATURES, *ARCHITECTURES)
DEFAULT = FEATURES
# Per family: input size, colour and histogram equalization when the user does not say.
# The backbone was trained on plain ImageNet colour photos at 224 px.
# The features model's input size is chosen on validation among FEATURE_SIZES (None: auto).
FAMILY_DEFAULTS = {
    FEATURES: {"image_size": None, "color": "rgb", "equalize": False},
    "pixel": {"image_size": 128, "color": "gray", "equalize": True},
}


def family(name: str) -> str:
    return FEATURES if name == FEATURES else "pixel"


def downsampling(name: str) -> int:
    """The input size must be a multiple of this."""
    if name == FEATURES:
        return 16  # the deepest feature map in use has stride 16
    arch = ARCHITECTURES[name]
    levels = len(arch.filters) - 1 if arch.denoising else len(arch.filters)
    return 2**levels


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Targets(_Frozen):
    """What the thresholds promise on validation parts."""

    false_reject: float = Field(0.005, ge=0, lt=1, description="good parts failed at fail_at")
    review: float = Field(0.05, ge=0, lt=1, description="good parts sent to review or worse")
    escape: float = Field(
        0.05, ge=0, lt=1, description="defective parts passed (only with defective validation)"
    )
    fail_margin: float = Field(
        0.5, ge=0, description="fail_at sits this share of (quantile - median) above the quantile"
    )


class FitOptions(_Frozen):
    model: Literal[MODELS] = DEFAULT
    # None: the model family's default (FAMILY_DEFAULTS), filled in before validation.
    image_size: int | None = Field(None, ge=8, le=2048)
    color: Literal["gray", "rgb"] = None
    equalize: bool = None
    blur_ksize: int = Field(0, ge=0, le=63, description="Gaussian kernel, odd; 0 = off")
    # Lineside models: train on synthetic defects (input) against the clean image (target).
    # Off by default: learning to reproduce good images did as well on bottles and far better on
    # fine textures (magnetic tiles), see docs/quality.md.
    repair: bool = False
    crop: tuple[int, int, int, int] | None = None
    # auto: the features model tries letterboxing non-square frames and keeps what validates
    # better; pixel autoencoders squash.
    geometry: Literal[(AUTO, *GEOMETRIES)] = AUTO
    # tiles: the frame's scale before it is cut into tiles of the input size (1 = native).
    tile_scale: float = Field(1.0, gt=0, le=4)
    # features model: auto fits both heads and keeps the one that validates better.
    head: Literal[(AUTO, *HEAD_KINDS)] = AUTO
    # features model: each cell's features averaged over this square of cells (1 = off).
    neighbourhood: int = Field(3, ge=1, le=7)
    # How the line's camera delivers frames. as_trained: through the same image path as the
    # training images. jpeg: a compressing stream (MJPEG, RTSP) that the training images did not
    # go through, so the head also learns a JPEG copy of each good image and the thresholds
    # allow for it; elsewhere those copies would only widen the good tail and pass defects.
    camera: Literal[CAMERAS] = "as_trained"
    epochs: int = Field(60, ge=1, le=100_000)
    batch_size: int = Field(16, ge=1, le=65_536)
    val_fraction: float = Field(0.2, ge=0, lt=1)
    seed: int = Field(0, ge=0)
    pixel_quantile: float = Field(0.999, gt=0, lt=1)
    min_cluster_px: int = Field(5, ge=1)
    anomaly_map: Literal[(AUTO, *MAP_KINDS)] = AUTO  # auto: chosen on validation
    score: Literal[(AUTO, *SCORE_NAMES)] = AUTO
    targets: Targets = Targets()
    val_defects: Path | None = None
    threads: int = Field(2, ge=1, le=64)
    name: str | None = None
    version: str | None = None
    sign_key: Path | None = None
    report: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        chosen = family(data.get("model") or DEFAULT)
        filled = {k: v for k, v in FAMILY_DEFAULTS[chosen].items() if data.get(k) is None}
        return {**data, **filled}

    @model_validator(mode="after")
    def _consistent(self) -> FitOptions:
        if self.model != FEATURES and self.head != AUTO:
            raise ValueError("--head applies to the features model")
        if self.model == FEATURES and (self.repair or self.anomaly_map != AUTO):
            raise ValueError(
                "--repair and --map apply to pixel autoencoders; the features model's map is "
                "its head's distance"
            )
        step = downsampling(self.model)
        if self.image_size is None and family(self.model) != FEATURES:
            raise ValueError(f"model '{self.model}' needs an image size")
        if self.image_size is not None and self.image_size % step:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of {step} (model '{self.model}')"
            )
        if self.geometry == "tiles" and (
            self.model != FEATURES or (self.image_size is not None and self.image_size % 32)
        ):
            raise ValueError(
                "--geometry tiles is for the features model, with a tile size "
                "(--image-size) that is a multiple of 32"
            )
        if self.neighbourhood % 2 == 0:
            raise ValueError(f"neighbourhood must be odd, got {self.neighbourhood}")
        if self.blur_ksize and self.blur_ksize % 2 == 0:
            raise ValueError(f"blur_ksize must be odd or 0, got {self.blur_ksize}")
        if self.crop is not None and (min(self.crop[:2]) < 0 or min(self.crop[2:]) < 1):
            raise ValueError(f"crop {self.crop}: x and y must be >= 0, width and height >= 1")
        return self


def default(name: str):
    """The default of a fit option, for the command line."""
    return FitOptions.model_fields[name].default


def describe(err: dict) -> str:
    """One pydantic error as `value: what was expected` (or the rule broken, for the whole)."""
    msg = err["msg"].removeprefix("Value error, ")
    if not err["loc"]:
        return msg
    return f"{err.get('input')!r}: {msg[0].lower()}{msg[1:]}"
