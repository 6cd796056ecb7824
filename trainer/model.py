"""Autoencoder architectures: `original` follows the original method; `small` is for tests."""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers


@dataclass(frozen=True)
class Architecture:
    filters: tuple[int, ...]
    description: str


ARCHITECTURES = {
    "original": Architecture(
        (32, 32, 64, 128, 256),
        "original method: 5x(BN, 3x3 conv+ReLU, 2x2 max-pool), 5 stride-2 transposed convs, "
        "sigmoid conv, binary cross-entropy, Adam 1e-3",
    ),
    "small": Architecture((8, 16, 32), "3-block version of the original, for fast tests"),
}


def downsampling(name: str) -> int:
    """The input size must be a multiple of this."""
    return 2 ** len(ARCHITECTURES[name].filters)


def build(name: str, height: int, width: int, channels: int) -> keras.Model:
    arch = ARCHITECTURES[name]
    step = downsampling(name)
    if height % step or width % step:
        raise ValueError(f"model '{name}' needs an image size that is a multiple of {step}")
    inputs = keras.Input((height, width, channels))
    x = inputs
    for f in arch.filters:
        # Few steps per epoch on ~150 images: a faster-moving average keeps the inference-time
        # statistics close to the training-time ones.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    for f in reversed(arch.filters):
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
    outputs = layers.Conv2D(channels, 3, padding="same", activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name=f"lineside_{name}")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


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
