"""Autoencoder architectures.

`original` follows the original method faithfully (plain reconstruction, binary cross-entropy).
`lineside` is the default: strided plain convolutions down, resize-convolutions up instead of
transposed ones (no checkerboard artefacts for the anomaly map to mistake for texture), trained
with an SSIM + squared-error loss; `fit --repair` trains it as a denoising autoencoder on
synthetic defects. `small` and `lineside-small` are their
fast versions for tests and CI.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from lineside.trainer.options import ARCHITECTURES, downsampling


def build(name: str, height: int, width: int, channels: int) -> keras.Model:
    step = downsampling(name)
    if height % step or width % step:
        raise ValueError(f"model '{name}' needs an image size that is a multiple of {step}")
    inputs = keras.Input((height, width, channels))
    if ARCHITECTURES[name].denoising:
        return _denoising(name, inputs, channels)
    return _original(name, inputs, channels)


def _original(name: str, inputs: keras.KerasTensor, channels: int) -> keras.Model:
    x = inputs
    for f in ARCHITECTURES[name].filters:
        # Few steps per epoch on ~150 images: a faster-moving average keeps the inference-time
        # statistics close to the training-time ones.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    for f in reversed(ARCHITECTURES[name].filters):
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
    outputs = layers.Conv2D(channels, 3, padding="same", activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name=f"lineside_{name}")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def _conv(x: keras.KerasTensor, filters: int, stride: int = 1) -> keras.KerasTensor:
    # No bias: BN follows, and the export folds BN into the convolution.
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.ReLU()(x)


def _denoising(name: str, inputs: keras.KerasTensor, channels: int) -> keras.Model:
    filters = ARCHITECTURES[name].filters
    x = _conv(inputs, filters[0])
    for f in filters[1:]:
        x = _conv(_conv(x, f, stride=2), f)
    for f in reversed(filters[:-1]):
        x = layers.UpSampling2D(2, interpolation="bilinear")(x)
        x = _conv(_conv(x, f), f)
    outputs = layers.Conv2D(channels, 3, padding="same", activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name=f"lineside_{name.replace('-', '_')}")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=ssim_l2_loss)
    return model


def ssim_l2_loss(target: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
    """Squared error for levels, 1 - SSIM for structure: each catches what the other misses."""
    l2 = tf.reduce_mean(tf.square(target - output), axis=[1, 2, 3])
    return l2 + (1.0 - tf.image.ssim(target, output, max_val=1.0, filter_size=7))


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass, from the convolution layers' shapes."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):
            # Each input pixel is spread over a k x k window of the output.
            _, h, w, c_in = layer.input.shape
        elif isinstance(layer, layers.Conv2D):
            _, h, w, _ = layer.output.shape
            c_in = layer.input.shape[-1]
        else:
            continue
        kh, kw = layer.kernel_size
        total += h * w * kh * kw * c_in * layer.filters
    return int(total)
