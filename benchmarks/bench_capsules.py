"""Capsule head against the global-average-pooling head on the same feature map.

``kexue.capsules.capsule_head`` (3 routings, 10 capsules of 16) against ``gap_head`` on
feature maps ``(64, 7, 7, 64)``, one training step each (mean squared error to one-hot
targets, Adam, no XLA). Used for book/capsules/capsule-feast.md.
"""

from __future__ import annotations

import _harness
import numpy as np


def run(quick):
    import keras
    from kexue.capsules import capsule_head, gap_head
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 7, 7, 64)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, size=64)]
    fns = {}
    for name, make in {"GAP head": lambda: gap_head(64), "capsule head": lambda: capsule_head(64)}.items():
        keras.utils.set_random_seed(0)
        model = make()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=False)
        fns[name] = lambda model=model: model.train_on_batch(x, y)
    times = _harness.cpu_times(fns, repeats=5 if quick else 15, inner=5 if quick else 15)
    return [_harness.ratio_row("training step of the head, features (64, 7, 7, 64)",
                               "capsule head", "GAP head", times)]


if __name__ == "__main__":
    _harness.main("capsules", run)
