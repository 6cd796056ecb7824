"""The model runtime: LiteRT, with tflite-runtime and tensorflow.lite only as fallbacks."""

from __future__ import annotations

import importlib
import io
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from lineside.daemon.core.features import aggregate, assemble
from lineside.daemon.core.heads import AutoencoderHead, GaussianHead, HeadError, MemoryBankHead
from lineside.daemon.core.preprocess import input_size as preprocessed_size
from lineside.daemon.core.tiles import Tiling
from lineside.deploy.bundle import Bundle, sha256_hex
from lineside.deploy.bundle import read as read_bundle
from lineside.deploy.manifest import (
    AUTOENCODER,
    GAUSSIAN,
    MEMORY_BANK,
    Features,
    Manifest,
    TensorSpec,
)

log = logging.getLogger(__name__)
Head = GaussianHead | MemoryBankHead | AutoencoderHead

# In order of preference; TensorFlow last because the edge install does not have it.
_RUNTIMES = (
    ("ai_edge_litert.interpreter", "LiteRT"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite", "tensorflow.lite"),
)


# More inference threads than this leave a big box's other cores to capture and MQTT.
MAX_AUTO_THREADS = 4


def box_threads() -> int:
    """Inference threads matched to the box: the cores this process may run on, at most 4."""
    return max(1, min(len(os.sched_getaffinity(0)), MAX_AUTO_THREADS))


class ModelError(Exception):
    """A model that cannot be loaded or does not match its manifest; one line for a person."""


def interpreter_class() -> tuple[type, str]:
    """The first importable interpreter class and the runtime's name."""
    for module_name, label in _RUNTIMES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        return module.Interpreter, label
    raise ModelError("no TFLite runtime found: install ai-edge-litert")


class Model:
    """A loaded int8 (or float) autoencoder: float image in [0,1] -> float reconstruction."""

    def __init__(self, model_bytes: bytes, num_threads: int | None = None) -> None:
        cls, self.runtime = interpreter_class()
        self.threads = num_threads or box_threads()
        try:
            self._interp = cls(model_content=model_bytes, num_threads=self.threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"model does not load: {str(exc).splitlines()[0]}") from None
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"model has {len(inputs)} inputs and {len(outputs)} outputs, need 1+1")
        self._in, self._out = inputs[0], outputs[0]
        self.input = _spec(self._in)
        self.output = _spec(self._out)
        log.debug("model loaded with %s, %d threads", self.runtime, self.threads)

    def check_against(self, declared_in: TensorSpec, declared_out: TensorSpec) -> None:
        """Refuse a model whose tensors disagree with what its manifest declares."""
        for what, actual, declared in (
            ("input", self.input, declared_in),
            ("output", self.output, declared_out),
        ):
            if actual.shape != declared.shape or actual.dtype != declared.dtype:
                raise ModelError(
                    f"model {what} is {actual.dtype}{list(actual.shape)}, the manifest says "
                    f"{declared.dtype}{list(declared.shape)}"
                )
            if not np.isclose(actual.scale, declared.scale) or (
                actual.zero_point != declared.zero_point
            ):
                raise ModelError(f"model {what} quantization differs from the manifest")

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """(H, W, C) float32 in [0,1] -> (H, W, C) float32 reconstruction."""
        self._interp.set_tensor(self._in["index"], _quantize(x[None], self.input))
        self._interp.invoke()
        return _dequantize(self._interp.get_tensor(self._out["index"])[0], self.output)

    # What the pipeline calls: for an autoencoder, the reconstruction.
    infer = reconstruct


