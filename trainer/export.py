"""Full-integer int8 TFLite export with a representative dataset."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

import numpy as np
import tensorflow as tf


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the converter's native stdout/stderr chatter; failures still raise exceptions."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def to_float_tflite(model, float16: bool = False) -> bytes:
    """Float32 TFLite, or float16 weights with float32 compute; for comparisons with int8."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    with _quiet():
        return converter.convert()


def to_int8_tflite(model, representative: np.ndarray, samples: int = 100) -> bytes:
    """Quantize weights and activations to int8, inputs and outputs included."""
    chosen = representative[:samples]

    def dataset():
        for x in chosen:
            yield [x[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with _quiet():
        return converter.convert()
