"""Export: transposed convolutions become sub-pixel convolutions with the same output."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from lineside.trainer.export import for_export, to_float_tflite
from lineside.trainer.pixels.model import build


def _randomize(model: keras.Model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for w in model.weights:
        values = rng.normal(0, 1, w.shape)
        w.assign((np.abs(values) + 0.1 if "variance" in w.path else values).astype(np.float32))


@pytest.mark.parametrize("shape", [(8, 6, 3), (5, 7, 1)])
def test_a_transposed_convolution_is_rewritten_exactly(shape):
    inputs = keras.Input(shape)
    x = layers.BatchNormalization()(inputs)
    x = layers.Conv2DTranspose(5, 3, strides=2, padding="same", activation="relu")(x)
    net = keras.Model(inputs, layers.Conv2D(2, 3, padding="same")(x))
    _randomize(net, 0)
    xs = np.random.default_rng(1).random((3, *shape)).astype(np.float32)
    rewritten = for_export(net)
    assert not any(isinstance(layer, layers.Conv2DTranspose) for layer in rewritten.layers)
    expected = net.predict(xs, verbose=0)
    np.testing.assert_allclose(rewritten.predict(xs, verbose=0), expected, atol=1e-4)


def test_the_original_model_exports_without_transpose_conv_ops():
    net = build("original", 64, 64, 1)
    xs = np.random.default_rng(2).random((2, 64, 64, 1)).astype(np.float32)
    tflite = to_float_tflite(net)
    interpreter = tf.lite.Interpreter(model_content=tflite)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "TRANSPOSE_CONV" not in ops and "DEPTH_TO_SPACE" in ops
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], xs[:1])
    interpreter.invoke()
    got = interpreter.get_tensor(out["index"])
    np.testing.assert_allclose(got, net.predict(xs[:1], verbose=0), atol=1e-4)


def test_models_without_transposed_convolutions_are_left_alone():
    net = build("lineside-small", 32, 32, 1)
    assert for_export(net) is net


def test_branched_models_are_left_alone():
    inputs = keras.Input((8, 8, 2))
    up = layers.Conv2DTranspose(2, 3, strides=2, padding="same")(inputs)
    net = keras.Model(inputs, layers.Add()([up, layers.UpSampling2D(2)(inputs)]))
    assert for_export(net) is net
