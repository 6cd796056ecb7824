"""Progress of a Keras training run, one line per epoch, for both families' networks."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras

BAR_WIDTH = 20


class ProgressLine(keras.callbacks.Callback):
    """One line per epoch: a bar over all epochs, losses, seconds per epoch and the time left."""

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
        filled = round(BAR_WIDTH * done / self.epochs)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        val = f"  val_loss {logs['val_loss']:.5f}" if "val_loss" in logs else ""
        self.say(
            f"epoch {done:>3}/{self.epochs} [{bar}]  loss {logs.get('loss', float('nan')):.5f}"
            f"{val}  {per_epoch:.1f} s/epoch  ETA {_clock(eta)}"
        )


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s"
