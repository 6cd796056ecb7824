"""The manifest: a bundle's self-description, the single source of truth for the pipeline."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # 1: pixel autoencoders only; 2 adds the feature family
# The names the pipeline, the trainer and the command lines share; defined here only.
MAP_KINDS = ("squared_error", "ssim", "blend")
# The feature family's map: the head's distance per feature-grid cell, upsampled to the input.
FEATURE_MAP = "feature_distance"
# The heads a features bundle may carry, by the one name the manifest, trainer, runtime and
# command line all use.
GAUSSIAN, MEMORY_BANK, AUTOENCODER = "gaussian", "memory_bank", "autoencoder"
HEAD_KINDS = (GAUSSIAN, MEMORY_BANK, AUTOENCODER)
SCORE_NAMES = ("anomalous_fraction", "map_max", "top_k_mean")
Verdict = Literal["pass", "review", "fail"]  # mildest first
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelInfo(_Frozen):
    name: str
    version: str
    architecture: str
    created_at: str
    trainer_version: str
    macs: int | None = Field(default=None, description="multiply-accumulates per frame")


class TensorSpec(_Frozen):
    """Shape, type and quantization of a model tensor, as the trainer exported it."""

    shape: tuple[int, ...]
    dtype: Literal["int8", "uint8", "float32"]
    scale: float = 0.0
    zero_point: int = 0


class FrameSpec(_Frozen):
    """The frames the model was trained on; None where training images varied."""

    height: int | None = None
    width: int | None = None
    channels: Literal[1, 3]


GEOMETRIES = ("squash", "letterbox", "tiles")
# Tiled inputs are scaled to a multiple of this many pixels, so every backbone grid divides them.
TILE_MULTIPLE = 32


class Preprocess(_Frozen):
    """Frame to model input, in this order: crop, colour, fit to the input's shape (squash, or
    letterbox: pad to the input's aspect ratio first), resize, equalize, blur, scale to [0,1].

    `tiles` keeps the frame's own resolution (times `tile_scale`) instead of fitting it to `size`:
    the model then sees overlapping tiles of `size`, stitched back into one map of the frame."""

    color: Literal["gray", "rgb"] = "gray"
    size: tuple[int, int] = Field(description="model input (width, height)")
    crop: tuple[int, int, int, int] | None = Field(
        default=None, description="(x, y, width, height) in frame pixels, applied first"
    )
    geometry: Literal[GEOMETRIES] = "squash"
    equalize: bool = True
    blur_ksize: int = Field(default=0, ge=0, description="Gaussian kernel size; 0 = off")
    tile_scale: float = Field(
        default=1.0, gt=0, le=4, description="tiles only: frame scale before tiling; 1 = native"
    )
    tile_overlap: int = Field(
        default=32, ge=0, description="tiles only: pixels each tile shares with the next"
    )

    @model_validator(mode="after")
    def _odd_kernel(self) -> Preprocess:
        if self.blur_ksize and self.blur_ksize % 2 == 0:
            raise ValueError(f"blur_ksize must be odd or 0, got {self.blur_ksize}")
        return self

    @model_validator(mode="after")
    def _tiles_fit(self) -> Preprocess:
        if self.geometry != "tiles":
            return self
        if any(s % TILE_MULTIPLE for s in self.size):
            raise ValueError(f"a tile's size must be a multiple of {TILE_MULTIPLE}: {self.size}")
        if self.tile_overlap % 8 or self.tile_overlap >= min(self.size):
            raise ValueError(
                f"tile_overlap must be a multiple of 8 below the tile's size: {self.tile_overlap}"
            )
        return self


class AnomalyMap(_Frozen):
    """How the map is made from input and reconstruction (see lineside.daemon.core.anomaly_map)."""

    kind: Literal[(*MAP_KINDS, FEATURE_MAP)] = "squared_error"
    smooth_sigma: float = Field(
        default=0.0, ge=0, description="Gaussian sigma in map pixels before thresholding; 0 = off"
    )
    l2_weight: float = Field(
        default=1.0, gt=0, description="blend only: weight of squared error against SSIM"
    )


class Postprocess(_Frozen):
    pixel_threshold: float = Field(gt=0)
    min_cluster_px: int = Field(ge=1, description="clusters smaller than this are noise")
    score: Literal[SCORE_NAMES] = "anomalous_fraction"


class Thresholds(_Frozen):
    """Image-score thresholds: score <= review_at passes, score > fail_at fails."""

    review_at: float = Field(ge=0)
    fail_at: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.fail_at < self.review_at:
            raise ValueError(f"fail_at {self.fail_at} is below review_at {self.review_at}")
        return self


class SelfTestImage(_Frozen):
    file: str = Field(pattern=r"^selftest/[A-Za-z0-9_.-]+$")
    score: float = Field(ge=0)
    verdict: Verdict


class SelfTest(_Frozen):
    """Images with the scores the trainer measured, so a box can prove a bundle before using it."""

    tolerance: float = Field(gt=0, description="largest accepted |box score - trainer score|")
    images: tuple[SelfTestImage, ...] = Field(min_length=1)


class Backbone(_Frozen):
    """The pretrained feature extractor the box runs (`model.tflite`), cut from `source`."""

    source: str
    source_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="of the cut model.tflite")
    layers: tuple[str, ...] = Field(min_length=1)
    outputs: tuple[TensorSpec, ...] = Field(min_length=1)


class Head(_Frozen):
    """What turns the backbone's features into a distance per grid cell (`head.npz`)."""

    kind: Literal[HEAD_KINDS]
    file: str = Field(default="head.npz", pattern=r"^[A-Za-z0-9_.-]+\.npz$")
    network: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+\.tflite$",
        description="autoencoder: its int8 network (required); memory bank: its int8 "
        "nearest-row search (optional: without it the box searches in float32)",
    )
    grid: tuple[int, int] = Field(description="feature grid (rows, columns)")
    channels: int = Field(ge=1, description="backbone features per cell, concatenated")
    dims: int = Field(
        ge=1,
        description="Gaussian: values after projection; memory bank: patches in the bank; "
        "autoencoder: bottleneck",
    )

    @model_validator(mode="after")
    def _network_where_it_belongs(self) -> Head:
        if self.kind == AUTOENCODER and self.network is None:
            raise ValueError("an autoencoder head names its network")
        if self.kind == GAUSSIAN and self.network is not None:
            raise ValueError("a gaussian head has no network")
        return self