class Backbone:
    """The cut pretrained network: float image in [0,1] -> its feature maps on one grid.

    Given an `image_size` larger than its `input_size` (tiles at native resolution), it runs on
    overlapping tiles of `input_size` and stitches their grids into the image's grid."""

    def __init__(
        self,
        model_bytes: bytes,
        input_size: tuple[int, int],
        num_threads: int | None = None,
        neighbourhood: int = 1,
        image_size: tuple[int, int] | None = None,
        tile_overlap: int = 0,
    ) -> None:
        cls, self.runtime = interpreter_class()
        self.neighbourhood = neighbourhood
        self.threads = num_threads or box_threads()
        try:
            self._interp = cls(model_content=model_bytes, num_threads=self.threads)
            inp = self._interp.get_input_details()
            if len(inp) != 1:
                raise ModelError(f"backbone has {len(inp)} inputs, need 1")
            # The cut backbone is fully convolutional: it takes the bundle's input size as is.
            width, height = input_size
            self._interp.resize_tensor_input(inp[0]["index"], [1, height, width, 3])
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"backbone does not load: {str(exc).splitlines()[0]}") from None
        self._in = self._interp.get_input_details()[0]
        self._outs = self._interp.get_output_details()
        self.input = _spec(self._in)
        self.outputs = tuple(_spec(o) for o in self._outs)
        self.tiling = self._tiling(input_size, image_size, tile_overlap)

    def _tiling(
        self, tile: tuple[int, int], image: tuple[int, int] | None, overlap: int
    ) -> Tiling | None:
        if image is None or tuple(image) == tuple(tile):
            return None
        stride = tile[0] // self.outputs[0].shape[2]
        if any(n % stride for n in (*tile, *image, overlap)):
            raise ModelError(f"image {image} and tile {tile} are not on the {stride}-px grid")
        return Tiling(image[0], image[1], tile[0], tile[1], overlap, stride)

    @property
    def grid(self) -> tuple[int, int]:
        if self.tiling is not None:
            return self.tiling.grid
        return self.outputs[0].shape[1], self.outputs[0].shape[2]

    @property
    def channels(self) -> int:
        return sum(o.shape[-1] for o in self.outputs)

    def features(self, x: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 in [0,1] -> (h, w, C) float32 features on the finest grid, each
        cell averaged over its neighbourhood (within its tile, for tiles)."""
        if self.tiling is None:
            return self._tile_features(x)
        if x.shape[:2] != (self.tiling.height, self.tiling.width):
            raise ModelError(
                f"image is {x.shape[1]}x{x.shape[0]}, the tiles cover "
                f"{self.tiling.width}x{self.tiling.height}"
            )
        return self.tiling.stitch(x, self._tile_features)

    def _tile_features(self, x: np.ndarray) -> np.ndarray:
        # The backbone reads plain 8-bit pixels (its input quantization maps 0..255 to -1..1).
        pixels = np.rint(x * 255).astype(np.uint8)
        self._interp.set_tensor(self._in["index"], pixels[None])
        self._interp.invoke()
        grid = assemble(
            [
                _dequantize(self._interp.get_tensor(o["index"])[0], spec)
                for o, spec in zip(self._outs, self.outputs, strict=True)
            ]
        )
        return aggregate(grid, self.neighbourhood)


# Values in the (cells, bank rows) product one search call holds: 16 MB of float32.
SEARCH_VALUES = 4 * 1024 * 1024


class BankSearch:
    """The memory bank's nearest-row search, an int8 network made by the trainer: (Q, C) float32
    queries -> (Q,) min over the bank's rows b of ||b||^2 - 2 q.b. It runs on blocks of cells
    of one size, so a frame's product never holds more than SEARCH_VALUES values."""

    def __init__(
        self, model_bytes: bytes, rows: int, cells: int, num_threads: int | None = None
    ) -> None:
        cls, _ = interpreter_class()
        self.model_bytes = model_bytes  # the trainer ships what it measured with
        blocks = -(-cells * rows // SEARCH_VALUES)
        self.block = max(1, -(-cells // blocks))
        try:
            self._interp = cls(model_content=model_bytes, num_threads=num_threads or box_threads())
            inp, out = self._interp.get_input_details(), self._interp.get_output_details()
            if len(inp) != 1 or len(out) != 1 or len(inp[0]["shape"]) != 2:
                raise ModelError("memory bank search network is not (queries, features) -> 1")
            self.channels = int(inp[0]["shape"][1])
            self._interp.resize_tensor_input(inp[0]["index"], [self.block, self.channels])
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            reason = str(exc).splitlines()[0]
            raise ModelError(f"memory bank search does not load: {reason}") from None
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        out = np.empty(len(queries), np.float32)
        padded = np.zeros((self.block, self.channels), np.float32)
        for lo in range(0, len(queries), self.block):
            part = queries[lo : lo + self.block]
            padded[: len(part)] = part
            self._interp.set_tensor(self._in, padded)
            self._interp.invoke()
            out[lo : lo + len(part)] = self._interp.get_tensor(self._out)[: len(part)]
        return out


class FeatureModel:
    """The backbone and a head: float image in [0,1] -> distance per feature-grid cell."""

    def __init__(self, backbone: Backbone, head: Head) -> None:
        self.backbone, self.head = backbone, head
        self.runtime, self.threads = backbone.runtime, backbone.threads
        self.input = backbone.input

    def check_against(self, declared_in: TensorSpec, features: Features) -> None:
        """Refuse a backbone or head that disagrees with the manifest or with each other."""
        bb, declared = self.backbone, features.backbone.outputs
        if bb.input.dtype != declared_in.dtype or len(bb.outputs) != len(declared):
            raise ModelError(
                f"backbone has a {bb.input.dtype} input and {len(bb.outputs)} outputs, the "
                f"manifest says {declared_in.dtype} and {len(declared)}"
            )
        if bb.input.shape != tuple(declared_in.shape):
            raise ModelError(
                f"backbone input is {list(bb.input.shape)} for the preprocessed size, the "
                f"manifest says {list(declared_in.shape)}"
            )
        for actual, spec in zip(bb.outputs, declared, strict=True):
            if actual.dtype != spec.dtype or not np.isclose(actual.scale, spec.scale):
                raise ModelError("backbone output quantization differs from the manifest")
        head = features.head
        if self.head.grid != bb.grid or tuple(head.grid) != bb.grid:
            raise ModelError(
                f"head grid {self.head.grid} does not fit the backbone's {bb.grid} feature grid"
            )
        if bb.channels != head.channels or self.head.channels != bb.channels:
            raise ModelError(
                f"head takes {self.head.channels} features per cell, the backbone "
                f"gives {bb.channels}"
            )

    def infer(self, x: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 in [0,1] -> (h, w) float32 distance per feature-grid cell."""
        return self.head.distance(self.backbone.features(x))


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of a `.npz` file; arrays only, never pickled objects."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"head does not load: {exc}") from None


def _gaussian(bundle: Bundle, arrays: dict, num_threads: int | None) -> Head:
    return GaussianHead.from_arrays(arrays)


def _memory_bank(bundle: Bundle, arrays: dict, num_threads: int | None) -> Head:
    spec = bundle.manifest.features.head
    search = None
    if spec.network is not None:
        cells = spec.grid[0] * spec.grid[1]
        search = BankSearch(bundle.files[spec.network], spec.dims, cells, num_threads)
        if search.channels != spec.channels:
            raise ModelError(
                f"memory bank search takes {search.channels} features per cell, the manifest "
                f"says {spec.channels}"
            )
    head = MemoryBankHead.from_arrays(arrays, spec.grid, search)
    if len(head.bank) != spec.dims:
        raise ModelError(
            f"memory bank holds {len(head.bank)} patches, the manifest says {spec.dims}"
        )
    return head


def _autoencoder(bundle: Bundle, arrays: dict, num_threads: int | None) -> Head:
    spec = bundle.manifest.features.head
    net = Model(bundle.files[spec.network], num_threads=num_threads)
    shape = (1, *spec.grid, spec.channels)
    if net.input.shape != shape or net.output.shape != shape:
        raise ModelError(
            f"head network takes {list(net.input.shape)} and gives {list(net.output.shape)}, "
            f"the manifest says {list(shape)}"
        )
    return AutoencoderHead.from_arrays(arrays, spec.grid, net.reconstruct)


# How each head the manifest names is read from its bundle.
HEADS = {GAUSSIAN: _gaussian, MEMORY_BANK: _memory_bank, AUTOENCODER: _autoencoder}


def read_head(bundle: Bundle, num_threads: int | None = None) -> Head:
    """The bundle's head, its arrays (and network) checked against each other."""
    spec = bundle.manifest.features.head
    for name in (spec.file, spec.network):
        if name is not None and name not in bundle.files:
            raise ModelError(f"bundle has no head file {name}")
    try:
        return HEADS[spec.kind](bundle, _arrays(bundle.files[spec.file]), num_threads)
    except HeadError as exc:
        raise ModelError(str(exc)) from None


def load_model(bundle: Bundle, num_threads: int | None = None) -> Model | FeatureModel:
    """The bundle's network (and head), checked against its manifest."""
    m: Manifest = bundle.manifest
    if m.features is None:
        model = Model(bundle.model_bytes, num_threads=num_threads)
        model.check_against(m.input, m.output)
        return model
    backbone = m.features.backbone
    if sha256_hex(bundle.model_bytes) != backbone.sha256:
        raise ModelError("backbone SHA-256 does not match the manifest's backbone.sha256")
    head = read_head(bundle, num_threads)
    backbone_net = Backbone(
        bundle.model_bytes,
        m.preprocess.size,
        num_threads=num_threads,
        neighbourhood=m.features.neighbourhood,
        image_size=_image_size(m),
        tile_overlap=m.preprocess.tile_overlap,
    )
    model = FeatureModel(backbone_net, head)
    model.check_against(m.input, m.features)
    return model


def _image_size(m: Manifest) -> tuple[int, int] | None:
    """The preprocessed image's (width, height) when the bundle inspects tiles of it."""
    if m.preprocess.geometry != "tiles":
        return None
    return preprocessed_size((m.frame.height, m.frame.width), m.preprocess)


def _spec(detail: dict) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    return TensorSpec(
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]).name,
        scale=float(scale),
        zero_point=int(zero_point),
    )


def _quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.dtype == "float32":
        return x.astype(np.float32, copy=False)
    info = np.iinfo(spec.dtype)
    q = np.rint(x / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def _dequantize(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.dtype == "float32":
        return q
    return (q.astype(np.float32) - spec.zero_point) * np.float32(spec.scale)


def load_bundle(path: Path, num_threads: int | None = None) -> tuple[Bundle, Model | FeatureModel]:
    """Read and verify a bundle file, load its model and check it against the manifest.

    Raises BundleError or ModelError with a one-line reason.
    """
    bundle = read_bundle(path)
    return bundle, load_model(bundle, num_threads)
