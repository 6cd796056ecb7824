"""Full-integer int8 TFLite export with a representative dataset.

Before conversion, every stride-2 3x3 'same' transposed convolution (the original method's
decoder) is rewritten as the same function in a form the box runs fast: one 2x2 convolution that
computes the four output phases, then depth-to-space. LiteRT's int8 TRANSPOSE_CONV is about 20x
slower than a plain convolution of the same size on this machine's CPU.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from lineside.trainer.quiet import silenced

# Output phase (0: even rows/columns, 1: odd) -> {row of the 2x2 window: row of the 3x3 kernel}.
# The window covers input pixels m-1 and m; even output 2m sums x[m] w[0] and x[m-1] w[2], odd
# output 2m+1 is x[m] w[1] (TensorFlow's 'same' padding for stride 2 and kernel 3).
_PHASE_TAPS = {0: {0: 2, 1: 0}, 1: {1: 1}}


def _rewritable(layer) -> bool:
    return (
        isinstance(layer, layers.Conv2DTranspose)
        and layer.kernel_size == (3, 3)
        and layer.strides == (2, 2)
        and layer.padding == "same"
        and layer.dilation_rate == (1, 1)
    )


def _subpixel(tconv: layers.Conv2DTranspose, x):
    """The transposed convolution `tconv` applied to `x`, as pad + 2x2 conv + depth-to-space."""
    kernel = keras.ops.convert_to_numpy(tconv.kernel)  # (3, 3, out, in)
    c_out, c_in = kernel.shape[2], kernel.shape[3]
    phased = np.zeros((2, 2, c_in, 4 * c_out), np.float32)
    for py, rows in _PHASE_TAPS.items():
        for px, cols in _PHASE_TAPS.items():
            block = slice((2 * py + px) * c_out, (2 * py + px + 1) * c_out)
            for dy, ky in rows.items():
                for dx, kx in cols.items():
                    phased[dy, dx, :, block] = kernel[ky, kx].T
    bias = keras.ops.convert_to_numpy(tconv.bias) if tconv.use_bias else np.zeros(c_out)
    conv = layers.Conv2D(4 * c_out, 2, activation=tconv.activation, name=f"{tconv.name}_phases")
    x = conv(layers.ZeroPadding2D(((1, 0), (1, 0)))(x))
    conv.set_weights([phased, np.tile(bias, 4).astype(np.float32)])
    return layers.Lambda(lambda t: tf.nn.depth_to_space(t, 2), name=f"{tconv.name}_d2s")(x)


def _is_chain(layers_: list) -> bool:
    """Each layer takes exactly the previous layer's output (no branches, no shared layers)."""
    try:
        return all(layer.input is prev.output for prev, layer in itertools.pairwise(layers_))
    except (AttributeError, ValueError):  # a layer called more than once has no single input
        return False


def for_export(model: keras.Model) -> keras.Model:
    """`model` with its transposed convolutions rewritten (same weights, same function).

    Only plain layer chains are rewritten (the original method's model is one); any other model
    is returned as it is."""
    if not any(_rewritable(layer) for layer in model.layers) or not _is_chain(model.layers):
        return model
    inputs = keras.Input(model.input_shape[1:])
    x = inputs
    for layer in model.layers[1:]:
        x = _subpixel(layer, x) if _rewritable(layer) else layer(x)
    return keras.Model(inputs, x, name=model.name)


def to_float_tflite(model, float16: bool = False) -> bytes:
    """Float32 TFLite, or float16 weights with float32 compute; for comparisons with int8."""
    converter = tf.lite.TFLiteConverter.from_keras_model(for_export(model))
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    with silenced():
        return converter.convert()


def to_int8_tflite(model, representative: np.ndarray, samples: int = 100) -> bytes:
    """Quantize weights and activations to int8, inputs and outputs included."""
    chosen = representative[:samples]

    def dataset():
        for x in chosen:
            yield [x[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(for_export(model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with silenced():
        return converter.convert()
