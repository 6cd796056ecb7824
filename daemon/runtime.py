"""The model runtime: LiteRT, with tflite-runtime and tensorflow.lite only as fallbacks."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

import numpy as np

from lineside.deploy.bundle import Bundle
from lineside.deploy.bundle import read as read_bundle
from lineside.deploy.manifest import TensorSpec

log = logging.getLogger(__name__)

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


def load_bundle(path: Path, num_threads: int | None = None) -> tuple[Bundle, Model]:
    """Read and verify a bundle file, load its model and check it against the manifest.

    Raises BundleError or ModelError with a one-line reason.
    """
    bundle = read_bundle(path)
    model = Model(bundle.model_bytes, num_threads=num_threads)
    model.check_against(bundle.manifest.input, bundle.manifest.output)
    return bundle, model
