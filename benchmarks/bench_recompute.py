"""Recomputation: a residual MLP with every block under ``kexue.training.Recompute``
(``tf.recompute_grad`` on TensorFlow) against the same network without it.

Training steps of ``residual_mlp(784, 10, depth=6, width=512)`` at batch 256 (no XLA); the
price of recomputation is one more forward pass of each block. Used for
book/keras/recomputation.md.
"""

from __future__ import annotations

import _harness
import _models


def run(quick):
    import keras
    from kexue.training import residual_mlp
    x, y = _models.classification_batch(256)
    fns = {}
    for mode in ("none", "per_block"):
        keras.utils.set_random_seed(0)
        model = residual_mlp(784, 10, depth=6, width=512, mode=mode)
        fns[mode] = _models.train_fn(model, keras.optimizers.Adam(1e-3), x, y)
    times = _harness.cpu_times(fns, repeats=5 if quick else 15, inner=2 if quick else 6)
    return [_harness.ratio_row("training step, residual MLP depth 6 width 512, batch 256",
                               "per_block", "none", times,
                               note="Recompute around every block vs none")]


if __name__ == "__main__":
    _harness.main("recompute", run)
