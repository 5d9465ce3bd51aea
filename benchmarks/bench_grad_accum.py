"""Gradient accumulation: ``kexue.training.GradientAccumulator`` against Keras's own
``gradient_accumulation_steps`` (both wrapping Adam, 4 micro-batches of 32 per update; an MLP
784-512-512-10). Used for book/keras/gradient-accumulation.md.
"""

from __future__ import annotations

import _harness
import _models


def run(quick):
    import keras
    from kexue.training import GradientAccumulator
    x, y = _models.classification_batch(32)
    fns = {}
    for name, make in {
        "Adam(gradient_accumulation_steps=4)": lambda: keras.optimizers.Adam(
            1e-3, gradient_accumulation_steps=4),
        "GradientAccumulator(Adam, 4)": lambda: GradientAccumulator(keras.optimizers.Adam(1e-3), 4),
    }.items():
        keras.utils.set_random_seed(0)
        fns[name] = _models.train_fn(_models.mlp(), make(), x, y)
    times = _harness.cpu_times(fns, repeats=5 if quick else 15, inner=8 if quick else 24)
    return [_harness.ratio_row("micro-batch training step, MLP 784-512-512-10, batch 32",
                               "GradientAccumulator(Adam, 4)",
                               "Adam(gradient_accumulation_steps=4)", times)]


if __name__ == "__main__":
    _harness.main("grad_accum", run)
