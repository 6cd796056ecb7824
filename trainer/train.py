"""Training the autoencoder on good images, with a progress line and ETA per epoch."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras
import numpy as np


class ProgressLine(keras.callbacks.Callback):
    """One line per epoch: losses, seconds per epoch and the time left."""

    def __init__(self, epochs: int, say: Callable[[str], None]) -> None:
        super().__init__()
        self.epochs, self.say = epochs, say
        self.started = 0.0

    def on_train_begin(self, logs=None) -> None:
        self.started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        done = epoch + 1
        per_epoch = (time.monotonic() - self.started) / done
        eta = per_epoch * (self.epochs - done)
        val = f"  val_loss {logs['val_loss']:.5f}" if "val_loss" in logs else ""
        self.say(
            f"epoch {done:>3}/{self.epochs}  loss {logs.get('loss', float('nan')):.5f}{val}  "
            f"{per_epoch:.1f} s/epoch  ETA {_clock(eta)}"
        )


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s"


def train(
    model: keras.Model,
    x_train: np.ndarray,
    x_val: np.ndarray,
    epochs: int,
    batch_size: int,
    seed: int,
    say: Callable[[str], None] = print,
) -> dict[str, list[float]]:
    """Fit the model to reconstruct its input; keep the weights of the best validation epoch."""
    keras.utils.set_random_seed(seed)
    callbacks = [ProgressLine(epochs, say)]
    validation = None
    if len(x_val):
        validation = (x_val, x_val)
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=max(5, epochs // 5),
                start_from_epoch=epochs // 3,
                restore_best_weights=True,
            )
        )
    history = model.fit(
        x_train,
        x_train,
        validation_data=validation,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
