"""Training the autoencoder on good images, with a progress bar and ETA per epoch."""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np

from lineside.trainer.augment import training_pair
from lineside.trainer.options import Architecture
from lineside.trainer.progress import ProgressLine


class DenoisingPairs(keras.utils.PyDataset):
    """Batches of (defective input, clean target), drawn afresh every epoch."""

    def __init__(self, xs: np.ndarray, batch_size: int, steps: int, seed: int) -> None:
        super().__init__()
        self.xs, self.batch_size, self.steps = xs, batch_size, steps
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        picks = self.rng.integers(0, len(self.xs), self.batch_size)
        pairs = [training_pair(self.rng, self.xs[i], self.xs) for i in picks]
        return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])


def train(
    model: keras.Model,
    arch: Architecture,
    x_train: np.ndarray,
    x_val: np.ndarray,
    epochs: int,
    batch_size: int,
    seed: int,
    say: Callable[[str], None] = print,
) -> dict[str, list[float]]:
    """Fit the model; stop early on validation loss and keep the best validation epoch's weights.

    A denoising architecture learns to map good images with synthetic defects to the clean
    images; the original one learns to copy its input.
    """
    keras.utils.set_random_seed(seed)
    callbacks: list[keras.callbacks.Callback] = [ProgressLine(epochs, say)]
    validation = None
    if len(x_val):
        validation = (x_val, x_val)
        callbacks += [
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=max(5, epochs // 5),
                start_from_epoch=epochs // 3,
                restore_best_weights=True,
            ),
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=max(3, epochs // 10), min_lr=1e-5
            ),
        ]
    if arch.denoising:
        steps = max(1, math.ceil(len(x_train) / batch_size))
        inputs, targets = DenoisingPairs(x_train, batch_size, steps, seed), None
    else:
        inputs, targets = x_train, x_train
    history = model.fit(
        inputs,
        targets,
        validation_data=validation,
        epochs=epochs,
        batch_size=None if arch.denoising else batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
