"""The LiteRT runtime: quantization read from the model, manifest cross-checks, bad models."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from lineside.daemon.runtime import Model, ModelError, interpreter_class, load_bundle
from lineside.deploy.manifest import TensorSpec


def test_litert_is_the_runtime():
    _, name = interpreter_class()
    assert name == "LiteRT"


def test_reconstruction_is_dequantized_to_unit_range(bundle_path):
    _, model = load_bundle(bundle_path, num_threads=1)
    x = np.random.default_rng(0).random((128, 128, 1), dtype=np.float32)
    r = model.reconstruct(x)
    assert r.shape == x.shape and r.dtype == np.float32
    assert r.min() >= 0.0 and r.max() <= 1.0
    assert model.input.scale > 0  # read from the model, not assumed


def test_threads_default_to_the_cores_this_process_may_use(bundle_path):
    _, model = load_bundle(bundle_path)
    assert model.threads == min(len(os.sched_getaffinity(0)), 4)
    # Pinned to one core (as systemd's CPUAffinity= or taskset would), one thread.
    pinned = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from lineside.daemon.runtime import Model, box_threads; print(box_threads())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert pinned.stdout.strip() == "1"


def test_manifest_disagreeing_with_model_is_refused(bundle_path):
    bundle, model = load_bundle(bundle_path)
    m = bundle.manifest
    wrong_shape = TensorSpec(
        shape=(1, 64, 64, 1), dtype="int8", scale=m.input.scale, zero_point=m.input.zero_point
    )
    with pytest.raises(ModelError, match="manifest says"):
        model.check_against(wrong_shape, m.output)
    wrong_quant = m.input.model_copy(update={"scale": m.input.scale * 2})
    with pytest.raises(ModelError, match="quantization"):
        model.check_against(wrong_quant, m.output)


@pytest.mark.parametrize("data", [b"", b"definitely not a flatbuffer" * 10])
def test_garbage_model_bytes_are_a_model_error(data):
    with pytest.raises(ModelError, match="does not load"):
        Model(data)
