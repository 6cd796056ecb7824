"""The autoencoder head: a small convolutional autoencoder that reconstructs the backbone's
standardized features of good parts, trained here and exported int8 for the box.

Its shape: a 1x1 convolution mixes each cell's features, a stride-2 3x3 convolution and a 3x3
bottleneck see a cell's neighbourhood (so a part out of place shows, not only an odd texture),
then bilinear upsampling and convolutions back to every feature. Gaussian noise on the input
during training keeps it from copying features through.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import layers

from lineside.daemon.core.heads import AutoencoderHead
from lineside.daemon.runtime import Model
from lineside.trainer.export import to_int8_tflite
from lineside.trainer.progress import ProgressLine

BOTTLENECK = 32
NOISE = 0.5  # standard deviations of the standardized features
EPOCHS = 40
BATCH = 16


def standardization(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and scale of good features, (C,) each."""
    flat = features.reshape(-1, features.shape[-1])
    return flat.mean(0).astype(np.float32), (flat.std(0) + 1e-3).astype(np.float32)


def build(grid: tuple[int, int], channels: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((*grid, channels))
    x = layers.GaussianNoise(NOISE)(inputs)
    x = layers.Conv2D(96, 1, activation="relu")(x)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(BOTTLENECK, 3, padding="same", activation="relu")(x)
    x = layers.UpSampling2D(2, interpolation="bilinear")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    outputs = layers.Conv2D(channels, 1)(x)
    return keras.Model(inputs, outputs, name="feature_autoencoder")


def fit(
    features: np.ndarray,
    seed: int,
    say: Callable[[str], None] = lambda _: None,
    epochs: int = EPOCHS,
) -> tuple[AutoencoderHead, bytes]:
    """Train on good features; returns the head as the box runs it (int8) and its network."""
    mean, scale = standardization(features)
    z = (features - mean) / scale
    order = np.random.default_rng(seed).permutation(len(z))
    n_val = max(1, len(z) // 10)
    val, train = z[order[:n_val]], z[order[n_val:]]
    net = build(features.shape[1:3], features.shape[-1], seed)
    net.compile(keras.optimizers.Adam(1e-3), "mse")
    net.fit(
        train,
        train,
        validation_data=(val, val),
        epochs=epochs,
        batch_size=BATCH,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True),
            ProgressLine(epochs, say),
        ],
    )
    tflite = to_int8_tflite(net, train)
    model = Model(tflite, num_threads=2)
    return AutoencoderHead(mean, scale, features.shape[1:3], model.reconstruct), tflite
