"""Small models shared by the training-step benchmarks."""

from __future__ import annotations

import numpy as np


def mlp(input_dim=784, width=512, depth=2, classes=10):
    """``depth`` Dense(width, relu) layers and a softmax over ``classes``."""
    import keras
    inputs = keras.Input((input_dim,))
    h = inputs
    for _ in range(depth):
        h = keras.layers.Dense(width, activation="relu")(h)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(h))


def classification_batch(batch, input_dim=784, classes=10, seed=0):
    """Random inputs ``(batch, input_dim)`` and integer labels ``(batch,)``."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(batch, input_dim)).astype("float32"),
            rng.integers(0, classes, size=batch))


def train_fn(model, optimizer, x, y, loss="sparse_categorical_crossentropy"):
    """A zero-argument callable running one ``train_on_batch`` (no XLA)."""
    model.compile(optimizer=optimizer, loss=loss, jit_compile=False)
    return lambda: model.train_on_batch(x, y)