class Features(_Frozen):
    backbone: Backbone
    neighbourhood: int = Field(
        default=1,
        ge=1,
        le=7,
        description="each cell's features averaged over this many cells square before the "
        "head (odd; 1 = off)",
    )
    head: Head

    @model_validator(mode="after")
    def _odd_neighbourhood(self) -> Features:
        if self.neighbourhood % 2 == 0:
            raise ValueError(f"neighbourhood must be odd, got {self.neighbourhood}")
        return self


class Spread(_Frozen):
    mean: float
    std: float = Field(ge=0)


class Reference(_Frozen):
    """What good parts looked like when the model was fitted; drift is measured against it."""

    scores: Spread = Field(description="image scores of good parts the model did not train on")
    brightness: Spread = Field(description="mean grey level of the training frames, 0-255")
    contrast: Spread = Field(description="standard deviation of their grey levels")
    sharpness: Spread = Field(description="variance of their Laplacian, at most 256 px wide")


class Manifest(_Frozen):
    schema_version: int
    model: ModelInfo
    input: TensorSpec
    output: TensorSpec | None = Field(default=None, description="pixel autoencoders only")
    features: Features | None = Field(default=None, description="feature family only")
    frame: FrameSpec
    preprocess: Preprocess
    anomaly_map: AnomalyMap = AnomalyMap()
    postprocess: Postprocess
    thresholds: Thresholds
    calibration: dict = Field(default_factory=dict)
    dataset: dict = Field(default_factory=dict)
    metrics: dict = Field(default_factory=dict)
    selftest: SelfTest | None = None
    reference: Reference | None = Field(default=None, description="for drift monitoring")
    files: dict[str, str] = Field(description="file name -> SHA-256 hex of every other file")

    @model_validator(mode="after")
    def _known_schema(self) -> Manifest:
        if self.schema_version not in READABLE_SCHEMAS:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported (this build reads "
                f"{', '.join(map(str, READABLE_SCHEMAS))})"
            )
        return self

    @model_validator(mode="after")
    def _one_family(self) -> Manifest:
        feature_map = self.anomaly_map.kind == FEATURE_MAP
        if self.features is None and (self.output is None or feature_map):
            raise ValueError("a pixel model needs `output` and a pixel anomaly map")
        if self.features is not None and (self.output is not None or not feature_map):
            raise ValueError(f"a feature model has no `output` and uses the {FEATURE_MAP} map")
        return self

    @model_validator(mode="after")
    def _tiles_need_one_frame_size(self) -> Manifest:
        # The stitched grid, and so the head's, follows from the frame's size.
        if self.preprocess.geometry == "tiles" and (
            self.features is None or self.frame.height is None
        ):
            raise ValueError("tiles are for feature models trained on frames of one size")
        return self

    @property
    def family(self) -> str:
        return "pixel" if self.features is None else "features"
